"""Heavy runs the user asks for: "press a button, then compute", the admission queue that heavy
work waits in, and long jobs with a Stop button.

**Gated runs.** :func:`gate` draws the button and remembers, in session state, the parameters
it was pressed for: while they stay the same the result keeps showing on every rerun (from a
cache, or from the shared store of :func:`gated_result`); once they change, the result is hidden
and a hint says why until the button is pressed again.

**The admission queue.** Every session of the app runs in a thread of one process, on a machine
with a few cores. Heavy work (:func:`is_heavy`: more than about a second) waits for one of
:data:`QUEUE`'s slots (as many as the cores; ``VIZCORE_HEAVY_SLOTS`` overrides), first come first
served; light work (predictions, page renders, single-pass maps on the small models) never
waits. While a job waits, its session shows "Waiting for a free slot: place N of M in the queue"
and a Cancel button (:func:`admitted`). Cancel takes the job out of the queue and:

- in a gated run, un-presses the gate (its button comes back; an automatic gate then waits for
  its button for the rest of the session);
- elsewhere (inside :func:`cancellable`, or a request of :mod:`ui.cache` outside any), makes the
  cancelled request raise :class:`Cancelled` on the next run, once; it runs again on the run
  after (a changed setting, a click).

The queue itself (:class:`AdmissionQueue`) has no Streamlit in it: it takes callbacks.

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

A training waits for a slot like any heavy job; its Stop button is its Cancel.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import count
from typing import Any, TypeVar

import streamlit as st

from ui.progress import ProgressBar

T = TypeVar("T")

_GATE = "vz_gate:"  # session key prefix: the parameters a gate's button was last pressed for
_CANCELLED = "vz_cancelled:"  # set by a Cancel click: the scope (gate key) that was cancelled
_MANUAL = "vz_gate_manual:"  # an automatic gate that was cancelled: it waits for its button now
_MISSING = object()

#: Shown under a gate's button when it was pressed for other parameters than the current ones.
STALE_HINT = "The settings changed since the last run: press the button to run it again."
#: Shown under a gate's button on the run after its job was cancelled in the queue.
CANCELLED_HINT = "You cancelled this run while it waited for a free slot: press the button to " \
                 "queue it again."
#: Shown where a cancelled request's result would be (see :func:`cancellable`).
CANCELLED_NOTICE = ("Cancelled while it waited for a free slot. It runs again when you change a "
                    "setting or rerun the page.")


def gate(label: str, key: str, params: Hashable, *, auto: bool = False, hint: str = "",
         hide_when_done: bool = False, refuse: str | None = None, **button_kwargs) -> bool:
    """A button that must be pressed before a heavy computation; True once it was pressed for
    ``params`` (compared with ``==``), on this run and the following ones.

    Args:
        label, key: The button's label and widget key; the parameters are remembered in session
            state under a key derived from ``key``. Wrap the gated work in
            ``cancellable(key)`` so that a Cancel click in the queue un-presses this gate.
        params: What the result depends on (model key, content digest, settings).
        auto: Skip the button (small models): always True, no button drawn; once a run of this
            gate was cancelled in the queue, the gate waits for its button for the rest of the
            session.
        hint: A caption shown above the button while there is no result for ``params`` (what
            the run costs); :data:`STALE_HINT` is added when there was one for other parameters,
            :data:`CANCELLED_HINT` on the run after a Cancel.
        hide_when_done: Draw the button only while there is no result for ``params`` (a click
            reruns the page so that it disappears at once).
        refuse: When set, a click shows this error instead of starting (e.g. nothing chosen).
        **button_kwargs: Passed to ``st.button`` (type, icon, help, ...).
    """
    ss = st.session_state
    cancelled = bool(ss.pop(_CANCELLED + key, False))
    if cancelled:
        ss[_MANUAL + key] = True
    if auto and not ss.get(_MANUAL + key):
        return True
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
    if not done and (hint or cancelled or memo is not _MISSING):
        above.caption(" ".join(t for t in (CANCELLED_HINT if cancelled else "",
                                           STALE_HINT if memo is not _MISSING else "", hint)
                               if t))
    return done


def gated_result(label: str, key: str, params: Hashable, compute: Callable[[], T], *,
                 heavy: bool = True, **gate_kwargs) -> T | None:
    """:func:`gate`, then ``compute()`` once per ``params`` for the whole server; None while the
    button waits.

    The result is kept in a shared store of :mod:`ui.cache` under ``(key, params)``, not in
    session state: ``params`` must determine the result (model key, content digests, settings),
    since every session pressing the same button for the same parameters gets it (concurrent
    ones wait for the first instead of computing it again). The computation is heavy by default:
    it waits for a slot of the admission queue. An error in ``compute``, or a Cancel in the
    queue, forgets the click, so it is not retried on its own.
    """
    if not gate(label, key, params, **gate_kwargs):
        return None
    from ui.cache import GATED  # ui.cache imports this module

    with cancellable(key, notice=None):
        try:
            return GATED.get((key, params), lambda report: compute(), None, heavy=heavy,
                             label=label)
        except BaseException:  # an error, a stop or a Cancel forgets the click
            st.session_state.pop(_GATE + key, None)
            raise
    return None  # cancelled


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


# --------------------------------------------------------------------------- the admission queue


class Cancelled(ValueError):
    """The user cancelled a request while it waited for a free slot (or for another session's
    result). A ValueError, so that the pages' "could not run" handlers show it as a message."""

    def __init__(self, label: str = "") -> None:
        super().__init__(f"{label + ': ' if label else ''}cancelled while it waited for a free "
                         "slot; it runs again when you change a setting or rerun the page")


