"""Server-wide settings for a class: Streamlit's per-run Keras clean-up is replaced, so a rerun
never resets Keras/TensorFlow state shared with other sessions (nor pays a full GC for it)."""

from __future__ import annotations

from pathlib import Path

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")


def test_reruns_leave_keras_state_alone(monkeypatch):
    import keras
    from streamlit import config
    from streamlit.runtime.scriptrunner import script_runner
    from streamlit.testing.v1 import AppTest

    calls = []
    real = keras.backend.clear_session
    monkeypatch.setattr(keras.backend, "clear_session",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.run()
    assert not at.exception
    assert calls == [], "Streamlit still clears the Keras session after each run"
    assert script_runner._clean_problem_modules.__module__ == "ui.runtime"
    assert config.get_option("runner.postScriptGC") is False


def test_memory_is_released_when_sessions_end(monkeypatch):
    """The janitor runs a collection and malloc_trim when the number of sessions drops (and
    only then), so the server does not keep a class's peak resident."""
    import threading

    from ui import runtime

    counts = iter([None, 30, 30, 12, 12, 0, 0, 5])
    done = threading.Event()
    seen, released = [], []

    def count():
        n = next(counts, None)
        seen.append(n)
        if len(seen) == 8:
            done.set()
        return n

    monkeypatch.setattr(runtime, "session_count", count)
    monkeypatch.setattr(runtime, "release_memory", lambda: released.append(seen[-1]) or True)
    stop = threading.Event()
    thread = runtime.start_janitor(interval=0.01, stop=stop)
    assert done.wait(10)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert released == [12, 0]  # after 30 -> 12 and 12 -> 0; not after 0 -> 5 nor unchanged


def test_release_memory_hands_heap_back_on_glibc():
    import platform

    from ui import runtime

    assert isinstance(runtime.release_memory(), bool)
    if platform.libc_ver()[0] == "glibc":
        assert runtime._TRIM is not None
