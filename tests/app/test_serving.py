"""Serving a class from one process: shared results computed once (single flight), the
admission queue for heavy jobs, warmed engines, and uploads isolated per session and released
when their sessions end."""

import gc
import threading
import time
import weakref

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.app.test_pages import ROOT, TIMEOUT
from tests.helpers import model_file_bytes
from ui import cache, jobs
from ui.jobs import AdmissionQueue, Cancelled

N_THREADS = 8


def _together(fn, n: int = N_THREADS) -> list:
    """Run ``fn()`` in ``n`` threads released at the same moment; their results (or
    exceptions), in thread order."""
    barrier = threading.Barrier(n)
    out: list = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = fn()
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a thread is stuck"
    return out


def _counting(monkeypatch, module, name: str, delay: float = 0.3) -> list:
    """Wrap ``module.name`` so that calls are counted and last at least ``delay`` seconds
    (so that concurrent requests overlap)."""
    real, calls = getattr(module, name), []

    def wrapper(*args, **kwargs):
        calls.append(threading.current_thread().name)
        time.sleep(delay)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


@pytest.fixture(scope="module")
def model():
    return cache.load_model("fashion_vgg")


@pytest.fixture
def image(model):
    return np.random.default_rng(7).random(model.input_shape).astype(np.float32)


# --------------------------------------------------------------------------- single flight


def test_concurrent_identical_explanations_compute_once_and_equal_the_serial_result(
        monkeypatch, model, image):
    import vizcore.explain as core

    serial = core.explain(model, image, "smoothgrad", n=8)  # no cache, one thread
    cache._EXPLAIN.clear()
    calls = _counting(monkeypatch, core, "explain")
    results = _together(lambda: cache.explain(model.key, model, image, "smoothgrad", None, None,
                                              (("n", 8),)))
    assert len(calls) == 1
    for res in results:
        assert not isinstance(res, BaseException), res
        assert res is results[0]  # one shared result
        np.testing.assert_allclose(res.heatmap, serial.heatmap, atol=1e-6)
        np.testing.assert_allclose(res.signed, serial.signed, atol=1e-6)
    # the same request spelled with its defaults (the Explain page's form) is the same entry
    again = cache.explain(model.key, model, image, "smoothgrad", None, "ignored-layer",
                          (("n", 8), ("noise", 0.15), ("batch_size", 32), ("seed", 0)))
    assert again is results[0] and len(calls) == 1


def test_concurrent_identical_occlusion_maps_compute_once(monkeypatch, model, image):
    import vizcore.occlusion as occ

    serial = occ.occlusion_map(model, image, 4, 2, "gray", None)
    cache._RESULTS.clear()
    calls = _counting(monkeypatch, occ, "occlusion_map")
    results = _together(lambda: cache.occlusion_map(model, image, 4, 2, "gray", None, "Occluding"))
    assert len(calls) == 1
    for res in results:
        assert not isinstance(res, BaseException), res
        assert res is results[0]
        np.testing.assert_allclose(res.drop, serial.drop, atol=1e-6)
        np.testing.assert_allclose(res.prob, serial.prob, atol=1e-6)
    # another setting is another result
    other = cache.occlusion_map(model, image, 4, 4, "gray", None, "Occluding")
    assert len(calls) == 2 and other.drop.shape == serial.drop.shape


def test_an_error_reaches_every_waiter_and_is_not_stored():
    store, calls = cache.SharedResults(4), []

    def fail(_cb):
        calls.append(1)
        time.sleep(0.3)
        raise ValueError("bad setting")

    results = _together(lambda: store.get("k", fail), 4)
    assert len(calls) == 1 and all(isinstance(r, ValueError) for r in results)
    assert "k" not in store
    assert store.get("k", lambda _cb: 5) == 5  # the next request computes again


class _Interrupted(BaseException):
    """Like Streamlit's StopException: the leader's script run was stopped."""


def test_a_stopped_leader_hands_the_computation_to_a_waiter():
    store, calls = cache.SharedResults(4), []
    started = threading.Event()

    def leader_compute(_cb):
        calls.append("leader")
        started.set()
        time.sleep(0.4)
        raise _Interrupted

    def follower_compute(_cb):
        calls.append("follower")
        return 42

    out = {}

    def follower():
        started.wait(5)
        out["value"] = store.get("k", follower_compute)

    t = threading.Thread(target=follower)
    t.start()
    with pytest.raises(_Interrupted):
        store.get("k", leader_compute)
    t.join(10)
    assert out["value"] == 42 and calls == ["leader", "follower"] and store.get("k", None) == 42


# --------------------------------------------------------------------------- the admission queue


def _wait_until(cond, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.01)
    return cond()


