"""Incremental occlusion passes (vizcore.incremental): the same probabilities as full
forward passes, on layer geometries chosen to catch off-by-one errors, and windows that contain
every value a patch changes."""

from __future__ import annotations

import numpy as np
import pytest

from vizcore import incremental
from vizcore import occlusion as occ
from vizcore.engine import get_engine
from vizcore.models import ModelInfo


@pytest.fixture(scope="module")
def odd_chain():
    """A chain with every geometry the planner handles: a non-square 3-channel input, strided
    and dilated convolutions, even kernels with ``same`` padding, ``valid`` padding, max and
    average pooling (``same`` and ``valid``), batch normalisation, LeakyReLU, a logits output."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(3)
    inp = keras.Input((23, 19, 3))
    x = layers.Conv2D(6, 3, padding="same", activation="relu", name="c1")(inp)
    x = layers.Conv2D(6, 4, padding="same", name="c2_even")(x)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.LeakyReLU(name="lrelu")(x)
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="c3_stride")(x)
    x = layers.Conv2D(8, 3, dilation_rate=2, padding="same", name="c4_dilated")(x)
    x = layers.AveragePooling2D(3, strides=2, padding="same", name="avg")(x)
    x = layers.Conv2D(8, (3, 2), padding="valid", activation="relu", name="c5_valid")(x)
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = layers.Flatten()(x)
    out = layers.Dense(5, name="logits")(x)
    model = keras.Model(inp, out)
    # non-trivial batch-norm statistics
    bn = model.get_layer("bn")
    rng = np.random.default_rng(0)
    bn.set_weights([rng.uniform(0.5, 1.5, 6), rng.normal(0, 0.1, 6), rng.normal(0, 0.2, 6),
                    rng.uniform(0.5, 2.0, 6)])
    return ModelInfo("odd", "odd", model, "0..1", [str(i) for i in range(5)],
                     outputs_probabilities=False)


def test_plan_of_a_chain(odd_chain):
    p = incremental.plan(odd_chain.model)
    kinds = [(s.layer.name, s.kind) for s in p.steps]
    assert kinds == [("c1", "conv"), ("c2_even", "conv"), ("bn", "pointwise"),
                     ("lrelu", "pointwise"), ("c3_stride", "conv"), ("c4_dilated", "conv"),
                     ("avg", "pool"), ("c5_valid", "conv"), ("pool", "pool")]
    step = {s.layer.name: s for s in p.steps}
    assert step["c2_even"].pad == (1, 1)  # TensorFlow puts the odd padding row after
    assert step["c4_dilated"].kernel == (5, 5) and step["c4_dilated"].pad == (2, 2)
    assert step["c3_stride"].out_hw == (12, 10)
    assert [la.name for la in p.tail][-1] == "logits"


def test_plan_refuses_branches():
    import keras
    from keras import layers

    inp = keras.Input((12, 12, 1))
    a = layers.Conv2D(4, 3, padding="same")(inp)
    b = layers.Conv2D(4, 3, padding="same")(a)
    out = layers.Dense(2, activation="softmax")(layers.Flatten()(layers.Add()([a, b])))
    model = keras.Model(inp, out)
    assert incremental.plan(model) is None
    # occlusion still works on it, with plain batched passes
    info = ModelInfo("res", "res", model, "0..1", ["a", "b"])
    x = np.random.default_rng(0).uniform(0, 1, (12, 12, 1)).astype(np.float32)
    r = occ.occlusion_map(info, x, 3, 2)
    assert not r.incremental
    np.testing.assert_allclose(r.grid_prob, occ.occlusion_loop(info, x, 3, 2), atol=2e-6)


@pytest.mark.parametrize("patch,stride", [(1, 1), (3, 1), (4, 3), (6, 2), (30, 1)])
def test_incremental_equals_full_passes(odd_chain, patch, stride, monkeypatch):
    monkeypatch.setattr(incremental, "CROP_BELOW", 1.01)  # crop every convolution
    x = np.random.default_rng(1).uniform(0, 1, (23, 19, 3)).astype(np.float32)
    full = occ.occlusion_map(odd_chain, x, patch, stride, "zero", target=2,
                             incremental_passes=False)
    fast = occ.occlusion_map(odd_chain, x, patch, stride, "zero", target=2, batch_size=17)
    loop = occ.occlusion_loop(odd_chain, x, patch, stride, "zero", target=2)
    np.testing.assert_allclose(fast.grid_prob, full.grid_prob, atol=2e-6)
    np.testing.assert_allclose(fast.grid_prob, loop, atol=2e-6)
    assert np.abs(full.grid_drop).max() > 1e-3, "the patches must change the output"


def test_windows_contain_every_changed_value(odd_chain):
    """Brute force: the conv outputs that differ between an image and its occluded copy all lie
    inside the window the geometry gives for that patch position."""
    p = incremental.plan(odd_chain.model)
    x = np.random.default_rng(2).uniform(0, 1, (1, 23, 19, 3)).astype(np.float32)
    origins = np.array([[0, 0], [5, 7], [20, 16], [11, 0], [0, 15]], np.int32)
    g = incremental.geometry(p, origins, (3, 3), crop_below=1.01)
    # every conv and the valid max pooling run on windows; the "same" average pooling cannot
    assert g.modes == ("win",) * 6 + ("full", "win", "win")
    assert g.cropped == 6  # c1, c2, c3, c4, c5, pool (bn and lrelu ride on c2's window)
    base = [np.asarray(m) for m in incremental.base_maps(p, x)]
    for n, (y0, x0) in enumerate(origins):
        xo = x.copy()
        xo[0, y0 : y0 + 3, x0 : x0 + 3] = 5.0
        maps = [np.asarray(m) for m in incremental.base_maps(p, xo)]
        for j, (m0, m1) in enumerate(zip(base, maps)):
            if g.modes[j] != "win":
                continue
            size = g.sizes[j] or g.sizes[j - 1] or g.sizes[j - 2]
            changed = np.argwhere(np.abs(m1[0] - m0[0]).max(-1) > 1e-6)
            (r, c), (h, w) = g.offsets[n, j], size
            assert len(changed), "the patch changes every layer here"
            assert (changed[:, 0] >= r).all() and (changed[:, 0] < r + h).all()
            assert (changed[:, 1] >= c).all() and (changed[:, 1] < c + w).all()


def test_shipped_cnn_crops_the_first_two_convolutions(shipped_vgg):
    engine = get_engine(shipped_vgg)
    p = occ._plan(engine)
    ys = occ.positions(28, 4, 1)
    origins = np.stack(np.meshgrid(ys, ys, indexing="ij"), -1).reshape(-1, 2)
    g = incremental.geometry(p, origins, (4, 4))
    # windows: 6x6 of the 28x28 map, 4x4 after pooling, 6x6 of 14x14, 4x4 of 7x7, 6x6 of 7x7,
    # and the last 3x3 pooling in full
    assert g.sizes == ((6, 6), (4, 4), (6, 6), (4, 4), (6, 6), None)
    assert g.modes == ("win",) * 5 + ("full",)
    x = np.random.default_rng(0).uniform(0, 1, (28, 28, 1)).astype(np.float32)
    fast = occ.occlusion_map(shipped_vgg, x, 4, 1)
    full = occ.occlusion_map(shipped_vgg, x, 4, 1, incremental_passes=False)
    np.testing.assert_allclose(fast.grid_prob, full.grid_prob, atol=2e-6)
    assert fast.incremental and not full.incremental
