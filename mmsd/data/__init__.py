"""Data: the RAVDESS layout and OpenFace CSVs, the synthetic corpus (`synth/`), real-image content,
degradation and the training cache (`prepare`), voice variants, and the Dataset that reads the cache.

Imports `media` only; `models` is its sibling and neither imports the other.
"""