def test_queue_second_heavy_job_waits_in_place_one_and_runs_after_the_first():
    q, log, places = AdmissionQueue(1), [], []
    first = q.acquire("first")
    log.append("first runs")

    def second():
        with q.slot("second", on_wait=lambda place, n: places.append((place, n)), poll=0.05):
            log.append("second runs")

    t = threading.Thread(target=second)
    t.start()
    assert _wait_until(lambda: places)
    assert places[0] == (1, 1) and q.status() == (1, 1) and log == ["first runs"]
    time.sleep(0.2)
    assert log == ["first runs"]  # still waiting: the slot is taken
    log.append("first releases")
    assert q.release(first)
    t.join(5)
    assert log == ["first runs", "first releases", "second runs"]
    assert q.status() == (0, 0)


def test_queue_is_first_come_first_served_and_places_move_up():
    q, order = AdmissionQueue(1), []
    holder = q.acquire("holder")
    seen: dict[str, list] = {}

    def job(name):
        with q.slot(name, on_wait=lambda p, n: seen.setdefault(name, []).append(p), poll=0.02):
            order.append(name)

    threads = []
    for name in ("a", "b", "c"):
        threads.append(threading.Thread(target=job, args=(name,)))
        threads[-1].start()
        assert _wait_until(lambda name=name: name in seen)
    assert [seen[n][0] for n in "abc"] == [1, 2, 3]
    assert q.snapshot() == {"running": ["holder"], "waiting": ["a", "b", "c"]}
    q.release(holder)
    for t in threads:
        t.join(5)
    assert order == ["a", "b", "c"]
    assert q.status() == (0, 0)


def test_a_cancelled_queued_job_frees_its_place_never_runs_and_frees_nothing():
    q, ran = AdmissionQueue(1), []
    first = q.acquire("first")
    cancel = threading.Event()
    outcome = {}

    def waiter():
        try:
            with q.slot("cancelled", cancelled=cancel.is_set, poll=0.02):
                ran.append("cancelled job")
        except Cancelled as exc:
            outcome["error"] = exc

    t = threading.Thread(target=waiter)
    t.start()
    assert _wait_until(lambda: q.status() == (1, 1))
    cancel.set()
    t.join(5)
    assert isinstance(outcome.get("error"), Cancelled) and ran == []
    assert q.status() == (1, 0)  # its place is gone; the first job still holds its slot
    late = []
    t2 = threading.Thread(target=lambda: (q.acquire("third", poll=0.02), late.append(1)))
    t2.start()
    time.sleep(0.2)
    assert late == []  # the cancel freed no slot it did not hold
    q.release(first)
    t2.join(5)
    assert late == [1]


def test_an_interrupted_wait_leaves_the_queue():
    q = AdmissionQueue(1)
    first = q.acquire("first")

    def on_wait(place, n):
        raise _Interrupted  # Streamlit interrupting the run for a rerun

    with pytest.raises(_Interrupted):
        q.acquire("second", on_wait=on_wait)
    assert q.status() == (1, 0)
    q.release(first)
    assert q.status() == (0, 0)


def test_a_job_that_raises_releases_its_slot():
    q = AdmissionQueue(1)
    with pytest.raises(RuntimeError):
        with q.slot("broken"):
            assert q.status() == (1, 0)
            raise RuntimeError("the job failed")
    assert q.status() == (0, 0)
    t = q.acquire("next", on_wait=lambda *a: pytest.fail("the slot was not released"))
    assert q.release(t) and not q.release(t)  # a second release frees nothing


def test_slots_follow_the_cores_unless_overridden(monkeypatch):
    import os

    monkeypatch.delenv("VIZCORE_HEAVY_SLOTS", raising=False)
    assert jobs.heavy_slots() == max(1, os.cpu_count() or 1)
    monkeypatch.setenv("VIZCORE_HEAVY_SLOTS", "3")
    assert jobs.heavy_slots() == 3
    with pytest.raises(ValueError):
        AdmissionQueue(0)


def test_heavy_requests_wait_for_a_slot_and_light_ones_do_not(monkeypatch):
    monkeypatch.setattr(jobs, "QUEUE", AdmissionQueue(1))
    store, ran = cache.SharedResults(8), []
    held = jobs.QUEUE.acquire("someone else's heavy job")
    t = threading.Thread(target=lambda: store.get(
        "heavy", lambda _cb: ran.append("heavy") or 1, heavy=True))
    t.start()
    assert _wait_until(lambda: jobs.QUEUE.status() == (1, 1))
    assert store.get("light", lambda _cb: ran.append("light") or 2) == 2  # not stuck
    assert ran == ["light"]
    jobs.QUEUE.release(held)
    t.join(5)
    assert ran == ["light", "heavy"] and jobs.QUEUE.status() == (0, 0)
    # heavy work nested in a job that holds the only slot runs in it (no deadlock)
    with jobs.admitted("outer", heavy=True):
        assert store.get("nested", lambda _cb: 3, heavy=True) == 3
    assert jobs.QUEUE.status() == (0, 0)


