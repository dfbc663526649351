"""The ui spine without a model: the throttled progress bar, the shared results store and gated
runs (their cancellation in the admission queue included)."""

from contextlib import contextmanager

import pytest
from streamlit.testing.v1 import AppTest

from ui import jobs
from ui.progress import ProgressBar


class _FakeBar:
    def __init__(self, log):
        self.log = log

    def progress(self, value, text=None):
        self.log.append((value, text))
        return self

    def empty(self):
        self.log.append("empty")


def test_progress_bar_throttles_clips_and_always_draws_the_end():
    log = []
    bar = ProgressBar("Working...", _FakeBar(log), update="Working... {:.0%}", min_interval=60)
    assert log == [(0.0, "Working...")]
    bar(0.25)  # the first update is drawn
    bar(0.5)  # dropped: less than min_interval after the last redraw
    bar(0.75, "a message", force=True)  # forced through
    bar(2.0)  # clipped to 1.0 and drawn: the end is never dropped
    bar.clear()
    assert log[1:] == [(0.25, "Working... 25%"), (0.75, "a message"), (1.0, "Working... 100%"),
                       "empty"]
    assert bar.redraws == 3 and bar.fraction == 1.0


def test_progress_bar_keeps_its_text_without_an_update_format():
    log = []
    bar = ProgressBar("Scoring...", _FakeBar(log), min_interval=0)
    bar(-1)
    bar(0.5, "half")
    assert log == [(0.0, "Scoring..."), (0.0, "Scoring..."), (0.5, "half")]


def test_shared_results_compute_once_per_key_and_evict_the_oldest(monkeypatch):
    from ui import cache

    bars = []

    @contextmanager
    def fake_progress(text, container=None, update=None, min_interval=0.1):
        bars.append(text)
        yield lambda *a, **k: None

    monkeypatch.setattr(cache, "progress", fake_progress)
    lru, calls = cache.SharedResults(2), []

    def compute(tag):
        def run(cb):
            cb(0.5)
            calls.append(tag)
            return tag.upper()
        return run

    assert lru.get("a", compute("a"), "A") == "A"
    assert lru.get("a", compute("a"), "A") == "A"  # a hit: no computation, no bar
    assert calls == ["a"] and bars == ["A"]
    lru.get("b", compute("b"), "B")
    lru.get("a", compute("a"), "A")  # "a" is now the most recently used
    lru.get("c", compute("c"), "C")  # evicts "b", the least recently used
    assert len(lru) == 2 and "a" in lru and "c" in lru and "b" not in lru
    lru.get("b", compute("b"), "B")
    assert calls == ["a", "b", "c", "b"] and lru.computed == 4


def _gate_page():
    import streamlit as st

    from ui import jobs

    params = st.session_state.get("params", 1)
    hide = st.session_state.get("hide", False)
    if jobs.gate("Go", "go", params, hint="This costs a lot.", hide_when_done=hide):
        st.markdown(f"result for {params}")


def _gate(state: dict | None = None) -> AppTest:
    at = AppTest.from_function(_gate_page, default_timeout=30)
    for k, v in (state or {}).items():
        at.session_state[k] = v
    return at.run()


def _results(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("result")]


def test_gate_waits_for_the_button_then_keeps_the_result_until_the_parameters_change():
    at = _gate()
    assert not at.exception and _results(at) == []
    assert [c.value for c in at.caption] == ["This costs a lot."]
    at.button(key="go").click().run()
    assert _results(at) == ["result for 1"] and not at.caption
    at.run()  # any other rerun keeps it
    assert _results(at) == ["result for 1"]
    at.session_state["params"] = 2
    at.run()
    assert _results(at) == []
    assert [c.value for c in at.caption] == [f"{jobs.STALE_HINT} This costs a lot."]
    at.button(key="go").click().run()
    assert _results(at) == ["result for 2"]
    at.session_state["params"] = 1  # back to the first settings: pressed for 2, so stale
    at.run()
    assert _results(at) == []


def test_gate_can_hide_its_button_once_done():
    at = _gate({"hide": True})
    at.button(key="go").click().run()
    assert not at.exception and _results(at) == ["result for 1"]
    assert not [b for b in at.button if b.key == "go"]


