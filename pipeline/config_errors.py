"""Config mistakes said the way a user can fix them: which field, and what was probably meant.

Pydantic names the place of an error (`clips.lenght_s`) but not the key that was meant, and a
YAML parser reports its position across several lines naming `<unicode string>`. Both are
turned into one line per problem here, from the config's own field names, so the suggestion
can never name a key the config does not have.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

UNKNOWN_KEY_ERRORS = frozenset({"extra_forbidden", "unexpected_keyword_argument"})


def field_names(settings: type) -> list[str]:
    """The keys a settings class accepts: a pydantic model's fields or a dataclass's."""
    if isinstance(settings, type) and issubclass(settings, BaseModel):
        return list(settings.model_fields)
    if dataclasses.is_dataclass(settings):
        return [f.name for f in dataclasses.fields(settings)]
    return []


def settings_at(root: type, path: Sequence[str | int]) -> type | None:
    """The settings class found at `path` below `root` (None where the path leaves them)."""
    current: Any = root
    for key in path:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(key))
            current = field.annotation if field else None
        elif dataclasses.is_dataclass(current):
            found = {f.name: f.type for f in dataclasses.fields(current)}.get(str(key))
            current = found if isinstance(found, type) else None
        else:
            return None
    return current if isinstance(current, type) else None


def unknown_key_message(root: type, loc: Sequence[str | int]) -> str:
    """`unknown key; did you mean clips.length_s?`, or the valid keys when none is close."""
    *parent, key = [str(part) for part in loc]
    valid = field_names(settings_at(root, parent) or type(None))
    prefix = ".".join(parent) + "." if parent else ""
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean {prefix}{close[0]}?"
    if valid:
        return f"unknown key; valid keys here: {', '.join(valid)}"
    return "unknown key"


def describe_validation(err: ValidationError, root: type) -> str:
    """One line per problem, each naming its field."""
    lines = []
    for problem in err.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "config"
        if problem["type"] in UNKNOWN_KEY_ERRORS and problem["loc"]:
            message = unknown_key_message(root, problem["loc"])
        else:
            message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {message}")
    return "invalid config:\n  " + "\n  ".join(lines)


def describe_yaml(path: str | Path, err: yaml.YAMLError) -> str:
    """`FILE:LINE:COLUMN: not valid YAML: what the parser expected`, on one line."""
    mark = getattr(err, "problem_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    context = getattr(err, "context", None)
    started = getattr(err, "context_mark", None)
    if context and started is not None:
        context = f"{context} started at line {started.line + 1}"
    reason = f"{problem} ({context})" if context else problem
    return f"{where}: not valid YAML: {reason}"
