"""One throttled progress bar for long work: ``with progress(text) as update: work(update)``.

The callback takes ``update(fraction)`` (what the core's ``progress=`` arguments call) or
``update(fraction, message)`` (the embedding steps and the recorder add a message). It redraws
the bar at most once every ``min_interval`` seconds: every redraw is a message to the browser,
which competes with the computation for the CPU. Each redraw is also a Streamlit call, which is
where a click (a Stop button) interrupts the script run. The bar is removed when the block ends.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

#: Seconds between two redraws (at most about 10 per second).
MIN_INTERVAL = 0.1


class ProgressBar:
    """An ``st.progress`` bar that is also a throttled ``callback(fraction, message=None)``.

    Args:
        text: The text shown until the first update, and with every update that brings none.
        container: Where to draw the bar (``st``, a column, a container); default ``st``.
        update: A format for the text of updates without a message, given the fraction, e.g.
            ``"Optimising... {:.0%}"``; default: keep ``text``.
        min_interval: Seconds between two redraws; a fraction of 1.0 is always drawn.
    """

    def __init__(self, text: str, container=None, update: str | None = None,
                 min_interval: float = MIN_INTERVAL) -> None:
        self.text = text
        self.update = update
        self.min_interval = min_interval
        self.fraction = 0.0
        self.redraws = 0
        self._last = -math.inf
        self._bar = (container if container is not None else st).progress(0.0, text=text)

    def __call__(self, fraction: float, message: str | None = None, force: bool = False) -> None:
        """Show ``fraction`` (clipped to [0, 1]) and ``message``, unless the bar was redrawn less
        than ``min_interval`` ago (``force`` redraws anyway)."""
        self.fraction = min(1.0, max(0.0, float(fraction)))
        now = time.monotonic()
        if not force and self.fraction < 1.0 and now - self._last < self.min_interval:
            return
        self._last = now
        self.redraws += 1
        if message is None:
            message = self.update.format(self.fraction) if self.update else self.text
        self._bar.progress(self.fraction, text=message)

    def clear(self) -> None:
        """Remove the bar from the page."""
        self._bar.empty()


@contextmanager
def progress(text: str, container=None, update: str | None = None,
             min_interval: float = MIN_INTERVAL) -> Iterator[ProgressBar]:
    """A :class:`ProgressBar` for the length of a ``with`` block, cleared when it ends (also on
    an error)."""
    bar = ProgressBar(text, container, update, min_interval)
    try:
        yield bar
    finally:
        bar.clear()
