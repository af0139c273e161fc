"""The receiver: the Restorer (streaming soft decoding of a video file), tiling, the ONNX engine.

Imports `models`, `data` and `media`. `from mmsd.restore import Restorer` is the same class as
`from mmsd import Restorer`.
"""


def __getattr__(name: str):
    # lazy, so that importing one helper (tiling) does not load the Restorer's torch, PyAV and librosa
    if name == "Restorer":
        from mmsd.restore.restorer import Restorer

        return Restorer
    raise AttributeError(f"module 'mmsd.restore' has no attribute {name!r}")
