"""The on-disk result store and the warm command: content keys, round trips, misses, pruning,
and an explanation computed once and read back equal."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from vizcore import store
from vizcore.__main__ import main as cli


@pytest.fixture
def tmp_store(tmp_path, monkeypatch):
    monkeypatch.setenv("VIZCORE_STORE", str(tmp_path / "store"))
    return tmp_path / "store"


def test_keys_follow_content():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert store.key_of("x", a, {"n": 1}) == store.key_of("x", a.copy(), {"n": 1})
    assert store.key_of("x", a) != store.key_of("x", a + 1e-6)
    assert store.key_of("x", a) != store.key_of("x", a.reshape(4, 3))
    assert store.key_of("x", a) != store.key_of("x", a.astype(np.float64))
    assert store.key_of({"a": 1, "b": 2}) == store.key_of({"b": 2, "a": 1})
    assert store.key_of(1) != store.key_of("1")


def test_round_trip_miss_corrupt_and_off(tmp_store, monkeypatch):
    key = store.key_of("round trip")
    assert store.get(key) is None
    assert store.put(key, {"map": np.ones(3)})
    np.testing.assert_array_equal(store.get(key)["map"], np.ones(3))
    path = tmp_store / key[:2] / f"{key}.pkl"
    path.write_bytes(b"not a pickle")
    assert store.get(key) is None  # a corrupt entry is a miss, never an exception
    monkeypatch.setenv("VIZCORE_STORE", "off")
    assert store.store_dir() is None and not store.put(key, 1) and store.get(key) is None
    calls = []
    assert store.cached(("off",), lambda: calls.append(1) or 7) == 7
    assert store.cached(("off",), lambda: calls.append(1) or 7) == 7
    assert len(calls) == 2  # nothing stored when off


def test_prune_drops_the_least_recently_used(tmp_store):
    keys = [store.key_of("p", i) for i in range(4)]
    for i, k in enumerate(keys):
        store.put(k, np.zeros(1000, np.uint8))
        p = tmp_store / k[:2] / f"{k}.pkl"
        os.utime(p, (time.time() - 100 + i, time.time() - 100 + i))
    size = (tmp_store / keys[0][:2] / f"{keys[0]}.pkl").stat().st_size
    assert store.prune(max_bytes=2 * size) == 2
    assert store.get(keys[0]) is None and store.get(keys[1]) is None
    assert store.get(keys[3]) is not None


def test_explanation_is_computed_once_and_equal(tmp_store, ex_cnn, ex_blobs, monkeypatch):
    import vizcore.explain as vx

    x = ex_blobs[0][0]
    direct = vx.explain(ex_cnn, x, "smoothgrad", n=8)
    calls = []
    real = vx.explain

    def counting(*a, **k):
        calls.append(a[2])
        return real(*a, **k)

    monkeypatch.setattr(vx, "explain", counting)
    first = store.explanation(ex_cnn, x, "smoothgrad", n=8)
    # the same request spelled with every default and a layer the method ignores
    defaults = vx.get_method("smoothgrad").defaults()
    again = store.explanation(ex_cnn, x, "smoothgrad", layer="conv1", **{**defaults, "n": 8})
    assert calls == ["smoothgrad"]
    np.testing.assert_array_equal(first.heatmap, direct.heatmap)
    np.testing.assert_array_equal(again.heatmap, direct.heatmap)
    other = store.explanation(ex_cnn, x + 0.01, "smoothgrad", n=8)
    assert len(calls) == 2 and not np.array_equal(other.signed, first.signed)


def test_warm_cli_lists_and_refuses_unknown_presets(capsys):
    assert cli(["warm", "--list"]) == 0
    out = capsys.readouterr().out
    assert "class" in out and "embeddings" in out
    assert cli(["warm", "--preset", "nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().out


def test_warm_fills_the_store_the_page_reads(tmp_store, monkeypatch):
    from vizcore import models
    from vizcore.warm import WarmPreset, input_image, warm

    preset = WarmPreset("t", "test", images=(0,), methods=("gradcam",), embeddings=())
    times = warm(preset, log=lambda m: None)
    assert "gradcam #0" in times
    info = models.load_builtin("fashion_vgg")
    x = input_image(info, "fashion_mnist", 0)
    import vizcore.explain as vx

    monkeypatch.setattr(vx, "explain", lambda *a, **k: pytest.fail("recomputed"))
    assert store.explanation(info, x, "gradcam").heatmap.shape == (28, 28)
