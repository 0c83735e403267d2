"""What a row's `status` can say, in one place: every stage and every reader compares
against these, never against a bare string.
"""

from __future__ import annotations

STATUS_OK = "ok"


STATUS_DECODE_ERROR = "decode_error"


STATUS_MODEL_ERROR = "model_error"
