"""Transfer learning vs scratch: frozen bases stay frozen, curves have one point per epoch, runs
save and load, folders of images load, and the shared model is never touched."""

import json
import threading

import numpy as np
import pytest
from PIL import Image

from tests.helpers import assert_weights_equal, weights_snapshot
from vizcore import transfer


def synthetic_task(n_per_class: int = 12, classes: int = 3, side: int = 28,
                   seed: int = 0) -> transfer.TaskData:
    """Class c = a bright square at a class-specific place, plus noise (easily learnable)."""
    rng = np.random.default_rng(seed)

    def make(n):
        x = rng.uniform(0, 0.2, (n * classes, side, side, 1)).astype(np.float32)
        y = np.repeat(np.arange(classes), n)
        for i, c in enumerate(y):
            r0 = 2 + 8 * int(c)
            x[i, r0:r0 + 6, 4:10] = 1.0
        return x, y.astype(np.int64)

    (xt, yt), (xv, yv), (xs, ys) = make(n_per_class), make(4), make(4)
    return transfer.TaskData("synthetic", xt, yt, xv, yv, xs, ys,
                             [f"c{i}" for i in range(classes)], "synthetic squares")


@pytest.fixture(scope="module")
def task():
    return synthetic_task()


def _weights(model, names):
    return {n: [np.array(w) for w in model.get_layer(n).get_weights()] for n in names}


def test_conv_base_and_last_block_of_the_shipped_model(shipped_vgg):
    assert transfer.conv_base_output(shipped_vgg.model) == "block3_pool"
    m = transfer.build_model(shipped_vgg.model, 3, pretrained=True, fine_tune=True)
    assert m.frozen_layers == ["block1_conv1", "block2_conv1"]
    assert m.get_layer("block3_conv1").trainable
    assert [lyr.name for lyr in m.layers if lyr.trainable and lyr.weights] == [
        "block3_conv1", "head_fc", "head_predictions"]


def test_frozen_base_unchanged_while_head_trains(shipped_vgg, task):
    import keras

    before_shared = weights_snapshot(shipped_vgg.model)
    m = transfer.build_model(shipped_vgg.model, task.num_classes, pretrained=True)
    convs = ["block1_conv1", "block2_conv1", "block3_conv1"]
    # the base starts as an exact copy of the trained weights, in different variables
    for n in convs:
        for a, b in zip(m.get_layer(n).get_weights(), shipped_vgg.model.get_layer(n).get_weights()):
            np.testing.assert_array_equal(a, b)
        assert m.get_layer(n).kernel is not shipped_vgg.model.get_layer(n).kernel
    base0, head0 = _weights(m, convs), _weights(m, ["head_fc", "head_predictions"])
    m.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    m.fit(task.x_train, task.y_train, batch_size=12, epochs=1, verbose=0)
    for n, ws in _weights(m, convs).items():
        for a, b in zip(base0[n], ws):
            np.testing.assert_array_equal(a, b, err_msg=f"frozen {n} changed")
    for n, ws in _weights(m, ["head_fc", "head_predictions"]).items():
        assert any(not np.allclose(a, b) for a, b in zip(head0[n], ws)), f"{n} did not train"
    assert_weights_equal(shipped_vgg.model, before_shared)


def test_fine_tuning_trains_only_the_last_block(shipped_vgg, task):
    import keras

    m = transfer.build_model(shipped_vgg.model, task.num_classes, pretrained=True,
                             fine_tune=True)
    w0 = _weights(m, ["block1_conv1", "block2_conv1", "block3_conv1"])
    m.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    m.fit(task.x_train, task.y_train, batch_size=12, epochs=1, verbose=0)
    w1 = _weights(m, ["block1_conv1", "block2_conv1", "block3_conv1"])
    for n in ("block1_conv1", "block2_conv1"):
        np.testing.assert_array_equal(w0[n][0], w1[n][0])
    assert not np.allclose(w0["block3_conv1"][0], w1["block3_conv1"][0])


def test_scratch_model_is_random_fully_trainable_with_the_same_head(shipped_vgg):
    s = transfer.build_model(shipped_vgg.model, 3, pretrained=False, seed=3)
    t = transfer.build_model(shipped_vgg.model, 3, pretrained=True, seed=3)
    assert s.frozen_layers == [] and all(lyr.trainable for lyr in s.layers)
    k_s = s.get_layer("block1_conv1").get_weights()[0]
    k_ref = shipped_vgg.model.get_layer("block1_conv1").get_weights()[0]
    assert k_s.shape == k_ref.shape and not np.allclose(k_s, k_ref)
    for n in ("head_fc", "head_predictions"):  # same seed -> same starting head
        np.testing.assert_array_equal(s.get_layer(n).get_weights()[0],
                                      t.get_layer(n).get_weights()[0])


