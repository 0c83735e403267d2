"""Tools for the toy world that need the pipeline's decode: training and MP4 evaluation.

They live on the `jobs/` side (which depends on both `model/` and `pipeline/`) so that `model/`
never imports `pipeline/`; the world, tokenizer and shipped checkpoint stay in `model/toy/`.
"""
