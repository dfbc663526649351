"""Model loading: shipped models, VGG16 discovery, user uploads and every bad file."""

import io
import json
import zipfile

import keras
import numpy as np
import pytest

from vizcore import data, models


def _save(model, tmp_path, name="m.keras") -> bytes:
    path = tmp_path / name
    model.save(path)
    return path.read_bytes()


def _small_classifier(input_shape=(16, 16, 3), classes=4, sequential=False):
    keras.utils.set_random_seed(1)
    layers = [keras.layers.Conv2D(2, 3, activation="relu", name="c1"),
              keras.layers.GlobalAveragePooling2D(name="g"),
              keras.layers.Dense(classes, activation="softmax", name="out")]
    if sequential:
        return keras.Sequential([keras.Input(input_shape), *layers])
    inp = keras.Input(input_shape)
    x = inp
    for lyr in layers:
        x = lyr(x)
    return keras.Model(inp, x)


def test_scaling_roundtrip():
    raw = np.random.default_rng(0).integers(0, 256, (5, 4, 3), dtype=np.uint8)
    for s in models.SCALINGS:
        back = models.unscale_pixels(models.scale_pixels(raw, s), s)
        np.testing.assert_array_equal(back, raw)
    assert models.scale_pixels(raw, "-1..1").min() >= -1.0
    caffe = models.scale_pixels(np.full((1, 1, 3), [255, 0, 0], np.uint8), "caffe")
    assert caffe[0, 0, 2] == pytest.approx(255 - 123.68)  # R goes last (BGR)


def test_upload_functional_keras_file(tmp_path):
    raw = _save(_small_classifier(), tmp_path)
    info = models.load_user_model(raw, "mine.keras", "0..1")
    assert info.input_shape == (16, 16, 3) and info.num_classes == 4
    assert info.class_names == [f"class {i}" for i in range(4)]
    probs = info.predict_raw(np.zeros((16, 16, 3), np.uint8))
    assert probs.shape == (1, 4) and probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_upload_sequential_is_wrapped_as_functional(tmp_path):
    raw = _save(_small_classifier(sequential=True), tmp_path)
    info = models.load_user_model(raw, "seq.keras", "0..1", ["a", "b", "c", "d"])
    assert not isinstance(info.model, keras.Sequential)
    assert info.class_names == ["a", "b", "c", "d"]


def test_upload_h5_full_model(tmp_path):
    model = _small_classifier()
    path = tmp_path / "m.h5"
    model.save(path)
    info = models.load_user_model(path.read_bytes(), "m.h5", "0..1")
    assert info.num_classes == 4


def test_upload_h5_weights_only_is_refused(tmp_path):
    model = _small_classifier()
    path = tmp_path / "w.weights.h5"
    model.save_weights(path)
    with pytest.raises(models.ModelLoadError, match="weights only"):
        models.load_user_model(path.read_bytes(), "w.h5", "0..1")


def test_lambda_layer_is_refused_without_running_it(tmp_path):
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(3, activation="softmax")(x)
    raw = _save(keras.Model(inp, out), tmp_path)
    with pytest.raises(models.ModelLoadError, match="Lambda layer .'double'"):
        models.load_user_model(raw, "lam.keras", "0..1")


def test_custom_object_is_refused(tmp_path):
    raw = _save(_small_classifier(), tmp_path)
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as zin, zipfile.ZipFile(buf, "w") as zout:
        for item in zin.namelist():
            content = zin.read(item)
            if item == "config.json":
                cfg = json.loads(content)
                cfg["config"]["layers"][1]["module"] = "my_package.layers"
                cfg["config"]["layers"][1]["registered_name"] = "MyPackage>FancyConv"
                content = json.dumps(cfg).encode()
            zout.writestr(item, content)
    with pytest.raises(models.ModelLoadError, match="custom class"):
        models.load_user_model(buf.getvalue(), "custom.keras", "0..1")


@pytest.mark.parametrize("payload,name,match", [
    (b"not a model at all", "x.keras", "not a Keras model"),
    (b"\x89PNG\r\n\x1a\n....", "x.h5", "not a Keras model"),
    (b"", "x.keras", "empty"),
    (b"abc", "model.pkl", "not a Keras model file"),
])
def test_non_model_files_are_refused(payload, name, match):
    with pytest.raises(models.ModelLoadError, match=match):
        models.load_user_model(payload, name, "0..1")


