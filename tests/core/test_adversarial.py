"""FGSM, targeted PGD, the adversarial patch and flip rates."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import assert_weights_equal, make_info, weights_snapshot
from vizcore import adversarial as adv


def test_fgsm_raises_the_loss_and_stays_in_range(ex_cnn, ex_blobs):
    x, y = ex_blobs
    snap = weights_snapshot(ex_cnn.model)
    eps = 4 / 255
    res = adv.fgsm(ex_cnn, x, eps, labels=y)
    before = adv.cross_entropy(ex_cnn, x, y)
    after = adv.cross_entropy(ex_cnn, res.x_adv, y)
    assert np.all(after > before), (before, after)
    d = np.abs(res.delta)
    assert d.max() <= eps + 1e-6
    # every pixel not at the border of the valid range moves by exactly eps
    inside = (x > eps) & (x < 1 - eps)
    np.testing.assert_allclose(d[inside], eps, atol=1e-6)
    assert res.x_adv.min() >= 0.0 and res.x_adv.max() <= 1.0
    assert res.attack == "fgsm" and res.steps == 1 and not res.targeted
    assert_weights_equal(ex_cnn.model, snap)


def test_fgsm_is_batched_consistently(ex_cnn, ex_blobs):
    x = ex_blobs[0]
    a = adv.fgsm(ex_cnn, x, 0.05, batch_size=3)
    b = adv.fgsm(ex_cnn, x, 0.05, batch_size=256)
    np.testing.assert_allclose(a.x_adv, b.x_adv, atol=1e-6)
    one = adv.fgsm(ex_cnn, x[2], 0.05)
    np.testing.assert_allclose(one.x_adv[0], b.x_adv[2], atol=1e-6)


def test_caffe_scaling_is_clipped_per_channel():
    """In caffe range (BGR minus the ImageNet mean) each channel has its own valid interval."""
    import keras

    keras.utils.set_random_seed(4)
    inp = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(h))
    info = make_info(keras.Model(inp, out), "rgb", scaling="caffe")
    raw = np.random.RandomState(0).randint(0, 256, (4, 8, 8, 3)).astype(np.uint8)
    x = info.preprocess(raw)
    res = adv.pgd(info, x, 16 / 255, steps=5)
    lo, hi = adv.bounds(info)
    assert np.all(res.x_adv >= lo - 1e-4) and np.all(res.x_adv <= hi + 1e-4)
    assert np.abs(res.delta).max() <= 16 + 1e-3  # 16 grey levels = 16 caffe units
    assert adv.grey_levels(info, res.delta)[0] == pytest.approx(16, abs=1e-3)


def test_targeted_pgd_reaches_its_target_on_the_default_cnn(shipped_vgg):
    """On the shipped Fashion-MNIST CNN, a targeted PGD attack (epsilon = 40 grey levels,
    40 steps) must make the model answer a chosen wrong class for at least 80 % of a balanced
    sample of 20 test images; with epsilon = 0 it must succeed for none (the targets are not
    the current predictions)."""
    from vizcore import data

    ds = data.load_dataset("fashion_mnist")
    idx = ds.balanced_sample(20, seed=0)
    x = shipped_vgg.preprocess(ds.images[idx])
    pred = np.argmax(shipped_vgg.forward(x), -1)
    rng = np.random.default_rng(0)
    target = (pred + rng.integers(1, 10, len(pred))) % 10
    assert np.all(target != pred)
    none = adv.pgd(shipped_vgg, x, 0.0, steps=2, target=target)
    assert none.success_rate == 0.0
    res = adv.pgd(shipped_vgg, x, 40 / 255, steps=40, target=target)
    assert res.targeted and np.array_equal(res.labels, target)
    assert res.success_rate >= 0.8, f"targeted PGD reached the target for {res.success_rate:.0%}"
    assert np.abs(res.delta).max() <= 40 / 255 + 1e-6
    assert res.x_adv.min() >= 0.0 and res.x_adv.max() <= 1.0


def test_pgd_beats_fgsm_and_progress_reports(ex_cnn, ex_blobs):
    x, y = ex_blobs
    seen = []
    p = adv.pgd(ex_cnn, x, 0.05, steps=20, labels=y, progress=seen.append)
    f = adv.fgsm(ex_cnn, x, 0.05, labels=y)
    assert adv.cross_entropy(ex_cnn, p.x_adv, y).mean() >= adv.cross_entropy(
        ex_cnn, f.x_adv, y).mean()
    assert seen and seen[-1] == pytest.approx(1.0)


def test_adversarial_patch_beats_no_patch(ex_cnn):
    """The fixture model classifies by the quadrant of a bright square; a patch optimised for
    class 3 in the bottom-right quadrant must make most held-out images of other classes say
    3, far above the rate without the patch."""
    from tests.helpers import blob_data

    xs, ys = blob_data(96, seed=7)
    snap = weights_snapshot(ex_cnn.model)
    pr = adv.adversarial_patch(ex_cnn, xs[:48], xs[48:], 3, size=7, origin=(17, 17), steps=40,
                               step_size=0.2, batch_size=16, test_labels=ys[48:])
    assert pr.patch.shape == (7, 7, 1) and pr.patch.min() >= 0 and pr.patch.max() <= 1
    assert pr.n_test == int((ys[48:] != 3).sum())
    assert pr.success_rate >= 0.7 and pr.success_rate > pr.baseline_rate + 0.5
    assert pr.losses[-1] < pr.losses[0]
    assert len(pr.examples) == 8 and np.allclose(pr.examples[0, 17:24, 17:24], pr.patch)
    with pytest.raises(ValueError, match="does not fit"):
        adv.adversarial_patch(ex_cnn, xs[:4], xs[4:8], 3, size=7, origin=(25, 0), steps=1)
    assert_weights_equal(ex_cnn.model, snap)


def test_flip_rate_table(ex_cnn, ex_blobs):
    x, y = ex_blobs
    t = adv.flip_rates(ex_cnn, x, y, [0.0, 0.02, 0.3], ["fgsm", "pgd"], pgd_steps=5)
    assert list(t["epsilon"]) == [0.0, 0.02, 0.3]
    assert {"fgsm flipped", "pgd flipped", "accuracy", "pgd accuracy"} <= set(t.columns)
    assert t["fgsm flipped"].iloc[0] == 0.0 and t["pgd flipped"].iloc[0] == 0.0
    assert t["pgd flipped"].iloc[-1] >= t["pgd flipped"].iloc[1]
    assert t["pgd flipped"].iloc[-1] > 0.5
    with pytest.raises(ValueError, match="unknown attack"):
        adv.flip_rates(ex_cnn, x, None, [0.1], ["cw"])


def test_amplify():
    d = np.zeros((4, 4, 1), np.float32)
    d[0, 0], d[1, 1] = 0.01, -0.005
    a = adv.amplify(d)
    assert a.dtype == np.uint8 and a[0, 0, 0] == 255 and a[2, 2, 0] == 128 and a[1, 1, 0] == 64