def test_tiny_comparison_one_point_per_epoch_and_shared_model_unchanged(shipped_vgg, task):
    before = weights_snapshot(shipped_vgg.model)
    calls = []
    cfg = transfer.TransferConfig("synthetic", None, epochs=2, batch_size=12)
    comp = transfer.run_comparison(task, cfg, shipped_vgg.model,
                                   on_epoch=lambda c, k, e: calls.append((k, e, c.progress)))
    assert [(k, e) for k, e, _ in calls] == [("transfer", 0), ("scratch", 0),
                                             ("transfer", 1), ("scratch", 1)]
    assert [p for _, _, p in calls] == [0.25, 0.5, 0.75, 1.0]
    assert comp.finished and not comp.stopped
    for run in comp.runs.values():
        assert {m: len(v) for m, v in run.history.items()} == {m: 2 for m in transfer.METRICS}
        assert len(run.epoch_seconds) == 2
        assert 0.0 <= run.test_accuracy <= 1.0 and np.isfinite(run.test_loss)
        assert all(np.isfinite(v) for vs in run.history.values() for v in vs)
    t, s = comp.runs["transfer"], comp.runs["scratch"]
    assert t.frozen_params > 0 and s.frozen_params == 0
    assert t.trainable_params < s.trainable_params
    assert comp.sizes == {"train": 36, "val": 12, "test": 12}
    assert_weights_equal(shipped_vgg.model, before)


def test_stop_flag_checked_per_batch_drops_the_unfinished_epoch(shipped_vgg, task):
    checks = {"n": 0}

    def stop_after_two_batches():
        checks["n"] += 1
        return checks["n"] > 2

    cfg = transfer.TransferConfig("synthetic", None, epochs=3, batch_size=4)  # 9 batches/epoch
    comp = transfer.run_comparison(task, cfg, shipped_vgg.model,
                                   should_stop=stop_after_two_batches)
    assert comp.stopped and comp.finished
    assert all(r.epochs_done == 0 for r in comp.runs.values())
    assert all(r.test_accuracy is not None for r in comp.runs.values())


def test_stop_event_between_epochs(shipped_vgg, task):
    ev = threading.Event()
    cfg = transfer.TransferConfig("synthetic", None, epochs=3, batch_size=12)
    comp = transfer.run_comparison(task, cfg, shipped_vgg.model, should_stop=ev,
                                   on_epoch=lambda c, k, e: ev.set())
    assert comp.stopped
    assert comp.runs["transfer"].epochs_done == 1 and comp.runs["scratch"].epochs_done == 0


def test_on_batch_progress_and_an_interrupting_callback(shipped_vgg, task):
    """A UI interrupts by raising from a callback: the comparison it kept is marked stopped and
    evaluated, and the exception propagates."""

    class Interrupt(BaseException):
        pass

    kept, fractions = {}, []

    def on_batch(comp, frac):
        kept["comp"] = comp
        fractions.append(frac)
        if len(fractions) == 4:  # 3 batches per epoch: inside the scratch run's first epoch
            raise Interrupt

    cfg = transfer.TransferConfig("synthetic", None, epochs=2, batch_size=12)
    with pytest.raises(Interrupt):
        transfer.run_comparison(task, cfg, shipped_vgg.model, on_batch=on_batch)
    assert fractions == pytest.approx([1 / 12, 2 / 12, 3 / 12, 4 / 12])
    comp = kept["comp"]
    assert comp.stopped and comp.finished
    assert comp.runs["transfer"].epochs_done == 1 and comp.runs["scratch"].epochs_done == 0
    assert all(0 <= r.test_accuracy <= 1 for r in comp.runs.values())


def test_save_load_and_list_runs(tmp_path):
    comp = transfer.Comparison(
        {"task": "digits", "train_size": 100, "epochs": 2},
        {k: transfer.RunHistory(k, {m: [0.1, 0.2] for m in transfer.METRICS}, [1.0, 1.0], 0.5)
         for k in transfer.RUN_KINDS},
        {"train": 100, "val": 10, "test": 10}, "src", "2026-01-01T10:00:00", finished=True)
    p1 = transfer.save_comparison(comp, tmp_path)
    p2 = transfer.save_comparison(comp, tmp_path)
    assert p1 != p2 and comp.path == str(p2)
    back = transfer.load_comparison(p1)
    assert back.to_dict() == comp.to_dict()
    assert json.loads(p1.read_text())["runs"]["transfer"]["history"]["val_accuracy"] == [0.1, 0.2]
    (tmp_path / "transfer_broken.json").write_text("{not json")
    (tmp_path / "transfer_other.json").write_text('{"format": "something else"}')
    assert len(transfer.list_comparisons([tmp_path, tmp_path / "missing"])) == 2
    with pytest.raises(ValueError):
        transfer.load_comparison(tmp_path / "transfer_broken.json")


