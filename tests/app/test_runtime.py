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