class _FakeInfo:
    def __init__(self, key: str, macs: float, shape=(224, 224, 3)):
        self.key, self.input_shape = key, shape
        jobs._MACS[key] = macs

    def cam_layer(self):
        return None


def test_heavy_or_light_follows_passes_times_the_models_cost(model):
    vgg = _FakeInfo("fake-vgg16", 15.5e9)
    # the Fashion-MNIST CNN: every single-pass map, SmoothGrad and an occlusion map are light
    assert jobs.model_macs(model) == pytest.approx(7.8e6, rel=0.05)
    for method in ("gradcam", "saliency", "smoothgrad", "integrated_gradients", "score_cam",
                   "lrp_composite", "occlusion"):
        assert not jobs.is_heavy(model, jobs.explain_passes(model, method)), method
    assert jobs.is_heavy(model, 2 * 200, 200)  # activation maximization, 200 steps
    # VGG16: Grad-CAM and CAM stay light, the multi-pass methods are heavy
    assert not jobs.is_heavy(vgg, jobs.explain_passes(vgg, "gradcam"))
    assert not jobs.is_heavy(vgg, jobs.explain_passes(vgg, "cam"))
    for method in ("smoothgrad", "integrated_gradients", "lrp_epsilon", "guided_gradcam"):
        assert jobs.is_heavy(vgg, jobs.explain_passes(vgg, method)), method
    assert jobs.explain_passes(vgg, "smoothgrad", {"n": 10}) == 20
    assert jobs.is_heavy(None, seconds=float("inf")) and not jobs.is_heavy(None)


def test_the_queue_message_shows_while_a_page_waits(monkeypatch):
    monkeypatch.setattr(jobs, "QUEUE", AdmissionQueue(1))
    texts = []
    real = jobs.queue_text
    monkeypatch.setattr(jobs, "queue_text", lambda p, n: texts.append((p, n)) or real(p, n))
    held = jobs.QUEUE.acquire("another session's job")
    threading.Timer(1.0, jobs.QUEUE.release, args=(held,)).start()
    at = AppTest.from_function(_queued_page, default_timeout=30).run()
    assert not at.exception, at.exception
    assert texts and texts[0] == (1, 1)
    assert [m.value for m in at.markdown] == ["done"]
    assert not at.info  # the waiting message is gone once the job ran
    assert jobs.QUEUE.status() == (0, 0)


def _queued_page():
    import streamlit as st

    from ui import jobs

    with jobs.cancellable("q_test"):
        with jobs.admitted("a heavy test job", heavy=True):
            st.markdown("done")


def _cancellable_page():
    import streamlit as st

    from tests.app import test_serving
    from ui import jobs

    with jobs.cancellable("cx"):
        value = test_serving.STORE.get(("cx", st.session_state.get("params", 1)),
                                       lambda _cb: test_serving.RAN.append(1) or 7, heavy=True)
        st.markdown(f"value {value}")
    st.markdown("the rest of the page")


STORE, RAN = cache.SharedResults(4), []


def test_a_cancelled_request_shows_a_notice_once_and_runs_on_the_next_run():
    from ui import jobs

    STORE.clear()
    RAN.clear()
    at = AppTest.from_function(_cancellable_page, default_timeout=30)
    at.session_state[jobs._CANCELLED + "cx"] = True  # what the queue's Cancel click leaves
    at.run()
    assert not at.exception and RAN == []
    assert [i.value for i in at.info] == [jobs.CANCELLED_NOTICE]
    assert [m.value for m in at.markdown] == ["the rest of the page"]
    at.run()  # any later run asks again
    assert RAN == [1] and [m.value for m in at.markdown] == ["value 7", "the rest of the page"]
    assert not at.info


# --------------------------------------------------------------------------- warm engines


def test_models_are_warmed_in_their_factory_and_never_traced_again():
    import tensorflow as tf

    from vizcore.engine import get_engine

    info = cache.load_model("fashion_gap")
    eng = get_engine(info)
    pieces = {k for k in eng._cache if isinstance(k, str)}
    assert {"forward", "logits", "probs", "input_grad"} <= pieces
    assert any(isinstance(k, tuple) and k[0] == "cam_pipeline" for k in eng._cache)
    fns = [eng._cache[k] for k in ("forward", "logits", "probs", "input_grad")]
    assert all(f.experimental_get_tracing_count() == 1 for f in fns)
    x = np.random.default_rng(0).random((3, *info.input_shape)).astype(np.float32)

    def first_use():
        return (eng.probabilities(x), eng.logits_fn()(x).numpy(),
                eng.input_grad_fn()(x, tf.constant(-1, tf.int32))[0].numpy())

    results = _together(first_use)
    assert all(f.experimental_get_tracing_count() == 1 for f in fns)
    for r in results:
        assert not isinstance(r, BaseException), r
        for a, b in zip(r, results[0]):
            np.testing.assert_allclose(a, b, atol=1e-6)
    assert cache.warm_engine(info) < 1.0  # everything is traced: a second warm-up is cheap