def test_split_and_limit_are_stratified_and_disjoint():
    task = transfer.load_task("digits")
    n = len(task.y_train) + len(task.y_val) + len(task.y_test)
    assert n == 1797 and task.input_shape == (28, 28, 1)
    assert 0.0 <= task.x_train.min() and task.x_train.max() <= 1.0
    for y in (task.y_train, task.y_val, task.y_test):
        assert set(np.unique(y)) == set(range(10))
    small = task.limit_train(100, seed=0)
    assert len(small.y_train) == 100 and np.bincount(small.y_train).min() == 10
    assert small.x_val is task.x_val and task.limit_train(None) is task


def _png(path, colour, size=(20, 30)):
    Image.new("RGB", size, colour).save(path)


def test_load_image_folder_skips_bad_files_and_checks_classes(tmp_path):
    for cls, colour in (("cats", (200, 10, 10)), ("dogs", (10, 10, 200))):
        (tmp_path / cls).mkdir()
        for i in range(4):
            _png(tmp_path / cls / f"{i}.png", colour)
    (tmp_path / "dogs" / "broken.jpg").write_bytes(b"not an image")
    (tmp_path / "dogs" / "notes.txt").write_text("ignored")
    ds = transfer.load_image_folder(tmp_path, 32)
    assert ds.class_names == ["cats", "dogs"]
    assert ds.images.shape == (8, 32, 32, 3) and ds.images.dtype == np.uint8
    assert list(np.bincount(ds.labels)) == [4, 4]
    assert len(ds.extra["skipped"]) == 1 and "broken.jpg" in ds.extra["skipped"][0]
    assert ds.images[0, 16, 16, 0] > 150 and ds.images[-1, 16, 16, 2] > 150
    task = transfer.load_task("folder", folder=tmp_path, image_size=32)
    assert task.class_names == ["cats", "dogs"] and task.x_train.shape[1:] == (32, 32, 3)
    assert task.x_train.min() < -50  # caffe scaling (mean subtracted)

    only_one = tmp_path / "one"
    (only_one / "cats").mkdir(parents=True)
    _png(only_one / "cats" / "a.png", (0, 0, 0))
    with pytest.raises(ValueError, match="at least two"):
        transfer.load_image_folder(only_one, 32)
    with pytest.raises(transfer.DataUnavailable):
        transfer.load_image_folder(tmp_path / "nope", 32)


def test_vgg16_base_reads_weights_by_name_and_builds_a_frozen_model(tmp_path):
    """The VGG16 path at a small input (no ImageNet weights needed): weights are read by layer
    name from a legacy .h5 file, the base is cut at block5_pool, fine-tuning opens block5."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    from vizcore.models import ModelLoadError

    keras.utils.set_random_seed(5)
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(64, 3, padding="same", name="block1_conv1")(inp)
    x = keras.layers.Flatten(name="flatten")(x)
    fake = keras.Model(inp, keras.layers.Dense(2, name="fc1")(x))
    path = tmp_path / "vgg16_weights.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, fake)
    base = transfer.vgg16_base(path, 32)
    np.testing.assert_array_equal(base.get_layer("block1_conv1").get_weights()[0],
                                  fake.get_layer("block1_conv1").get_weights()[0])
    assert transfer.conv_base_output(base) == "block5_pool"
    m = transfer.build_model(base, 4, pretrained=True, fine_tune=True, pooling="avg")
    assert m.outputs[0].shape[-1] == 4 and tuple(m.inputs[0].shape[1:]) == (32, 32, 3)
    assert {n for n in ("block5_conv1", "block5_conv2", "block5_conv3")} <= {
        lyr.name for lyr in m.layers if lyr.trainable}
    assert "block4_conv3" in m.frozen_layers and "block5_conv1" not in m.frozen_layers
    probs = m.predict(np.zeros((2, 32, 32, 3), np.float32), verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(
            f, keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="z")]))
    with pytest.raises(ModelLoadError):
        transfer.vgg16_base(other, 32)
