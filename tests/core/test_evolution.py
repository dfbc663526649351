"""Filters evolving over training: the act-max loop, a tiny recording, save/load, the shipped
recording."""

import numpy as np
import pytest

from vizcore import evolution
from vizcore.data import Dataset
from vizcore.features import activations


def _fake_fashion(n: int, seed: int) -> Dataset:
    """10 classes of 28x28 images: class c lights up row band c (learnable in a few batches)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.integers(0, 40, (n, 28, 28, 1)).astype(np.uint8)
    for i, c in enumerate(labels):
        images[i, 2 + 2 * c : 4 + 2 * c, 4:24] = 255
    return Dataset("fake", images, labels.astype(np.int64), [f"c{i}" for i in range(10)],
                   "synthetic bands", "train")


def test_unit_maximizer_raises_scores_and_scores_are_preactivations(tiny_cnn):
    from tests.helpers import assert_weights_equal, weights_snapshot

    model = tiny_cnn.model
    before = weights_snapshot(model)
    units = [("conv1", 0), ("conv1", 3), ("predictions", 1)]
    start = evolution.UnitMaximizer(model, units, steps=0, seed=1)
    x0, s0 = start()
    np.testing.assert_array_equal(x0, start.x0)
    # the Dense score is the pre-softmax logit: fc1 output @ W + b
    fc1 = activations(model, ["fc1"], x0)["fc1"]
    w, b = model.get_layer("predictions").get_weights()
    np.testing.assert_allclose(s0[2], (fc1 @ w + b)[2, 1], rtol=1e-4, atol=1e-5)
    # the conv score is the centre neuron of the channel before the ReLU (may be negative)
    k, kb = model.get_layer("conv1").get_weights()
    pad = np.pad(x0[0, :, :, 0], 1)
    pre = sum(pad[i:i + 8, j:j + 8] * k[i, j, 0, 0] for i in range(3) for j in range(3)) + kb[0]
    np.testing.assert_allclose(s0[0], pre[4, 4], rtol=1e-4, atol=1e-5)
    x1, s1 = evolution.UnitMaximizer(model, units, steps=30, seed=1)()
    assert np.all(s1 > s0)
    assert x1.shape == (3, 8, 8, 1) and 0.0 <= x1.min() and x1.max() <= 1.0
    assert_weights_equal(model, before)


def test_unit_maximizer_follows_changing_weights(tiny_cnn):
    import keras

    clone = keras.models.clone_model(tiny_cnn.model)
    clone.set_weights(tiny_cnn.model.get_weights())
    mx = evolution.UnitMaximizer(clone, [("predictions", 0)], steps=5)
    a, _ = mx()
    w, b = clone.get_layer("predictions").get_weights()
    clone.get_layer("predictions").set_weights([-w, b])
    c, _ = mx()
    assert not np.allclose(a, c)
    with pytest.raises(ValueError, match="outside"):
        evolution.UnitMaximizer(clone, [("predictions", 7)])
    with pytest.raises(ValueError, match="Conv2D or Dense"):
        evolution.UnitMaximizer(clone, [("pool", 0)])


@pytest.fixture(scope="module")
def tiny_recording():
    progress = []
    rec = evolution.record_evolution(
        epochs=2, train_size=60, batch_size=20, val_size=20, n_maps=4, actmax_steps=4,
        train=_fake_fashion(100, 0), test=_fake_fashion(40, 1),
        on_progress=lambda f, m: progress.append(f))
    return rec, progress


def test_tiny_recording_has_one_snapshot_per_epoch_plus_init(tiny_recording):
    rec, progress = tiny_recording
    assert progress[0] == 0.0 and progress[-1] == 1.0 and progress == sorted(progress)
    assert list(rec.epochs) == [0, 1, 2] and not rec.stopped
    assert rec.kernels.shape == (3, 32, 3, 3, 1) and rec.first_layer == "block1_conv1"
    assert {k: v.shape for k, v in rec.maps.items()} == {
        "block1_conv1": (3, 4, 28, 28), "block2_conv1": (3, 4, 14, 14),
        "block3_conv1": (3, 4, 7, 7)}
    assert rec.actmax.shape == (3, len(evolution.DEFAULT_UNITS), 28, 28, 1)
    assert rec.actmax_scores.shape == (3, len(evolution.DEFAULT_UNITS))
    assert {m: len(v) for m, v in rec.history.items()} == {m: 3 for m in evolution.METRICS}
    np.testing.assert_allclose(rec.probs.sum(axis=1), 1.0, rtol=1e-5)
    change = rec.kernel_change()
    assert change[0] == 0.0 and change[2] > 0.0
    assert not np.allclose(rec.kernels[0], rec.kernels[2])
    assert rec.units[-1] == ("predictions", 9, "class 9: c9")
    assert rec.config["train_size"] == 60 and rec.fixed_image.shape == (28, 28, 1)


def test_recording_save_load_roundtrip(tiny_recording, tmp_path):
    rec, _ = tiny_recording
    path = rec.save(tmp_path)
    assert path.suffix == ".npz" and path.with_suffix(".json").is_file()
    back = evolution.EvolutionRecording.load(path.with_suffix(".json"))
    np.testing.assert_array_equal(back.kernels, rec.kernels)
    np.testing.assert_allclose(back.actmax, rec.actmax, atol=1 / 255 + 1e-6)
    for layer in rec.maps:
        np.testing.assert_allclose(back.maps[layer], rec.maps[layer], rtol=1e-2, atol=1e-2)
    assert back.units == rec.units and back.history == rec.history
    assert back.title() == rec.title()
    assert evolution.list_recordings([tmp_path]) == [path]
    (tmp_path / "evolution_bad.npz").write_bytes(b"x")
    (tmp_path / "evolution_bad.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError):
        evolution.EvolutionRecording.load(tmp_path / "evolution_bad.npz")


def test_stop_keeps_the_snapshots_made_so_far():
    rec = evolution.record_evolution(
        epochs=3, train_size=40, batch_size=20, val_size=20, n_maps=2, actmax_steps=2,
        train=_fake_fashion(60, 0), test=_fake_fashion(30, 1), should_stop=lambda: True)
    assert rec.stopped and list(rec.epochs) == [0] and len(rec.history["loss"]) == 1


def test_shipped_recording_is_small_and_loads():
    paths = evolution.list_recordings([evolution.SHIPPED_RUNS_DIR])
    assert paths, "assets/runs should ship one evolution recording"
    size = sum(p.stat().st_size + p.with_suffix(".json").stat().st_size for p in paths)
    assert size < 2_000_000
    rec = evolution.EvolutionRecording.load(paths[0])
    assert rec.num_snapshots >= 4
    acc = rec.history["val_accuracy"]
    assert acc[0] < 0.3 and acc[-1] > 0.7  # from chance to a trained network
    assert rec.kernel_change()[-1] > 0.1
