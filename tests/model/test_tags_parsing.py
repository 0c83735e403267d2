"""Tag parsing edge cases, expected values written out by hand (no model needed).

Each case names what a wrong parser would do with it.
"""

from __future__ import annotations

import pytest

from model import parse_tags
from model.tags import listing_contexts, split_listing, tag_spellings


@pytest.mark.parametrize(
    "text,tags",
    [
        # prefix only at the start, in its spellings; a tag that merely contains "tags" stays
        ("Keywords: dog", ["dog"]),
        ("TAG : dog, cat", ["dog", "cat"]),
        ("keyword:dog", ["dog"]),
        ("dog tags, collar", ["dog tags", "collar"]),
        ("dog, tags: cat", ["dog", "tags: cat"]),
        # bullets, numbering, markdown and quotes around items; inner punctuation kept
        ("* dog\n• cat\n# bird", ["dog", "cat", "bird"]),
        ("1) red\n2) blue", ["red", "blue"]),
        ('`code`, "quoted!"', ["code", "quoted"]),
        ("rock-n-roll, t-shirt", ["rock-n-roll", "t-shirt"]),
        ("what?!, wow...", ["what", "wow"]),
        # separators: commas, semicolons, newlines, repeated or mixed
        ("a;b\nc,,d", ["a", "b", "c", "d"]),
        ("\n\nsunset\n\n", ["sunset"]),
        # case and whitespace folded; duplicates after folding dropped, first kept
        ("Dog, DOG, dog ", ["dog"]),
        ("moving\tleft, moving  left", ["moving left"]),
        ("cat, dog, Cat", ["cat", "dog"]),
        # nothing usable
        (None, []),
        ("...", []),
        ("- \n* ", []),
    ],
)
def test_parse_tags_edge_cases(text, tags) -> None:
    assert parse_tags(text) == tags


def test_tags_that_start_with_a_digit_keep_it() -> None:
    """Caught: list numbering was stripped as any leading digits ('3d' -> 'd')."""
    assert parse_tags("3d, 4k video, 1. dog, 2) cat, 3.5 mm") == [
        "3d",
        "4k video",
        "dog",
        "cat",
        "3.5 mm",
    ]


def test_parse_tags_keeps_order_of_first_appearance() -> None:
    """Catches a set-based dedupe (random order) or sorting."""
    assert parse_tags("zebra, apple, mango, apple, zebra") == ["zebra", "apple", "mango"]


def test_split_listing_round_trips_the_text() -> None:
    """Items and separators joined give the text back."""
    for text in (" red, circle, moving left", "- dog\n- beach.\n", " a;; b ;c", "x"):
        assert "".join(i + s for i, s in split_listing(text)) == text
    assert split_listing(",, a") == [(",, a", "")]  # a leading separator joins the first item
    assert split_listing(" a, , b") == [(" a", ", ,"), (" b", "")]
    assert split_listing(" a,") == [(" a", ",")]
    assert split_listing(" , ; a") == [(" , ; a", "")]  # every leading empty item kept


def test_listing_contexts_with_other_separators_and_leads() -> None:
    """Separator of the list reused after its last item; the lead of each position is the
    one the model used there; the last position repeats the last lead."""
    items = split_listing("\n- red\n- circle")
    assert items == [("\n- red", "\n"), ("- circle", "")]
    assert listing_contexts(items, "blue") == [
        ("", "\n- "),
        ("\n- red\n", "- "),
        ("\n- red\n- circle\n", "- "),
    ]
    # the tag itself (any case, any trailing full stop) is taken out wherever it was
    assert listing_contexts(split_listing(" Red., blue"), "red") == [("", " "), (" blue,", " ")]


def test_listing_contexts_after_a_single_item_use_a_comma() -> None:
    """A list with no separator yet: the next item would follow a comma."""
    assert listing_contexts(split_listing(" red"), "blue") == [("", " "), (" red,", " ")]


def test_tag_spellings_without_duplicates() -> None:
    assert tag_spellings("Dog") == ["Dog", "dog"]
    assert tag_spellings("DOG") == ["DOG", "dog"]
    assert tag_spellings("x") == ["x", "X"]