def _gated_result_page():
    import streamlit as st

    from tests.app import test_spine
    from ui import jobs

    def compute():
        test_spine.RUNS.append(st.session_state.get("params", 1))
        if st.session_state.get("fail"):
            raise ValueError("broken")
        return st.session_state.get("params", 1) * 10

    params = (st.session_state.get("fail", False), st.session_state.get("params", 1))
    try:
        value = jobs.gated_result("Go", "go", params, compute)
    except ValueError:
        st.error("failed")
    else:
        st.markdown(f"value {value}")


#: The computations of _gated_result_page (module-level: the results are shared by sessions).
RUNS: list = []


@pytest.fixture
def fresh_gated():
    from ui import cache

    cache.GATED.clear()
    RUNS.clear()
    yield
    cache.GATED.clear()


def _gated_session(state: dict | None = None) -> AppTest:
    at = AppTest.from_function(_gated_result_page, default_timeout=30)
    for k, v in (state or {}).items():
        at.session_state[k] = v
    return at.run()


@pytest.mark.parametrize("fail", [False, True])
def test_gated_result_computes_once_per_parameters(fail, fresh_gated):
    at = _gated_session({"fail": fail})
    assert [m.value for m in at.markdown] == ["value None"]
    at.button(key="go").click().run()
    if fail:  # the error is shown once, and the click is forgotten: no retry on its own
        assert [e.value for e in at.error] == ["failed"]
        at.run()
        assert not at.error and RUNS == [1]
        return
    assert [m.value for m in at.markdown] == ["value 10"]
    at.run()
    at.run()
    assert [m.value for m in at.markdown] == ["value 10"] and RUNS == [1]
    at.session_state["params"] = 3
    at.run()
    assert [m.value for m in at.markdown] == ["value None"]
    at.button(key="go").click().run()
    assert [m.value for m in at.markdown] == ["value 30"] and RUNS == [1, 3]
    # session state keeps the parameters the button was pressed for, not the result
    assert not [k for k in at.session_state if "result" in str(k)]


def test_gated_results_are_shared_by_sessions(fresh_gated):
    alice, bob = _gated_session(), _gated_session()
    alice.button(key="go").click().run()
    assert [m.value for m in alice.markdown] == ["value 10"] and RUNS == [1]
    assert [m.value for m in bob.markdown] == ["value None"]  # bob has not pressed it
    bob.button(key="go").click().run()
    assert [m.value for m in bob.markdown] == ["value 10"] and RUNS == [1]  # alice's result
    bob.session_state["params"] = 2
    bob.run()
    bob.button(key="go").click().run()
    assert [m.value for m in bob.markdown] == ["value 20"] and RUNS == [1, 2]


def _cancel(at: AppTest, key: str) -> None:
    """What the queue's Cancel button does (its on_click), then the rerun the click causes."""
    from ui import jobs

    at.session_state[jobs._CANCELLED + key] = True
    if jobs._GATE + key in at.session_state:
        del at.session_state[jobs._GATE + key]
    at.run()


def test_a_cancel_unpresses_the_gate_and_an_automatic_gate_then_waits_for_its_button():
    from ui import jobs

    at = _gate()
    at.button(key="go").click().run()
    assert _results(at) == ["result for 1"]
    _cancel(at, "go")
    assert _results(at) == [] and [c.value for c in at.caption] == [
        f"{jobs.CANCELLED_HINT} This costs a lot."]
    at.run()  # the hint about the cancel is shown once
    assert [c.value for c in at.caption] == ["This costs a lot."]
    at.button(key="go").click().run()
    assert _results(at) == ["result for 1"]

    auto = AppTest.from_function(_auto_gate_page, default_timeout=30).run()
    assert _results(auto) == ["result for 1"] and not auto.button  # automatic: no button
    _cancel(auto, "go")
    assert _results(auto) == [] and [b.key for b in auto.button] == ["go"]
    auto.session_state["params"] = 2
    auto.run()  # still waiting for the button, whatever the parameters
    assert _results(auto) == []
    auto.button(key="go").click().run()
    assert _results(auto) == ["result for 2"]


def _auto_gate_page():
    import streamlit as st

    from ui import jobs

    params = st.session_state.get("params", 1)
    if jobs.gate("Go", "go", params, auto=True):
        st.markdown(f"result for {params}")
