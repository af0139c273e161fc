"""mmsd: multi-modality soft decoding of very low bit-rate talking-head video (MMSD-Net).

Shape legend used across the package (arrays are (H, W); frame sizes are written W x H):
    B batch, T frames in a window (2N+1), C channels, H W low-resolution (LR) size,
    A audio steps per window, M MFCC coefficients, K MFCC vectors per video frame.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # lazy, so that `import mmsd` (and `mmsd --help`) does not load torch, PyAV and librosa
    if name == "Restorer":
        from mmsd.restore.restorer import Restorer

        return Restorer
    raise AttributeError(f"module 'mmsd' has no attribute {name!r}")
