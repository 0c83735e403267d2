"""The clipnote pipeline: sources -> clip plan -> decode -> annotate -> sink.

Pure logic lives in plain modules (sampling, planning, schema); Ray adapters stay thin.
This package may import `model`, never `jobs`.
"""
