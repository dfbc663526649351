"""Server-wide settings for many sessions in one process (a class on one server).

Streamlit calls ``keras.backend.clear_session()`` after every script run of every session (its
"problem modules" clean-up). With TensorFlow loaded that is a full garbage collection plus a
reset of TensorFlow's eager kernel cache and of Keras's global name state, on the shared
process: 0.3 s of CPU per rerun here, most of a Home rerun (0.40 s of CPU with it, 0.09 s
without), and a reset that can land while another session's thread is building a Keras model.
vizcore never relies on Keras's global state between runs (models are built once, in cached
factories), so :func:`configure` replaces that clean-up with the part that still matters (closing
pyplot figures) and turns off the extra full collection Streamlit runs after each script
(``runner.postScriptGC``; Python's own generational collector still runs).

It limits glibc's malloc arenas to :data:`ARENAS` and starts a janitor thread: when sessions
end (a class closes its tabs, and Streamlit frees them after ``server.disconnectedSessionTTL``),
it shuts down the expired ones, runs one full collection and hands the freed heap back to the
system (glibc's ``malloc_trim``). Without it the server keeps the peak of a class resident for
ever: every script run is a new thread, glibc gives threads their own malloc arenas, and freed
arena memory stays mapped.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import sys
import threading
import time

_DONE = threading.Event()
_LOCK = threading.Lock()
#: Seconds between two looks at the number of sessions.
JANITOR_INTERVAL = 10.0


def _logger() -> logging.Logger:
    try:  # Streamlit's loggers print at its ``logger.level`` (info by default)
        from streamlit.logger import get_logger

        return get_logger(__name__)
    except ImportError:
        return logging.getLogger(__name__)


log = _logger()


def _libc_function(name: str, argtypes: list, restype):
    """glibc's ``name`` through ctypes, or None (not glibc: macOS, musl)."""
    try:
        fn = getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = argtypes, restype
    return fn


_TRIM = _libc_function("malloc_trim", [ctypes.c_size_t], ctypes.c_int)
#: glibc's malloc arenas for the whole process (its default is 8 per core: with a new thread
#: for every script run, each arena keeps its own free memory that no other thread reuses).
ARENAS = 2
M_ARENA_MAX = -8


def _limit_arenas(n: int) -> bool:
    mallopt = _libc_function("mallopt", [ctypes.c_int, ctypes.c_int], ctypes.c_int)
    return bool(mallopt is not None and mallopt(M_ARENA_MAX, n))


def release_memory() -> bool:
    """One full garbage collection, then return free heap pages to the system. True when the
    C library could hand memory back (glibc)."""
    gc.collect()
    return bool(_TRIM is not None and _TRIM(0))


def census(top: int = 25) -> str:
    """The most numerous object types the collector tracks, and live AppSessions (a
    diagnostic for memory that does not come back, ``VIZCORE_DEBUG_MEMORY=1``)."""
    from collections import Counter

    counts = Counter(type(o).__qualname__ for o in gc.get_objects())
    return ", ".join(f"{k}={v}" for k, v in counts.most_common(top)) + (
        f"; AppSession={counts.get('AppSession', 0)}, SessionState="
        f"{counts.get('SessionState', 0)}, ScriptRunner={counts.get('ScriptRunner', 0)}, "
        f"DeltaGenerator={counts.get('DeltaGenerator', 0)}")


def session_count() -> int | None:
    """Sessions the server holds (connected, or disconnected within their TTL); None outside a
    running Streamlit server."""
    try:
        from streamlit.runtime import Runtime

        if not Runtime.exists():
            return None
        return Runtime.instance()._session_mgr.num_sessions()
    except Exception:  # noqa: BLE001 - a private API of another Streamlit version
        return None


def reap_expired_sessions() -> int | None:
    """Shut down the disconnected sessions whose ``server.disconnectedSessionTTL`` has passed.

    Streamlit keeps a disconnected session in a TTL cache that drops expired entries only
    lazily, when another session is stored: after a class, nobody connects, so all thirty
    sessions (their state, their widgets' values) stay in memory for ever. Runs on the server's
    event loop, under the session manager's lock. Returns how many were shut down (None outside
    a running server, or in a Streamlit without that cache)."""
    import asyncio

    try:
        from streamlit.runtime import Runtime

        if not Runtime.exists():
            return None
        rt = Runtime.instance()
        mgr = rt._session_mgr
        cache = getattr(getattr(mgr, "_session_storage", None), "_cache", None)
        lock = getattr(mgr, "_storage_lock", None)
        loop = rt._get_async_objs().eventloop
    except Exception:  # noqa: BLE001 - private API of another Streamlit version
        return None
    if cache is None or lock is None or not hasattr(cache, "expire"):
        return None

    async def reap() -> int:
        with lock:
            removed = cache.expire()
        for _, info in removed:
            info.session.shutdown()
        return len(removed)

    return asyncio.run_coroutine_threadsafe(reap(), loop).result(timeout=30)


def _janitor(interval: float, stop: threading.Event) -> None:
    last = None
    while not stop.wait(interval):
        try:
            reaped = reap_expired_sessions() or 0
        except Exception:  # noqa: BLE001 - never let the janitor die
            log.warning("reaping expired sessions failed", exc_info=True)
            reaped = 0
        n = session_count()
        if reaped or n is not None and last is not None and n < last:
            t0 = time.perf_counter()
            released = release_memory()
            log.info("sessions ended (%s left, %d expired): memory released in %.2f s%s", n,
                     reaped, time.perf_counter() - t0, "" if released else " (no malloc_trim)")
            if os.environ.get("VIZCORE_DEBUG_MEMORY"):
                log.info("live objects: %s", census())
        last = n if n is not None else last


def start_janitor(interval: float = JANITOR_INTERVAL,
                  stop: threading.Event | None = None) -> threading.Thread:
    """Start the janitor thread (see the module's docstring); it ends when ``stop`` is set."""
    t = threading.Thread(target=_janitor, args=(interval, stop or threading.Event()),
                         name="vizcore-janitor", daemon=True)
    t.start()
    return t


def _close_pyplot() -> None:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")


def configure() -> bool:
    """Apply the settings once per process; True when Streamlit's hook was replaced."""
    with _LOCK:
        if _DONE.is_set():
            return True
        try:
            from streamlit import config
            from streamlit.runtime.scriptrunner import script_runner
        except ImportError:
            return False
        replaced = hasattr(script_runner, "_clean_problem_modules")
        if replaced:
            script_runner._clean_problem_modules = _close_pyplot
        for option, value in (("runner.postScriptGC", False),
                              # links set widgets' values before the widgets are drawn
                              ("global.disableWidgetStateDuplicationWarning", True)):
            try:
                config.set_option(option, value)
            except Exception:  # noqa: BLE001 - an unknown option in another Streamlit version
                pass
        _limit_arenas(ARENAS)
        start_janitor()
        _DONE.set()
        return replaced
