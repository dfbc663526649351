"""Analytic cases: known answers for saliency, LRP, integrated gradients and CAM."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import make_info
from vizcore.explain import explain, get_engine, normalize


@pytest.fixture(scope="module")
def linear_info():
    """Flatten -> Dense(3, softmax) on 8x8x1: logit_c = w_c . x + b_c."""
    import keras

    keras.utils.set_random_seed(3)
    inp = keras.Input((8, 8, 1))
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inp))
    model = keras.Model(inp, out)
    w = np.random.RandomState(0).normal(size=(64, 3)).astype(np.float32)
    model.layers[-1].set_weights([w, np.array([0.1, -0.2, 0.3], np.float32)])
    return make_info(model, "linear"), w


@pytest.mark.parametrize("target", [0, 1, 2])
def test_linear_saliency_is_the_weight_pattern(linear_info, target):
    info, w = linear_info
    x = np.random.RandomState(1).rand(8, 8, 1).astype(np.float32)
    e = explain(info, x, "saliency", target=target)
    np.testing.assert_allclose(e.signed[..., 0], w[:, target].reshape(8, 8), rtol=1e-5)
    np.testing.assert_allclose(e.heatmap, normalize(np.abs(w[:, target]).reshape(8, 8)), atol=1e-6)


def test_linear_integrated_gradients_is_weight_times_input(linear_info):
    info, w = linear_info
    x = np.random.RandomState(1).rand(8, 8, 1).astype(np.float32)
    e = explain(info, x, "integrated_gradients", target=1, steps=4)
    np.testing.assert_allclose(
        e.signed[..., 0], (w[:, 1] * x.ravel()).reshape(8, 8), rtol=1e-4, atol=1e-6
    )


@pytest.mark.parametrize("method", ["lrp_epsilon", "lrp_zplus", "lrp_alphabeta_10"])
def test_lrp_conserves_relevance_on_a_bias_free_relu_network(ex_bias_free, ex_blobs, method):
    engine = get_engine(ex_bias_free)
    for x in ex_blobs[0][:4]:
        e = explain(ex_bias_free, x, method)
        logit = engine.logits_fn()(x[None]).numpy()[0][e.target]
        assert logit > 0
        assert abs(e.signed.sum() - logit) <= 0.01 * abs(logit), (e.signed.sum(), logit)


def test_lrp_epsilon_absorbs_relevance_for_large_epsilon(ex_bias_free, ex_blobs):
    x = ex_blobs[0][0]
    small = explain(ex_bias_free, x, "lrp_epsilon", epsilon=1e-6).signed.sum()
    large = explain(ex_bias_free, x, "lrp_epsilon", epsilon=1.0).signed.sum()
    assert abs(large) < abs(small)


def test_integrated_gradients_completeness(ex_gap, ex_blobs):
    x = ex_blobs[0][0]
    engine = get_engine(ex_gap)
    e = explain(ex_gap, x, "integrated_gradients", steps=256)
    lg = engine.logits_fn()(np.stack([x, engine.black()])).numpy()[:, e.target]
    assert e.signed.sum() == pytest.approx(lg[0] - lg[1], rel=0.03, abs=0.03)


def test_cam_equals_gradcam_on_a_gap_model(ex_gap, ex_blobs):
    # For conv -> GAP -> Dense, Grad-CAM's weights are the Dense weights / (h*w): same map.
    for x in ex_blobs[0][:3]:
        a = explain(ex_gap, x, "cam")
        b = explain(ex_gap, x, "gradcam")
        assert a.layer == b.layer == "conv2"
        np.testing.assert_allclose(a.heatmap, b.heatmap, atol=1e-4)


def test_gradcam_is_class_discriminative_and_guided_backprop_is_less(ex_gap, ex_blobs):
    x = ex_blobs[0][0]

    def corr(method):
        maps = [explain(ex_gap, x, method, target=t).heatmap.ravel() for t in range(4)]
        c = np.corrcoef(maps)
        return c[np.triu_indices(4, 1)].mean()

    assert corr("gradcam") < corr("guided_backprop")