# --------------------------------------------------------------------------- uploads

MIME = "application/octet-stream"


def _model_file(favoured: int, seed: int) -> bytes:
    """A tiny 3-class CNN saved as model.keras whose bias makes class ``favoured`` likely."""
    return model_file_bytes("gap", 3, favoured, seed, favour=4.0)


@pytest.fixture(scope="module")
def two_files() -> tuple[bytes, bytes]:
    return _model_file(0, seed=3), _model_file(2, seed=4)


def _session() -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def _upload(at: AppTest, data: bytes, names: str = "ant\nbee\ncat") -> None:
    at.file_uploader(key="model_upload").set_value(("model.keras", data, MIME)).run()
    at.text_area(key="model_names").input(names)
    at.button(key="model_load").click().run()
    assert not at.exception, at.exception


def _predicted(at: AppTest) -> str:
    line = next(m.value for m in at.markdown if m.value.startswith("Predicted:"))
    return line.split("**")[1]


def _args(at: AppTest) -> tuple:
    """The server-cache arguments of the session's current (uploaded) model."""
    from ui import state

    return at.session_state[state.UPLOADS_KEY][at.session_state[state.MODEL_KEY]].cache_args


def _only_own_uploads(at: AppTest, own: list[str]) -> None:
    at.run()
    assert list(at.session_state["vz_uploaded_models"] if own else []) == own
    labels = at.sidebar.selectbox(key="vz_model_select").options
    assert labels.count("Your model: model.keras") == len(own)


def _lookup(args: tuple):
    return cache.load_upload(args[0], None, *args[1:])


def _cached(args: tuple) -> bool:
    try:
        _lookup(args)
    except cache.UploadGone:
        return False
    return True


def test_uploads_are_isolated_per_session_and_released_when_their_sessions_end(two_files):
    data_a, data_b = two_files
    alice, bob, carol = _session(), _session(), _session()
    _upload(alice, data_a)
    _upload(bob, data_b)  # the same file name, other content
    key_a, key_b = (at.session_state["vz_model_key"] for at in (alice, bob))
    assert key_a != key_b and _predicted(alice) == "ant" and _predicted(bob) == "cat"
    # nothing uploaded in one session appears in another
    _only_own_uploads(alice, [key_a])
    _only_own_uploads(bob, [key_b])
    _only_own_uploads(carol, [])
    assert "vz_uploaded_models" not in carol.session_state
    assert carol.session_state["vz_model_select"] == "fashion_vgg"

    args_a, args_b = _args(alice), _args(bob)
    _upload(carol, data_a)  # carol loads alice's file: one shared model, two holders
    assert carol.session_state["vz_model_key"] == key_a and _predicted(carol) == "ant"
    assert cache.UPLOADS.holders(args_a) == 2 and cache.UPLOADS.holders(args_b) == 1

    del alice
    gc.collect()
    assert _wait_until(lambda: cache.UPLOADS.holders(args_a) == 1)
    time.sleep(0.3)
    assert _cached(args_a)  # carol still holds it
    bobs_model = weakref.ref(_lookup(args_b).model)
    del bob
    gc.collect()
    assert _wait_until(lambda: not _cached(args_b))  # bob's model left with bob
    gc.collect()
    assert bobs_model() is None  # and nothing else kept it: its memory is free
    del carol
    gc.collect()
    assert _wait_until(lambda: not _cached(args_a))


def test_loading_a_file_again_with_other_settings_releases_the_old_model(two_files):
    at = _session()
    _upload(at, two_files[0])
    old = _args(at)
    at.text_area(key="model_names").input("x\ny\nz")
    at.button(key="model_load").click().run()
    assert not at.exception and _predicted(at) == "x"
    new = _args(at)
    assert new != old and _cached(new)
    assert _wait_until(lambda: not _cached(old))


def test_holders_release_only_when_the_last_holder_is_gone():
    released = []
    table = cache.Holders(released.append, background=False)

    class Token:
        pass

    a, b = Token(), Token()
    table.hold("m", a)
    table.hold("m", b)
    table.hold("m", a)  # holding twice counts once
    assert table.holders("m") == 2
    del a
    gc.collect()
    assert table.sweep() == [] and released == [] and table.holders("m") == 1
    table.drop("m", b)
    assert released == ["m"] and table.holders("m") == 0