@dataclass(eq=False)
class Ticket:
    """One job's place in an :class:`AdmissionQueue` (compared by identity)."""

    label: str
    number: int
    enqueued: float


class AdmissionQueue:
    """A first-come-first-served queue in front of ``slots`` slots, shared by every thread.

    No Streamlit here: :meth:`acquire` takes callbacks for the waiting display and for
    cancellation, so the queue can be tested on its own.

    - A job takes a slot only when it is at the head of the queue and a slot is free (strict
      FIFO: a later job never overtakes an earlier one).
    - A job that stops waiting (``cancelled()`` true, or any exception from ``on_wait``, e.g.
      Streamlit interrupting the script for a rerun) leaves the queue and holds nothing.
    - :meth:`release` frees the slot of a running ticket only; :meth:`slot` releases it however
      the block ends (a result, an exception, a stop).
    """

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"an admission queue needs at least one slot, not {slots}")
        self.slots = int(slots)
        self._cond = threading.Condition()
        self._waiting: deque[Ticket] = deque()
        self._running: list[Ticket] = []
        self._numbers = count(1)

    def status(self) -> tuple[int, int]:
        """(jobs running, jobs waiting)."""
        with self._cond:
            return len(self._running), len(self._waiting)

    def place(self, ticket: Ticket) -> int:
        """1-based place of a waiting ticket, 0 when it is not waiting (running or gone)."""
        with self._cond:
            try:
                return self._waiting.index(ticket) + 1
            except ValueError:
                return 0

    def _admit(self, ticket: Ticket) -> bool:  # with the lock held
        if self._waiting and self._waiting[0] is ticket and len(self._running) < self.slots:
            self._waiting.popleft()
            self._running.append(ticket)
            self._cond.notify_all()  # the next in line may fit too
            return True
        return False

    def acquire(self, label: str = "", on_wait: Callable[[int, int], None] | None = None,
                cancelled: Callable[[], bool] | None = None, poll: float = 0.2) -> Ticket:
        """Wait for a slot and take it; returns the running ticket (give it to :meth:`release`).

        Args:
            label: What the job is (for :meth:`snapshot`).
            on_wait: Called as ``on_wait(place, waiting)`` (1-based place, jobs waiting) when the
                job has to wait and then every ``poll`` seconds until it gets a slot, outside the
                queue's lock. An exception from it takes the job out of the queue and propagates.
            cancelled: Polled as often; True takes the job out of the queue and raises
                :class:`Cancelled`.
            poll: Seconds between two calls of the callbacks while waiting.
        """
        ticket = Ticket(label, next(self._numbers), time.monotonic())
        with self._cond:
            self._waiting.append(ticket)
            if self._admit(ticket):
                return ticket
        try:
            while True:
                with self._cond:
                    if self._admit(ticket):
                        return ticket
                    place, waiting = self._waiting.index(ticket) + 1, len(self._waiting)
                if cancelled is not None and cancelled():
                    raise Cancelled(label)
                if on_wait is not None:
                    on_wait(place, waiting)
                with self._cond:
                    if self._admit(ticket):
                        return ticket
                    self._cond.wait(poll)
        except BaseException:
            with self._cond:
                if ticket in self._waiting:
                    self._waiting.remove(ticket)
                    self._cond.notify_all()  # the ones behind move up
            raise

    def release(self, ticket: Ticket) -> bool:
        """Free the slot ``ticket`` holds; False (and nothing freed) when it holds none."""
        with self._cond:
            if ticket not in self._running:
                return False
            self._running.remove(ticket)
            self._cond.notify_all()
            return True

    @contextmanager
    def slot(self, label: str = "", on_wait: Callable[[int, int], None] | None = None,
             cancelled: Callable[[], bool] | None = None, poll: float = 0.2) -> Iterator[Ticket]:
        """Hold a slot for the length of a ``with`` block (see :meth:`acquire`)."""
        ticket = self.acquire(label, on_wait, cancelled, poll)
        try:
            yield ticket
        finally:
            self.release(ticket)

    def snapshot(self) -> dict[str, list[str]]:
        """The labels of the running and the waiting jobs, in order (for a status display)."""
        with self._cond:
            return {"running": [t.label for t in self._running],
                    "waiting": [t.label for t in self._waiting]}


