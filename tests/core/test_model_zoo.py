"""The models people actually upload, each saved to a file and loaded through the same loader the
Home page uses (``models.load_user_model``), then explained with every registered method: each
method gives a finite map of the input's size, or a refusal that names the reason (and, for LRP,
the layer); never an unhandled exception."""

from __future__ import annotations

import os
import re

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from vizcore import models
from vizcore.explain import REGISTRY, explain

FAST = {"smoothgrad": {"n": 4}, "integrated_gradients": {"steps": 4},
        "score_cam": {"batch_size": 256}, "occlusion": {"stride": 16}}


def _seq_cnn(keras, input_layer: bool, shape=(28, 28, 1), classes=4):
    from keras import layers

    body = [layers.Conv2D(6, 3, activation="relu", name="conv_a"),
            layers.MaxPooling2D(name="pool"),
            layers.Conv2D(8, 3, activation="relu", name="features"),
            layers.GlobalAveragePooling2D(name="gap"),
            layers.Dense(classes, activation="softmax", name="probs")]
    if input_layer:
        return keras.Sequential([keras.Input(shape), *body])
    model = keras.Sequential(body)
    model.build((None, *shape))
    return model


def _transfer(keras, functional: bool):
    """The transfer shape: a Sequential over a nested MobileNetV2, and a functional twin over a
    nested VGG16 base called with ``training=False`` as the Keras guide does."""
    from keras import layers

    if not functional:
        base = keras.applications.MobileNetV2(include_top=False, weights=None,
                                              input_shape=(48, 48, 3), alpha=0.35)
        return keras.Sequential([base, layers.GlobalAveragePooling2D(name="pool"),
                                 layers.Dense(5, activation="softmax", name="head")])
    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(64, 64, 3))
    inp = keras.Input((64, 64, 3))
    x = base(inp, training=False)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(0.2)(x)
    return keras.Model(inp, layers.Dense(5, activation="softmax", name="head")(x))


def _head_variant(keras, kind: str):
    """Functional CNNs ending in logits, Dense + Softmax layer, Dense + Activation('softmax')."""
    from keras import layers

    inp = keras.Input((20, 28, 3))  # non-square
    x = layers.Rescaling(1 / 255.0, name="rescale")(inp) if kind == "rescaling" else inp
    x = layers.Conv2D(6, 3, padding="same", activation="relu", name="c1")(x)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.Conv2D(8, 3, padding="same", name="c2")(x)
    x = layers.ReLU(name="r2")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    if kind == "logits":
        out = layers.Dense(3, name="logits")(x)
    elif kind == "softmax_layer":
        out = layers.Softmax(name="softmax")(layers.Dense(3, name="logits")(x))
    elif kind == "activation_softmax":
        out = layers.Activation("softmax", name="act")(layers.Dense(3, name="logits")(x))
    else:
        out = layers.Dense(3, activation="softmax", name="probs")(x)
    return keras.Model(inp, out)


def _flexible(keras):
    from keras import layers

    inp = keras.Input((None, None, 3))
    x = layers.Conv2D(6, 3, activation="relu", name="c1")(inp)
    x = layers.Conv2D(8, 3, activation="relu", name="c2")(x)
    x = layers.GlobalMaxPooling2D(name="gmp")(x)
    return keras.Model(inp, layers.Dense(3, activation="softmax")(x))


def _app(keras, name: str):
    keras.utils.set_random_seed(0)
    size = {"DenseNet121": (32, 32, 3)}.get(name, (32, 40, 3))
    return getattr(keras.applications, name)(weights=None, input_shape=size, classes=4)


CASES = {
    "sequential_input.keras": lambda k: _seq_cnn(k, True),
    "sequential_noinput.keras": lambda k: _seq_cnn(k, False),
    "sequential_input.h5": lambda k: _seq_cnn(k, True, (24, 32, 3), 3),
    "sequential_noinput.h5": lambda k: _seq_cnn(k, False),
    "transfer_sequential.keras": lambda k: _transfer(k, False),
    "transfer_functional.keras": lambda k: _transfer(k, True),
    "logits.keras": lambda k: _head_variant(k, "logits"),
    "softmax_layer.keras": lambda k: _head_variant(k, "softmax_layer"),
    "activation_softmax.h5": lambda k: _head_variant(k, "activation_softmax"),
    "rescaling.keras": lambda k: _head_variant(k, "rescaling"),
    "flexible.keras": _flexible,
    "MobileNetV2.keras": lambda k: _app(k, "MobileNetV2"),
    "ResNet50.keras": lambda k: _app(k, "ResNet50"),
    "DenseNet121.keras": lambda k: _app(k, "DenseNet121"),
    "EfficientNetB0.keras": lambda k: _app(k, "EfficientNetB0"),
    "VGG16.keras": lambda k: _app(k, "VGG16"),
}

