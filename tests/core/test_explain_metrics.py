"""Deletion/insertion (RISE) and the model-randomisation sanity check."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import assert_weights_equal, make_info, weights_snapshot
from vizcore.explain import explain, metrics


@pytest.fixture(scope="module")
def region_reader():
    """A model that reads only the top-left 7x7 region: logit_0 = 20 * mean(region) - 5."""
    import keras

    inp = keras.Input((28, 28, 1))
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inp))
    model = keras.Model(inp, out)
    w = np.zeros((28, 28, 2), np.float32)
    w[:7, :7, 0] = 20.0 / 49
    model.layers[-1].set_weights([w.reshape(784, 2), np.array([-5.0, 0.0], np.float32)])
    return make_info(model, "region")


def test_oracle_map_beats_random_map(region_reader):
    x = np.full((28, 28, 1), 0.9, np.float32)
    oracle = np.zeros((28, 28), np.float32)
    oracle[:7, :7] = 1.0
    rand = np.random.RandomState(0).rand(28, 28).astype(np.float32)
    kw = dict(steps=28, batch_size=8, insertion_start="black", target=0)
    good = metrics.deletion_insertion(region_reader, x, oracle, **kw)
    bad = metrics.deletion_insertion(region_reader, x, rand, **kw)
    assert good.deletion.shape == good.insertion.shape == good.fractions.shape == (29,)
    assert good.deletion[0] == pytest.approx(bad.deletion[0])
    assert good.deletion_auc < bad.deletion_auc - 0.3
    assert good.insertion_auc > bad.insertion_auc + 0.2
    for c in (good, bad):
        assert 0.0 <= c.deletion_auc <= 1.0 and 0.0 <= c.insertion_auc <= 1.0


def test_saliency_is_the_oracle_on_the_region_reader(region_reader):
    x = np.full((28, 28, 1), 0.9, np.float32)
    e = explain(region_reader, x, "saliency", target=0)
    assert e.heatmap[:7, :7].min() == 1.0 and e.heatmap[7:, 7:].max() == 0.0
    c = metrics.deletion_insertion(region_reader, x, e, steps=28)
    assert c.target == 0 and c.method == "saliency" and c.deletion_auc < 0.3


def test_batch_size_does_not_change_curves(ex_cnn, ex_blobs):
    x = ex_blobs[0][0]
    e = explain(ex_cnn, x, "gradcam")
    a = metrics.deletion_insertion(ex_cnn, x, e, steps=20, batch_size=3)
    b = metrics.deletion_insertion(ex_cnn, x, e, steps=20, batch_size=32)
    np.testing.assert_allclose(a.deletion, b.deletion, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.insertion, b.insertion, rtol=1e-5, atol=1e-6)


def test_dataset_faithfulness(ex_cnn, ex_blobs):
    seen = []
    out = metrics.dataset_faithfulness(
        ex_cnn, ex_blobs[0][:3], ["gradcam", "saliency", "cam"], steps=10, progress=seen.append
    )
    assert "skipped" in out["cam"]
    for m in ("gradcam", "saliency"):
        assert out[m]["n"] == 3 and 0 <= out[m]["deletion_auc"] <= 1
    assert seen[-1] == pytest.approx(1.0)


def test_similarity_measures():
    rng = np.random.RandomState(0)
    a = rng.rand(28, 28)
    assert metrics.spearman(a, a) == pytest.approx(1.0)
    assert metrics.spearman(a, -a) == pytest.approx(-1.0)
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    assert metrics.ssim(a, rng.rand(28, 28)) < 0.3
    assert np.isnan(metrics.spearman(a, np.zeros_like(a)))


def test_randomisation_check(ex_cnn, ex_blobs):
    x = ex_blobs[0][0]
    before = weights_snapshot(ex_cnn.model)
    methods = ["gradcam", "guided_backprop", "cam"]
    res = metrics.randomisation_check(ex_cnn, x, methods, layers=["predictions", "fc1", "conv2"])
    assert res.layers == ["predictions", "fc1", "conv2"]
    assert res.methods == ["gradcam", "guided_backprop"] and "cam" in res.skipped
    for layer in ["original", *res.layers]:
        for m in res.methods:
            h = res.maps[(layer, m)]
            assert h.shape == (28, 28) and np.isfinite(h).all()
    assert set(res.spearman) == set(res.ssim) == {(la, m) for la in res.layers for m in res.methods}
    # Grad-CAM depends on the model: randomising down to conv2 changes it.
    assert res.spearman[("conv2", "gradcam")] < 0.9
    assert_weights_equal(ex_cnn.model, before)
    # The shared model's explanations are unchanged and the copy is cached and reset.
    copy1, _ = metrics._working_copy(ex_cnn)
    res2 = metrics.randomisation_check(ex_cnn, x, ["gradcam"], layers=["predictions"])
    assert metrics._working_copy(ex_cnn)[0].model is copy1.model
    np.testing.assert_array_equal(
        res2.maps[("original", "gradcam")], res.maps[("original", "gradcam")]
    )
    np.testing.assert_array_equal(
        res2.maps[("predictions", "gradcam")], res.maps[("predictions", "gradcam")]
    )