def heavy_slots() -> int:
    """Slots of the admission queue: ``VIZCORE_HEAVY_SLOTS`` if set, else the number of cores."""
    env = os.environ.get("VIZCORE_HEAVY_SLOTS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            pass
    return max(1, os.cpu_count() or 1)


#: The process-wide queue every session's heavy work waits in.
QUEUE = AdmissionQueue(heavy_slots())

# --------------------------------------------------------------------------- heavy or light

#: A job estimated to take longer than this (seconds) is heavy: it waits for a slot.
HEAVY_SECONDS = 1.0
#: Multiply-adds per second one job gets on this kind of machine (two shared CPU cores, TF);
#: measured: VGG16's saliency (2 x 15.5 GMAC) takes about 0.9 s, 625 occlusion passes of the
#: 7.8 MMAC Fashion-MNIST CNN about 0.1 s.
MACS_PER_SECOND = 30e9
#: Fixed cost of one sequential compiled step (an optimiser step, a batch), seconds: 200 steps
#: of activation maximization on the small CNN take about 1.5 s whatever the model's size.
STEP_SECONDS = 0.005

_MACS: dict[str, float] = {}
_MACS_LOCK = threading.Lock()


def model_macs(info) -> float:
    """Multiply-adds of one forward pass of one image through ``info``'s model (estimated once
    per model key): the sum over layers of their weights times their output's spatial
    positions (exact for convolutions and dense layers, which dominate)."""
    with _MACS_LOCK:
        if info.key in _MACS:
            return _MACS[info.key]
    g = info.graph
    total = 0.0
    for name in g.layers():
        shape = g.output_shape(name)
        positions = math.prod(int(d or 1) for d in shape[1:-1]) if len(shape) > 2 else 1
        total += g.layer(name).count_params() * positions
    total = max(total, float(math.prod(info.input_shape)))  # a model without weights still runs
    with _MACS_LOCK:
        _MACS[info.key] = total
    return total


def is_heavy(info, passes: float = 0, steps: float = 0, seconds: float = 0.0) -> bool:
    """Whether a job is heavy (waits for a slot of :data:`QUEUE`) or light (runs at once).

    The rule: a job is heavy when its estimated time exceeds :data:`HEAVY_SECONDS` (about a
    second) on this kind of machine, where

        estimate = passes x model_macs(info) / MACS_PER_SECOND + steps x STEP_SECONDS + seconds

    - ``passes``: single-image passes through the model, forward or backward (a backward pass
      counts as one, a partial one as half; see :func:`explain_passes`); ``model_macs`` is the
      model's cost per image, so the input size and the architecture both count (the same
      number of pixels costs 2,000 times more on VGG16 than on the Fashion-MNIST CNN).
    - ``steps``: sequential compiled calls (optimiser steps, batches), each with a fixed cost.
    - ``seconds``: work that is not model passes (t-SNE, UMAP; ``math.inf`` for training).

    So, on the Fashion-MNIST CNN, every single-pass map, SmoothGrad (100 passes) and an
    occlusion map (625 passes) are light, while activation maximization (200 steps) is heavy; on
    VGG16 (224x224x3, 15.5 GMAC) Grad-CAM (1.5 passes) and CAM are light, while saliency,
    SmoothGrad, integrated gradients, Score-CAM, LRP and occlusion are heavy.
    """
    estimate = passes * (model_macs(info) if passes else 0.0) / MACS_PER_SECOND
    return estimate + steps * STEP_SECONDS + seconds > HEAVY_SECONDS


#: Model passes of one explanation by method key (forward and backward passes; a backward pass
#: that stops at the CAM layer counts as half; an LRP relevance pass as three, as measured).
_FIXED_PASSES = {"cam": 1, "gradcam": 1.5, "gradcam_plus_plus": 1.5, "layercam": 1.5,
                 "saliency": 2, "guided_backprop": 2, "guided_gradcam": 3.5}


def explain_passes(info, method: str, params: dict | None = None,
                   layer: str | None = None) -> float:
    """Model passes of one explanation with ``method`` (``params`` completed by its defaults),
    for :func:`is_heavy`. An unknown method counts as 50 passes."""
    from vizcore.explain import REGISTRY

    spec = REGISTRY.get(method)
    p = {**(spec.defaults() if spec is not None else {}), **(params or {})}
    if method in _FIXED_PASSES:
        return _FIXED_PASSES[method]
    if method.startswith("lrp"):
        return 4
    if method == "smoothgrad":
        return 2 * int(p["n"])
    if method == "integrated_gradients":
        return 2 * int(p["steps"])
    if method == "faster_score_cam":
        return 1 + int(p["max_n"])
    if method == "score_cam":
        cam = layer or info.cam_layer()
        return 1 + (int(info.graph.output_shape(cam)[-1]) if cam else 512)
    if method == "occlusion":
        from vizcore import occlusion as occ

        _, _, ys, xs = occ.resolve_geometry(info.input_shape, p.get("patch"), p.get("stride"))
        return 1 + len(ys) * len(xs)
    return 50


# --------------------------------------------------------------------------- waiting, cancelling

_local = threading.local()  # per script thread: the slots held, the cancellable scopes


@dataclass
class Scope:
    """A cancellable request's name (the Cancel button's key and the gate it un-presses) and
    whether it was cancelled on the previous run."""

    key: str
    cancelled: bool = False


def _in_script() -> bool:
    try:
        from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx
    except ImportError:  # pragma: no cover - another Streamlit layout
        return False
    return get_script_run_ctx(suppress_warning=True) is not None


def _yield() -> None:
    """Let a pending rerun or stop interrupt this script run (raises Streamlit's exception)."""
    try:
        from streamlit.runtime.scriptrunner_utils.script_run_context import get_run_yield_check
    except ImportError:  # pragma: no cover - another Streamlit layout
        return
    check = get_run_yield_check()
    if check is not None:
        check()


def _scopes() -> list[Scope]:
    if not hasattr(_local, "scopes"):
        _local.scopes = []
    return _local.scopes


def holds_slot() -> bool:
    """True while this thread runs a heavy job (its nested work runs in the same slot)."""
    return getattr(_local, "held", 0) > 0


@contextmanager
def cancellable(key: str, notice: str | None = CANCELLED_NOTICE) -> Iterator[Scope]:
    """A block whose heavy requests can be cancelled in the queue, as one: ``key`` names the
    Cancel buttons and, for a gated block, is the gate's key (a Cancel un-presses it).

    On the run after a Cancel the block's first request that is not cached raises
    :class:`Cancelled`; the block ends there and ``notice`` is shown (None: nothing).
    """
    ss = st.session_state if _in_script() else {}
    scope = Scope(key, bool(ss.pop(_CANCELLED + key, False)))
    stack = _scopes()
    stack.append(scope)
    try:
        yield scope
    except Cancelled:
        scope.cancelled = True
        if notice:
            st.info(notice, icon=":material/block:")
    finally:
        stack.remove(scope)


def request_scope(label: str) -> Scope:
    """The scope of a request: the innermost :func:`cancellable` block, else one named after the
    request's label whose Cancel counts for the next run only (consumed here)."""
    stack = _scopes()
    if stack:
        return stack[-1]
    key = "q:" + label
    cancelled = bool(st.session_state.pop(_CANCELLED + key, False)) if _in_script() else False
    return Scope(key, cancelled)


def _cancel(scope_key: str) -> None:
    """The Cancel button's callback (runs before the rerun it causes, which interrupts the
    wait): un-press the gate of that name and remember the cancel for the next run."""
    ss = st.session_state
    ss.pop(_GATE + scope_key, None)
    ss[_CANCELLED + scope_key] = True


def queue_text(place: int, waiting: int) -> str:
    """What a waiting session reads."""
    return (f"Waiting for a free slot: place {place} of {waiting} in the queue. Heavy jobs run "
            f"{QUEUE.slots} at a time on this server; light pages keep working meanwhile.")


class WaitBox:
    """Where a session waits: a message (or a progress bar) and a Cancel button, drawn on the
    first :meth:`show` and removed by :meth:`clear`. Every :meth:`show` lets a click interrupt
    the wait (the Cancel click included); the drawing is redrawn only when it changes."""

    def __init__(self, scope: Scope | None, cancel: bool = True) -> None:
        self.scope = scope
        self.cancel = cancel and scope is not None
        self._outer = self._slot = None
        self._last: tuple | None = None

    def show(self, text: str, fraction: float | None = None) -> None:
        if not _in_script():
            return
        if self._outer is None:
            self._outer = st.empty()
            with self._outer.container():
                self._slot = st.empty()
                if self.cancel:
                    self._button()
        now = (text, None if fraction is None else round(fraction, 2))
        if now != self._last:
            self._last = now
            if fraction is None:
                self._slot.info(text, icon=":material/hourglass_top:")
            else:
                self._slot.progress(min(1.0, max(0.0, fraction)), text=text)
        _yield()

    def _button(self) -> None:
        from streamlit.errors import StreamlitDuplicateElementKey

        for i in range(100):  # one request may wait several times in one run
            try:
                st.button("Cancel", key=f"vz_cancel:{self.scope.key}:{i}", on_click=_cancel,
                          args=(self.scope.key,), icon=":material/close:",
                          help="Leave the queue: nothing of yours runs or is freed.")
                return
            except StreamlitDuplicateElementKey:
                continue

    def clear(self) -> None:
        if self._outer is not None:
            self._outer.empty()
            self._outer = None


@contextmanager
def admitted(label: str, heavy: bool = True, scope: Scope | None = None,
             show: Callable[[str], None] | None = None, cancel: bool = True) -> Iterator[None]:
    """Hold a slot of :data:`QUEUE` for the block when ``heavy``; a light block runs at once,
    and so does heavy work nested in a block that holds a slot already.

    While waiting, the session shows :func:`queue_text` (updated) and a Cancel button; ``show``
    also receives the text (the sessions waiting for the same result show it). With
    ``cancel=False`` and a ``show`` (a job with its own progress bar and Stop button), only
    ``show`` shows it. The slot is released however the block ends.
    """
    if not heavy or holds_slot():
        yield
        return
    scope = scope or request_scope(label)
    box = WaitBox(scope, cancel) if cancel or show is None else None  # else: show() shows it

    def on_wait(place: int, waiting: int) -> None:
        text = queue_text(place, waiting)
        if show is not None:
            show(text)
        if box is not None:
            box.show(text)
        elif _in_script():
            _yield()

    try:
        ticket = QUEUE.acquire(label, on_wait=on_wait)
    finally:
        if box is not None:
            box.clear()
    _local.held = getattr(_local, "held", 0) + 1
    try:
        yield
    finally:
        _local.held -= 1
        QUEUE.release(ticket)


def wait_for(done: threading.Event, status: Callable[[], tuple[float, str | None]],
             label: str, scope: Scope | None = None, cancel: bool = True,
             after: float = 0.3, poll: float = 0.1) -> None:
    """Wait until ``done`` is set, while another thread computes what this session asked for.

    After ``after`` seconds a progress bar mirrors ``status()`` (fraction, message) of the other
    computation, with a Cancel button when ``cancel``; a click (Cancel or any other) interrupts
    the wait (through Streamlit's exception), never the other computation.
    """
    box = WaitBox(scope, cancel)
    start = time.monotonic()
    try:
        while not done.wait(poll):
            if time.monotonic() - start >= after:
                fraction, message = status()
                box.show(message or f"Another session is computing the same result ({label}); "
                         "it is shared with you when it is ready.", fraction)
            elif _in_script():
                _yield()
    finally:
        box.clear()
