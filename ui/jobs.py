"""Heavy runs the user asks for: "press a button, then compute", and long jobs with a Stop button.

**Gated runs.** :func:`gate` draws the button and remembers, in session state, the parameters
it was pressed for: while they stay the same the result keeps showing on every rerun (from a
cache, or kept by :func:`gated_result`); once they change, the result is hidden and a hint says
why until the button is pressed again.

**Long jobs** (:class:`Job`, the Training lab's protocol). Training runs inside the script run:
Streamlit clears Keras's session and garbage-collects after every script or fragment run, which
starves a background thread polled by a fragment. So:

1. a click on the start button stores the request (:meth:`Job.request`) and reruns the page
   with every control disabled (:attr:`Job.requested`);
2. that run takes the request (:meth:`Job.start`: a progress bar and a Stop button) and works,
   keeping the object it builds in session state (:meth:`Job.keep`) on its first progress call;
3. a click on Stop (or anything else) starts a new run at once, and the old one stops at its
   next progress update (a Streamlit call); the core then finishes the object as "stopped";
4. whichever run pops the kept object (:meth:`Job.release`, :meth:`Job.interrupted`) owns it
   and saves it: the new run finds it at the top of the page and waits for it
   (:func:`wait_until`); the old one, finding it gone, ends quietly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import streamlit as st

from ui.progress import ProgressBar

T = TypeVar("T")

_GATE = "vz_gate:"  # session key prefix: the parameters a gate's button was last pressed for
_RESULT = "vz_gate_result:"  # (parameters, result) kept by gated_result
_MISSING = object()

#: Shown under a gate's button when it was pressed for other parameters than the current ones.
STALE_HINT = "The settings changed since the last run: press the button to run it again."


def gate(label: str, key: str, params: Hashable, *, auto: bool = False, hint: str = "",
         hide_when_done: bool = False, refuse: str | None = None, **button_kwargs) -> bool:
    """A button that must be pressed before a heavy computation; True once it was pressed for
    ``params`` (compared with ``==``), on this run and the following ones.

    Args:
        label, key: The button's label and widget key; the parameters are remembered in session
            state under a key derived from ``key``.
        params: What the result depends on (model key, content digest, settings).
        auto: Skip the button (small models): always True, no button drawn.
        hint: A caption shown above the button while there is no result for ``params`` (what
            the run costs); :data:`STALE_HINT` is added when there was one for other parameters.
        hide_when_done: Draw the button only while there is no result for ``params`` (a click
            reruns the page so that it disappears at once).
        refuse: When set, a click shows this error instead of starting (e.g. nothing chosen).
        **button_kwargs: Passed to ``st.button`` (type, icon, help, ...).
    """
    if auto:
        return True
    ss = st.session_state
    memo = ss.get(_GATE + key, _MISSING)
    done = memo is not _MISSING and memo == params
    if done and hide_when_done:
        return True
    above = st.empty()  # the hint goes above the button, once the click is known
    if st.button(label, key=key, **button_kwargs):
        if refuse:
            st.error(refuse)
        else:
            ss[_GATE + key] = params
            if hide_when_done:
                st.rerun()
            return True
    if not done and (hint or memo is not _MISSING):
        above.caption(" ".join(t for t in (STALE_HINT if memo is not _MISSING else "", hint)
                               if t))
    return done


def gated_result(label: str, key: str, params: Hashable, compute: Callable[[], T],
                 **gate_kwargs) -> T | None:
    """:func:`gate`, then ``compute()`` once per ``params``, its result kept in session state
    (small results only: the figures' data, not models) and returned on later reruns; None while
    the button waits. An error in ``compute`` forgets the click, so it is not retried on its own.
    """
    if not gate(label, key, params, **gate_kwargs):
        return None
    ss = st.session_state
    kept = ss.get(_RESULT + key)
    if kept is None or kept[0] != params:
        try:
            kept = ss[_RESULT + key] = (params, compute())
        except BaseException:
            ss.pop(_GATE + key, None)
            raise
    return kept[1]


def wait_until(done: Callable[[], bool], seconds: float = 120, poll: float = 0.2) -> bool:
    """Poll ``done()`` until it is true or ``seconds`` have passed; returns its last value."""
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(poll)
    return done()


class Job:
    """The start/stop protocol of one kind of long job (see the module docstring).

    Session keys: ``{prefix}_pending`` holds the request (a small dict of settings),
    ``{prefix}_active`` the object the running job builds, while it runs.
    """

    def __init__(self, prefix: str) -> None:
        self.pending_key = f"{prefix}_pending"
        self.active_key = f"{prefix}_active"
        self._kept = False  # a Job lives for one script run: keep() acts once per run

    @property
    def requested(self) -> bool:
        """A start was requested: this run works (and every control should be disabled)."""
        return st.session_state.get(self.pending_key) is not None

    def request(self, params: dict) -> None:
        """Store the request and rerun the page (with the controls disabled); never returns."""
        st.session_state[self.pending_key] = params
        st.rerun()

    def start(self, text: str, stop_key: str, stop_help: str, container=None,
              min_interval: float = 0.3) -> tuple[dict, ProgressBar]:
        """Take the request; draw a progress bar (the returned callback, throttled: each update
        is where a Stop click interrupts the run) beside a Stop button in ``container``."""
        params = st.session_state.pop(self.pending_key)
        left, right = (container if container is not None else st).columns(
            [5, 1], vertical_alignment="center")
        bar = ProgressBar(text, left, min_interval=min_interval)
        right.button("Stop", key=stop_key, icon=":material/stop:", help=stop_help)
        return params, bar

    def keep(self, obj: Any) -> None:
        """Keep the object being built, for the run that interrupts this one. Only the first
        call of a run counts: a later one must not hand the object back after a newer run took
        it."""
        if not self._kept:
            st.session_state[self.active_key] = obj
            self._kept = True

    def release(self) -> Any:
        """Pop the kept object when the work ends: None means a newer run (started by a click
        while the core was finishing) took it over and saves it, so this run must end quietly."""
        return st.session_state.pop(self.active_key, None)

    def interrupted(self) -> Any:
        """At the top of the page: the object an interrupted run left behind (now this run's to
        save), or None."""
        return st.session_state.pop(self.active_key, None)
