"""Filters, feature maps, layer tables and rendering helpers."""

import numpy as np
import pytest

from tests.helpers import assert_weights_equal, weights_snapshot
from vizcore import features, render


def test_feature_maps_match_a_manual_submodel(tiny_cnn):
    import keras

    x = np.random.default_rng(0).random((8, 8, 1), np.float32)
    fm = features.feature_maps(tiny_cnn.model, "conv1", x, sort="mean")
    sub = keras.Model(tiny_cnn.model.inputs, tiny_cnn.model.get_layer("conv1").output)
    expected = np.moveaxis(np.asarray(sub(x[None]))[0], -1, 0)
    np.testing.assert_allclose(fm.maps, expected, rtol=1e-5, atol=1e-6)
    assert list(fm.order) == list(np.argsort(-expected.mean(axis=(1, 2)), kind="stable"))
    assert fm.maps.shape == (4, 8, 8)


def test_feature_maps_reject_flat_layers_and_unknown_names(tiny_cnn):
    x = np.zeros((8, 8, 1), np.float32)
    with pytest.raises(ValueError, match="not .h, w, channels"):
        features.feature_maps(tiny_cnn.model, "fc1", x)
    with pytest.raises(KeyError, match="no layer named 'nope'"):
        features.feature_maps(tiny_cnn.model, "nope", x)


def test_dense_activations_and_model_unchanged(tiny_cnn):
    before = weights_snapshot(tiny_cnn.model)
    x = np.random.default_rng(1).random((8, 8, 1), np.float32)
    act = features.dense_activations(tiny_cnn.model, "predictions", x)
    np.testing.assert_allclose(act, tiny_cnn.forward(x[None])[0], rtol=1e-5)
    assert_weights_equal(tiny_cnn.model, before)


def test_batched_activations_equal_single(tiny_cnn):
    x = np.random.default_rng(2).random((10, 8, 8, 1), np.float32)
    full = features.activations(tiny_cnn.model, ["fc1"], x, batch_size=3)["fc1"]
    one = features.activations(tiny_cnn.model, ["fc1"], x[4:5])["fc1"]
    np.testing.assert_allclose(full[4:5], one, rtol=1e-5, atol=1e-6)


def test_first_conv_kernels_and_tiles(tiny_cnn):
    name, k = features.first_conv_kernels(tiny_cnn.model)
    assert name == "conv1" and k.shape == (4, 3, 3, 1)
    tiles = features.kernel_tiles(k)
    assert tiles.shape == (4, 3, 3) and tiles.min() >= 0 and tiles.max() <= 1
    # zero weight maps to mid-grey
    zero = features.kernel_tiles(np.zeros((1, 3, 3, 3)))
    np.testing.assert_allclose(zero, 0.5)


def test_layer_table_and_graph(tiny_cnn):
    rows = features.layer_table(tiny_cnn.model)
    names = [r["name"] for r in rows]
    assert names[1:] == ["conv1", "pool", "flatten", "fc1", "predictions"]
    assert sum(r["parameters"] for r in rows) == tiny_cnn.model.count_params()
    dot = features.graph_dot(tiny_cnn.model)
    assert '"conv1" -> "pool"' in dot and '"fc1" -> "predictions"' in dot


def test_grid_layout():
    tiles = np.random.default_rng(0).random((5, 4, 6))
    g = render.grid(tiles, cols=3, pad=1)
    assert g.shape == (2 * 5 + 1, 3 * 7 + 1, 3) and g.dtype == np.uint8
    assert (g[0] == 255).all()  # padding row


def test_overlay_and_normalize():
    img = np.zeros((10, 10, 1), np.uint8)
    heat = np.zeros((5, 5), np.float32)
    heat[0, 0] = 1
    out = render.overlay(img, heat, alpha=1.0)
    assert out.shape == (10, 10, 3)
    assert out[0, 0].tolist() != out[9, 9].tolist()
    assert render.normalize(np.array([2.0, 2.0])).tolist() == [0.0, 0.0]
    sym = render.normalize(np.array([-2.0, 0.0, 1.0]), "symmetric")
    np.testing.assert_allclose(sym, [0.0, 0.5, 0.75])


def test_upscale_integer_factor():
    out = render.upscale(np.arange(4, dtype=np.uint8).reshape(2, 2, 1), 10)
    assert out.shape == (10, 10, 1) and out[0, 0, 0] == 0 and out[9, 9, 0] == 3
