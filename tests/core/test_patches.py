"""Receptive fields (analytic) and maximally activating dataset patches (vizcore.patches)."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from vizcore import features, patches  # noqa: E402


def test_vgg16_receptive_fields():
    model = keras.applications.VGG16(weights=None, include_top=False)
    rf = patches.receptive_field(model, "block5_conv3")
    assert rf.size == (196, 196) and rf.jump == (16, 16)
    rf = patches.receptive_field(model, "block5_pool")
    assert rf.size == (212, 212) and rf.jump == (32, 32)
    assert patches.receptive_field(model, "block1_conv1").size == (3, 3)


def test_default_cnn_receptive_fields_derived_by_hand():
    """vgg_small: 3x3 'same' convs (stride 1) and 2x2 max pools (stride 2). Per axis, from the
    input (r=1, j=1): block1_conv1 r = 1 + 2*1 = 3, j = 1; block1_pool r = 3 + 1*1 = 4, j = 2;
    block2_conv1 r = 4 + 2*2 = 8, j = 2; block2_pool r = 8 + 1*2 = 10, j = 4;
    block3_conv1 r = 10 + 2*4 = 18, j = 4; block3_pool r = 18 + 1*4 = 22, j = 8.
    Where: block2_conv1 unit i reads block1_pool units i-1..i+1, which cover block1_conv1
    2(i-1)..2(i+1)+1, which read pixels 2i-3..2i+4 (8 pixels, centre 2i + 0.5)."""
    from vizcore.architectures import build_vgg_small

    model = build_vgg_small()
    expect = {"block1_conv1": (3, 1), "block1_pool": (4, 2), "block2_conv1": (8, 2),
              "block2_pool": (10, 4), "block3_conv1": (18, 4), "block3_pool": (22, 8)}
    for layer, (size, jump) in expect.items():
        rf = patches.receptive_field(model, layer)
        assert rf.size == (size, size) and rf.jump == (jump, jump), (layer, rf)
    rf = patches.receptive_field(model, "block2_conv1")
    for i in (0, 3, 13):
        top, left, bottom, right = rf.box(i, i)
        assert (top, bottom) == (2 * i - 3, 2 * i + 5)  # pixels 2i-3 .. 2i+4 inclusive
    with pytest.raises(ValueError, match="spatial"):
        patches.receptive_field(model, "fc1")


def test_box_is_exactly_where_the_gradient_is():
    """On a linear chain with strides, dilation, valid and same padding, the input pixels a
    unit depends on (non-zero gradient) fill exactly its analytic box."""
    import tensorflow as tf

    keras.utils.set_random_seed(3)
    inp = keras.Input((40, 40, 1))
    x = keras.layers.Conv2D(2, 3, padding="same", name="c1")(inp)
    x = keras.layers.AveragePooling2D(2, name="p1")(x)
    x = keras.layers.Conv2D(2, 3, dilation_rate=2, padding="same", name="c2")(x)
    x = keras.layers.Conv2D(2, 5, strides=2, padding="valid", name="c3")(x)
    model = keras.Model(inp, x)
    rf = patches.receptive_field(model, "c3")
    assert rf.size == (1 + 2 + 1 + 4 * 2 + 4 * 2, 1 + 2 + 1 + 4 * 2 + 4 * 2) and rf.jump == (4, 4)
    img = tf.Variable(np.random.default_rng(0).uniform(size=(1, 40, 40, 1)).astype("float32"))
    for r, c in [(3, 3), (2, 4)]:
        with tf.GradientTape() as tape:
            out = model(img)[0, r, c, 0]
        g = np.abs(tape.gradient(out, img).numpy()[0, ..., 0]) > 0
        rows, cols = np.nonzero(g)
        top, left, bottom, right = rf.box(r, c)
        assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (top, bottom,
                                                                            left, right)


def test_top_k_patches_are_the_k_highest_activations(shipped_vgg):
    from vizcore.data import load_fashion_mnist

    images = load_fashion_mnist("test", allow_download=False).images[:300]
    layer, k = "block2_conv1", 7
    peaks = patches.layer_peaks(shipped_vgg, layer, images, "test:300", batch_size=64)
    full = features.activations(shipped_vgg.model, [layer], shipped_vgg.preprocess(images))[layer]
    per_image = full.reshape(len(images), -1, full.shape[-1]).max(axis=1)
    np.testing.assert_allclose(peaks.values, per_image, rtol=1e-5, atol=1e-6)
    for channel in (0, 5, 63):
        top = patches.top_patches(shipped_vgg, peaks, images, channel, k)
        order = np.argsort(-per_image[:, channel], kind="stable")[:k]
        np.testing.assert_allclose(top.values, per_image[order, channel], rtol=1e-5)
        assert set(top.indices) == set(order) or np.allclose(
            np.sort(per_image[top.indices, channel]), np.sort(per_image[order, channel]))
        assert np.all(np.diff(top.values) <= 0)
        # the reported position holds the peak, and the crop has the receptive field's size
        for i, (r, c), v in zip(top.indices, top.positions, top.values):
            assert full[i, r, c, channel] == pytest.approx(v, rel=1e-5)
        assert top.crops.shape == (k, 8, 8, 1) and top.boxed.shape == (k, 28, 28, 3)
    # a second call is served from the cache
    assert patches.layer_peaks(shipped_vgg, layer, images, "test:300") is peaks


def test_top_k_indices_ties_and_small_sets():
    v = np.array([1.0, 3.0, 3.0, 2.0])
    np.testing.assert_array_equal(patches.top_k_indices(v, 3), [1, 2, 3])
    np.testing.assert_array_equal(patches.top_k_indices(v, 10), [1, 2, 3, 0])


def test_crop_pads_outside_the_image():
    img = np.arange(16, dtype=np.uint8).reshape(4, 4, 1)
    out = patches.crop(img, (-1, -1, 2, 2))
    assert out.shape == (3, 3, 1) and out[0, 0, 0] == 0 and out[1, 1, 0] == img[0, 0, 0]