_LOADED: dict[str, tuple[models.ModelInfo, object]] = {}
_APPS = ("MobileNetV2", "ResNet50", "DenseNet121", "EfficientNetB0", "VGG16")


def _load(case: str, tmp_path_factory) -> tuple[models.ModelInfo, object]:
    """Build the case's model, save it as the user would, load it through the real loader
    (cached; at most one keras.applications model is kept in memory)."""
    if case not in _LOADED:
        import keras

        if case.startswith(_APPS):
            for k in [k for k in _LOADED if k.startswith(_APPS)]:
                del _LOADED[k]
        keras.utils.set_random_seed(0)
        model = CASES[case](keras)
        path = tmp_path_factory.mktemp("zoo") / case
        model.save(path)
        size = (36, 30) if case.startswith("flexible") else None
        info = models.load_user_model(path.read_bytes(), "model" + path.suffix, input_size=size)
        _LOADED[case] = (info, path)
    return _LOADED[case]


def _uploaded(case: str, tmp_path_factory) -> models.ModelInfo:
    return _load(case, tmp_path_factory)[0]


@pytest.mark.parametrize("case", [c for c in CASES if not c.startswith(_APPS)])
def test_every_method_runs_or_refuses_clearly(case, tmp_path_factory):
    check_every_method(_uploaded(case, tmp_path_factory))


def check_every_method(info: models.ModelInfo) -> tuple[list[str], dict[str, str]]:
    """Every registry method on ``info``: a finite map of the input's size, or a clear refusal
    (LRP's naming a layer of the model); the gradient and CAM families always run."""
    h, w, _ = info.input_shape
    rng = np.random.default_rng(0)
    x = info.preprocess(rng.integers(0, 256, info.input_shape, dtype=np.uint8))
    layer_names = set(info.graph.layers())
    ran, refused = [], {}
    for key, spec in REGISTRY.items():
        ok, reason = spec.applies_to(info)
        if not ok:
            assert len(reason) > 30, (key, reason)
            if spec.family == "lrp":
                named = set(re.findall(r"'([^']+)'", reason))
                assert named & layer_names, f"{key} refusal names no layer: {reason}"
            refused[key] = reason
            continue
        exp = explain(info, x, key, **FAST.get(key, {}))
        assert exp.heatmap.shape == (h, w), (key, exp.heatmap.shape)
        assert np.isfinite(exp.heatmap).all() and exp.heatmap.min() >= 0
        assert exp.heatmap.max() <= 1
        if exp.signed is not None:
            assert np.isfinite(exp.signed).all(), key
        ran.append(key)
    # every model here is a CNN: the gradient and CAM families always run
    for key in ("saliency", "gradcam", "gradcam_plus_plus", "layercam", "guided_gradcam",
                "score_cam", "occlusion"):
        assert key in ran, (key, refused.get(key))
    return ran, refused


def test_sequential_upload_reads_its_own_graph(tmp_path_factory):
    """A loaded Sequential's layers used to answer from a stale graph: Grad-CAM, Layer-CAM and
    Grad-CAM++ crashed, LRP refused a chain as 'branching'. Now the model is one flat graph."""
    info = _uploaded("sequential_input.keras", tmp_path_factory)
    assert info.graph.is_chain()
    assert info.cam_layer() == "features" and info.graph.cam_head() == ("features", "probs")
    x = info.preprocess(np.full(info.input_shape, 128, np.uint8))
    for key in ("gradcam", "gradcam_plus_plus", "layercam", "guided_gradcam", "lrp_epsilon"):
        assert explain(info, x, key).heatmap.shape == info.input_shape[:2]
    # the map equals the one of the same model built in memory (same weights)
    import keras

    twin = keras.Model(info.model.inputs, info.model.outputs)
    mem = models.ModelInfo("twin", "twin", twin, "0..1", info.class_names)
    a = explain(info, x, "gradcam").heatmap
    b = explain(mem, x, "gradcam").heatmap
    np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize(("case", "convs", "last", "block_end", "cam", "inner", "scaling"), [
    ("transfer_sequential.keras", 52, "Conv_1", "out_relu", "out_relu", "block_13_expand_relu",
     "-1..1"),
    ("transfer_functional.keras", 13, "block5_conv3", "block5_conv3", "block5_pool",
     "block3_conv2", "caffe"),
])
def test_transfer_model_reaches_the_nested_base(case, convs, last, block_end, cam, inner,
                                                scaling, tmp_path_factory):
    info = _uploaded(case, tmp_path_factory)
    assert len(info.conv_layers()) == convs and info.conv_layers()[-1] == last  # inlined
    assert inner in info.cam_layers()  # the layer picker lists the nested layers
    assert info.scaling == scaling  # guessed from the nested base's name
    assert info.card["nested models (their layers are shown inline)"]
    x = info.preprocess(np.full(info.input_shape, 100, np.uint8))
    assert explain(info, x, "gradcam").layer == block_end
    assert explain(info, x, "cam").layer == cam
    assert explain(info, x, "gradcam", layer=inner).layer == inner
    # same predictions as Keras's own nested model
    import keras

    raw = keras.saving.load_model(_load(case, tmp_path_factory)[1], compile=False)
    np.testing.assert_allclose(info.model(x[None]).numpy(), raw(x[None]).numpy(), rtol=1e-4,
                               atol=1e-5)