def test_zip_without_config_is_refused():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(models.ModelLoadError, match="no config.json"):
        models.load_user_model(buf.getvalue(), "x.keras", "0..1")


def test_model_whose_input_is_not_an_image_is_refused(tmp_path):
    inp = keras.Input((20,))
    out = keras.layers.Dense(3, activation="softmax")(inp)
    raw = _save(keras.Model(inp, out), tmp_path)
    with pytest.raises(models.ModelLoadError, match="not an image"):
        models.load_user_model(raw, "tab.keras", "0..1")


def test_regression_output_is_refused(tmp_path):
    raw = _save(_small_classifier(classes=1), tmp_path)
    with pytest.raises(models.ModelLoadError, match="at least two classes"):
        models.load_user_model(raw, "reg.keras", "0..1")


def test_logit_model_gets_softmax(tmp_path):
    inp = keras.Input((16, 16, 1))
    x = keras.layers.Flatten()(inp)
    out = keras.layers.Dense(3)(x)  # logits
    raw = _save(keras.Model(inp, out), tmp_path)
    info = models.load_user_model(raw, "logits.keras", "0..1")
    assert not info.outputs_probabilities
    p = info.forward(np.random.default_rng(0).random((2, 16, 16, 1), np.float32))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def test_rescaling_model_guesses_raw_scaling(tmp_path):
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(2, activation="softmax")(x)
    raw = _save(keras.Model(inp, out), tmp_path)
    assert models.load_user_model(raw, "r.keras").scaling == "none"


def test_thousand_outputs_get_imagenet_names():
    names = models.imagenet_class_names()
    assert len(names) == 1000 and names[281] == "tabby" and names[0] == "tench"


def test_vgg16_missing_message_names_the_places(monkeypatch, tmp_path):
    monkeypatch.setenv(models.VGG16_ENV, str(tmp_path / "nowhere.h5"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    assert models.find_vgg16_weights() is None
    with pytest.raises(data.DataUnavailable) as err:
        models.load_vgg16("auto")
    msg = str(err.value)
    assert "nowhere.h5" in msg and models.VGG16_FILENAME in msg and models.VGG16_ENV in msg


def test_vgg16_found_via_env(monkeypatch, tmp_path):
    path = tmp_path / "w.h5"
    path.write_bytes(b"x")
    monkeypatch.setenv(models.VGG16_ENV, str(path))
    assert models.find_vgg16_weights() == path


def test_vgg16_download_offline_fails_fast(monkeypatch, tmp_path):
    def refuse(url, dest, timeout):
        raise data.DataUnavailable(f"could not download {url}: offline")

    monkeypatch.setattr(models, "_download", refuse)
    with pytest.raises(data.DataUnavailable, match="Put"):
        models.download_vgg16_weights(timeout=1)


@pytest.mark.slow
def test_vgg16_random_weights_labelled():
    info = models.load_vgg16("random")
    assert info.input_shape == (224, 224, 3) and info.num_classes == 1000
    assert "random" in info.label


@pytest.mark.parametrize("key", sorted(models.BUILTIN))
def test_shipped_models_load_with_cards(key):
    info = models.load_builtin(key)
    assert info.input_shape == (28, 28, 1) and info.num_classes == 10
    assert info.card["test_accuracy"] >= 0.91
    assert (models.MODELS_DIR / f"{models.BUILTIN[key][0]}.keras").stat().st_size < 10_000_000
    names = [lyr.name for lyr in info.model.layers]
    assert "block1_conv1" in names and "predictions" in names
    if key == "fashion_vgg":
        assert {"fc1", "fc2"} <= set(names)
    else:
        assert type(info.model.get_layer("gap")).__name__ == "GlobalAveragePooling2D"


@pytest.mark.parametrize("key", sorted(models.BUILTIN))
def test_shipped_models_reach_91_percent_on_the_full_test_set(key):
    try:
        test = data.load_fashion_mnist("test", allow_download=False, allow_sample=False)
    except data.DataUnavailable:
        pytest.skip("the full Fashion-MNIST test set is not installed")
    info = models.load_builtin(key)
    weights = [w.copy() for w in info.model.get_weights()]
    probs = info.predict_raw(test.images, batch_size=500)
    acc = float((probs.argmax(1) == test.labels).mean())
    assert len(test) == 10_000
    assert acc >= 0.91, f"{key}: test accuracy {acc:.4f}"
    for a, b in zip(weights, info.model.get_weights()):
        np.testing.assert_array_equal(a, b)
