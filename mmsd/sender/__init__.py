"""The sender: downsample, x264 at a CRF, carry the audio, and the emotion side information
(given by hand or by the emotion classifier of `mmsd train-emotion`).

Imports `models`, `data` and `media`; `restore` (the receiver) is its sibling and neither imports the other.
"""
