"""Occlusion sensitivity (Zeiler and Fergus 2014) and the hand-made occlusion helpers."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import assert_weights_equal, make_info, weights_snapshot
from vizcore import occlusion as occ
from vizcore.explain import REGISTRY, explain, get_engine

REGION = (slice(3, 7), slice(8, 12))  # rows 3..6, cols 8..11 of a 14x14 image


@pytest.fixture(scope="module")
def region_info():
    """A model that reads only REGION: Cropping2D -> Flatten -> Dense(3, softmax) with fixed
    weights (class 0 grows with the region's brightness, class 1 shrinks, class 2 ignores it)."""
    import keras

    inp = keras.Input((14, 14, 1))
    crop = keras.layers.Cropping2D(((3, 14 - 7), (8, 14 - 12)))(inp)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(crop))
    model = keras.Model(inp, out)
    w = np.zeros((16, 3), np.float32)
    w[:, 0], w[:, 1] = 0.15, -0.15
    model.layers[-1].set_weights([w, np.zeros(3, np.float32)])
    return make_info(model, "region")


def _dilated(mask: np.ndarray, k: int) -> np.ndarray:
    out = mask.copy()
    for dy in range(-k, k + 1):
        for dx in range(-k, k + 1):
            out |= np.roll(np.roll(mask, dy, 0), dx, 1)
    return out


@pytest.mark.parametrize("patch,stride", [(1, 1), (2, 1), (3, 2)])
def test_only_the_region_the_model_reads_lights_up(region_info, patch, stride):
    x = np.random.RandomState(0).uniform(0.5, 1.0, (14, 14, 1)).astype(np.float32)
    snap = weights_snapshot(region_info.model)
    r = occ.occlusion_map(region_info, x, patch, stride, "zero", target=0)
    region = np.zeros((14, 14), bool)
    region[REGION] = True
    # a pixel can only be affected through a patch that also covers a region pixel
    reach = _dilated(region, patch - 1) if stride == 1 else _dilated(region, patch - 1 + stride)
    assert np.abs(r.drop[~reach]).max() < 1e-6, "pixels the model never reads: no drop"
    assert np.all(r.drop[region] > 1e-3), "covering the region must lower class 0"
    assert region[np.unravel_index(np.argmax(r.drop), r.drop.shape)], "hottest pixel"
    assert r.target == 0 and r.base_prob > 0.5
    np.testing.assert_allclose(r.prob, r.base_prob - r.drop, atol=1e-6)
    assert_weights_equal(region_info.model, snap)


def test_registered_method_hot_spot_is_the_region(region_info):
    assert REGISTRY["occlusion"].family == "perturbation"
    x = np.random.RandomState(1).uniform(0.5, 1.0, (14, 14, 1)).astype(np.float32)
    e = explain(region_info, x, "occlusion", target=0, patch=2, stride=1, fill="zero")
    assert e.heatmap.shape == (14, 14) and e.heatmap.max() == pytest.approx(1.0)
    hot = np.argwhere(e.heatmap > 0.5)
    assert all(3 <= y <= 6 and 8 <= xx <= 11 for y, xx in hot)
    # class 1 gains when the region is covered: its drop is negative there
    e1 = explain(region_info, x, "occlusion", target=1, patch=2, stride=1, fill="zero")
    assert e1.signed[REGION].max() < 0


@pytest.mark.parametrize("fill", ["gray", "mean", "blur", "zero"])
def test_batched_and_unbatched_maps_are_equal(ex_cnn, ex_blobs, fill):
    x = ex_blobs[0][0]
    big = occ.occlusion_map(ex_cnn, x, 5, 2, fill, batch_size=4096)
    one = occ.occlusion_map(ex_cnn, x, 5, 2, fill, batch_size=1)
    odd = occ.occlusion_map(ex_cnn, x, 5, 2, fill, batch_size=7)
    loop = occ.occlusion_loop(ex_cnn, x, 5, 2, fill)
    np.testing.assert_allclose(big.grid_prob, one.grid_prob, atol=2e-6)
    np.testing.assert_allclose(big.grid_prob, odd.grid_prob, atol=2e-6)
    np.testing.assert_allclose(big.grid_prob, loop, atol=2e-6)
    np.testing.assert_allclose(big.drop, one.drop, atol=2e-6)
    assert big.grid_prob.shape == (13, 13) and big.passes == 13 * 13 + 1


def test_progress_and_drop_of_the_blob(ex_cnn, ex_blobs):
    """Covering the bright square that defines the class lowers that class the most."""
    x, y = ex_blobs[0][0], int(ex_blobs[1][0])
    seen = []
    r = occ.occlusion_map(ex_cnn, x, 7, 1, "zero", target=y, batch_size=64,
                          progress=seen.append)
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)
    blob = x[..., 0] > 0.65
    assert r.drop[blob].mean() > 5 * max(1e-4, abs(r.drop[~_dilated(blob, 6)]).mean())


def test_geometry_covers_every_pixel():
    np.testing.assert_array_equal(occ.positions(28, 4, 1), np.arange(25))
    np.testing.assert_array_equal(occ.positions(10, 4, 4), [0, 4, 6])
    np.testing.assert_array_equal(occ.positions(5, 8, 2), [0])
    (ph, pw), s, ys, xs = occ.resolve_geometry((224, 224, 3), 32, 16)
    assert (ph, pw, s, len(ys), len(xs)) == (32, 32, 16, 13, 13)
    assert occ.resolve_geometry((28, 28, 1), None, None)[:2] == ((4, 4), 1)
    assert occ.resolve_geometry((224, 224, 3), 0, 0)[:2] == ((32, 32), 16)
    with pytest.raises(ValueError):
        occ.resolve_geometry((28, 28, 1), -1, 1)


def test_fills_in_model_range(ex_cnn, ex_blobs):
    eng = get_engine(ex_cnn)
    x = ex_blobs[0][0]
    assert np.allclose(occ.fill_image(eng, x, "gray"), 128 / 255)
    assert np.allclose(occ.fill_image(eng, x, "mean"), x.mean())
    assert np.all(occ.fill_image(eng, x, "zero") == 0)
    b = occ.fill_image(eng, x, "blur", 6)
    assert b.shape == x.shape and b.std() < x.std()
    with pytest.raises(ValueError, match="unknown fill"):
        occ.fill_image(eng, x, "pink")


def test_mask_from_canvas_and_comparison(region_info):
    rgba = np.zeros((140, 140, 4), np.uint8)
    rgba[30:70, 80:120] = (255, 140, 0, 150)  # = REGION at 10x
    rgba[0:4, 0:4] = (255, 140, 0, 150)  # a speck under half a pixel: not covered
    mask = occ.mask_from_canvas(rgba, (14, 14, 1))
    expected = np.zeros((14, 14), bool)
    expected[REGION] = True
    np.testing.assert_array_equal(mask, expected)
    x = np.random.RandomState(2).uniform(0.5, 1.0, (14, 14, 1)).astype(np.float32)
    cmp = occ.compare_occlusion(region_info, x, mask, "zero", method="saliency")
    assert cmp.target == 0 and cmp.covered == pytest.approx(16 / 196)
    assert cmp.target_drop > 0.2
    assert np.all(cmp.occluded[REGION] == 0) and np.all(cmp.occluded[~mask] == x[~mask])
    assert cmp.heat.shape == cmp.heat_occluded.shape == (14, 14)
    none = occ.compare_occlusion(region_info, x, np.zeros((14, 14), bool), "zero", None)
    np.testing.assert_allclose(none.probs, none.probs_occluded)
    assert none.heat is None
