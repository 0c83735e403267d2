"""Synthetic toy world: coloured shapes moving over muted backgrounds, with known captions.

Used to train a tiny video LLM and to check captioning end to end against exact ground truth.
"""
