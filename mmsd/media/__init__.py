"""Media: container and audio I/O (PyAV), MFCC, frame timing, the emotion side information, atomic files.

The bottom layer: it imports nothing of mmsd but `emotions` and `errors`, and no network.
"""