@pytest.mark.parametrize("case", ["softmax_layer.keras", "activation_softmax.h5", "logits.keras"])
def test_cam_applies_to_every_head_shape(case, tmp_path_factory):
    info = _uploaded(case, tmp_path_factory)
    ok, reason = REGISTRY["cam"].applies_to(info)
    assert ok, reason
    assert info.outputs_probabilities is (case != "logits.keras")
    x = info.preprocess(np.full(info.input_shape, 90, np.uint8))
    cam = explain(info, x, "cam")
    # CAM on a GAP model equals Grad-CAM on the same layer (Selvaraju et al. 2017, sec. 3)
    grad = explain(info, x, "gradcam", layer=cam.layer)
    np.testing.assert_allclose(cam.heatmap, grad.heatmap, atol=1e-4)


def test_flexible_input_gets_a_size(tmp_path_factory):
    info = _uploaded("flexible.keras", tmp_path_factory)
    assert info.input_shape == (36, 30, 3) and "any size" in info.card["input size"]
    import keras

    path = tmp_path_factory.mktemp("flex") / "f.keras"
    _flexible(keras).save(path)
    default = models.load_user_model(path.read_bytes(), "f.keras")
    assert default.input_shape[:2] == models.DEFAULT_FLEXIBLE_SIZE


def test_rescaling_model_guesses_raw_pixels(tmp_path_factory):
    assert _uploaded("rescaling.keras", tmp_path_factory).scaling == "none"


def test_same_file_name_different_models_get_different_keys(tmp_path):
    import keras

    keys = set()
    for seed in (1, 2):
        keras.utils.set_random_seed(seed)
        path = tmp_path / f"{seed}" / "model.keras"
        path.parent.mkdir()
        _seq_cnn(keras, True).save(path)
        keys.add(models.load_user_model(path.read_bytes(), "model.keras").key)
    assert len(keys) == 2


def test_class_name_count_must_match(tmp_path):
    import keras

    path = tmp_path / "m.keras"
    _seq_cnn(keras, True).save(path)
    with pytest.raises(models.ModelLoadError, match="3 class names, but the model has 4"):
        models.load_user_model(path.read_bytes(), "m.keras", class_names=["a", "b", "c"])
    assert models.parse_class_names(b'["x", "y"]', "n.json") == ["x", "y"]
    assert models.parse_class_names(b'{"1": ["n1", "dog"], "0": ["n0", "cat"]}', "n.json") \
        == ["cat", "dog"]
    assert models.parse_class_names("a\n\n b \n", "n.txt") == ["a", "b"]


def test_dead_network_gives_a_blank_map_not_amplified_noise(tmp_path_factory):
    """A random MobileNetV2 without data-fitted batch-norm statistics has gradients of about
    1e-12: min-max scaling used to turn them into a confident-looking map."""
    import keras

    keras.utils.set_random_seed(0)
    base = keras.applications.MobileNetV2(include_top=False, weights=None,
                                          input_shape=(32, 32, 3), alpha=0.35)
    model = keras.Sequential([base, keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(3, activation="softmax")])
    info = models.ModelInfo("dead", "dead", model, "-1..1", ["a", "b", "c"])
    x = info.preprocess(np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    for key in ("saliency", "gradcam"):
        exp = explain(info, x, key)
        assert exp.stats["peak"] < 1e-9 and exp.stats["blank"] and exp.heatmap.max() == 0
    # a live network's map is kept
    live = explain(_uploaded("sequential_input.keras", tmp_path_factory), np.full((28, 28, 1), 0.5,
                                                                      np.float32), "saliency")
    assert not live.stats.get("blank") and live.heatmap.max() == 1
