"""The optional progress callback the embedding steps share.

A step takes ``progress(fraction, message)`` or None; it is always called from the caller's
thread, with the fraction clipped to [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[float, str], None] | None


def report(progress: Progress, fraction: float, message: str) -> None:
    """Call ``progress`` (when given) with ``fraction`` clipped to [0, 1]."""
    if progress is not None:
        progress(float(min(max(fraction, 0.0), 1.0)), message)


def scaled(progress: Progress, lo: float, hi: float) -> Progress:
    """A callback mapping [0, 1] of a sub-step onto [lo, hi] of the whole."""
    if progress is None:
        return None
    return lambda f, m: progress(lo + (hi - lo) * f, m)
