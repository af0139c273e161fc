"""Synthetic RAVDESS-like talking-head corpus (`mmsd synth`).

speech.py      espeak-ng via ctypes: actor voices, emotional prosody, timed phonemes
visemes.py     phonemes -> visemes -> per-frame mouth track (coarticulation, audio envelope)
expression.py  17 OpenFace AUs per frame: EMFACS emotion prototypes, speech AUs, blinks
face.py        68-landmark parametric face driven by the AUs, and its renderer
generate.py    the command: clips, files, workers, determinism, resume
acceptance.py  the acceptance measures of issue 3 (scripts/check_synth.py prints them)
"""
