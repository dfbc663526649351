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
"""

from __future__ import annotations

import sys
import threading

_DONE = threading.Event()


def _close_pyplot() -> None:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")


def configure() -> bool:
    """Apply the settings once per process; True when Streamlit's hook was replaced."""
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
    try:
        config.set_option("runner.postScriptGC", False)
    except Exception:  # noqa: BLE001 - an unknown option in another Streamlit version
        pass
    _DONE.set()
    return replaced
