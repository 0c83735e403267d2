"""Default questions clipnote asks the model: what a user of a captioning tool would send.

They are plain questions in the published prompt template (see `processing.build_prompt`);
runs may override them in their config, and every prompt is part of an annotation's
fingerprint.
"""

CAPTION_PROMPT = "Describe what happens in this video in one sentence."
TAG_PROMPT = "List tags for this video, separated by commas."
TAXONOMY_QUESTION = "Does the tag '{tag}' apply to this video? Answer yes or no."
