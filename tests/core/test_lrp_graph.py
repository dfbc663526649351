"""LRP over real architectures: propagation over the graph, conservation, bias absorption.

The conservation check ``map_sum + bias_absorbed + epsilon_absorbed = logit`` does not hold by
construction: only the linear steps record what their bias and stabiliser took (each from its
own term), so every routing step (Add, Concatenate, padding, pooling, reshapes, the residual and
dense connections summed over readers) must hand on exactly what it got, the gradient-trick
transposes must match the forward maps, the folded batch norms must match the model, and the
score must be the model's own logit (checked against the engine's separate forward pass). The
tolerance is 1% of |logit| while the map and the biases each hold many times the logit in these
random networks. The bias part is checked independently against the gradient identity of a
piecewise-linear network, ``f(x) = x . df/dx + sum_b b . df/db``.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import assert_weights_equal, weights_snapshot
from vizcore.explain import explain, get_engine
from vizcore.explain.lrp import (
    PRESETS,
    RULES,
    LrpMethod,
    Preset,
    build_plan,
    compiled_pass,
    describe_stats,
    get_preset,
    get_rule,
    lrp_applies,
    propagate,
)

NAMES = [f"class {i}" for i in range(5)]


def _realistic(model, seed: int = 0, shift: float = 0.1):
    """Random weights made lively: random biases, BN scale/shift, and BN statistics fitted to
    random images in one training-mode pass (momentum 0), so activations neither die nor
    explode through 50+ layers and the biases have something to absorb."""
    rng = np.random.RandomState(seed)
    bns = [lyr for lyr in model.layers if type(lyr).__name__ == "BatchNormalization"]
    for lyr in model.layers:
        if getattr(lyr, "use_bias", False) and getattr(lyr, "bias", None) is not None:
            lyr.bias.assign(rng.normal(0, shift, tuple(lyr.bias.shape)).astype(np.float32))
    for lyr in bns:
        c = lyr.gamma.shape[0]
        lyr.gamma.assign(rng.uniform(0.6, 1.4, c).astype(np.float32))
        lyr.beta.assign(rng.normal(0, shift, c).astype(np.float32))
        lyr.momentum = 0.0
    xs = rng.uniform(-1, 1, (16, *model.inputs[0].shape[1:])).astype(np.float32)
    model(xs, training=True)
    for lyr in bns:
        lyr.momentum = 0.99
    return model


def _app(name: str):
    import keras

    from vizcore.models import ModelInfo

    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, name)(weights=None, input_shape=(32, 32, 3), classes=5)
    return ModelInfo(name, name, _realistic(model), "-1..1", NAMES)


def make_info(model, key: str, scaling: str = "-1..1"):
    from vizcore.models import ModelInfo

    return ModelInfo(key, key, model, scaling, NAMES[: model.outputs[0].shape[-1]])


def _image(shape, seed: int = 1, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    return np.random.RandomState(seed).uniform(low, high, shape).astype(np.float32)


@pytest.fixture(scope="module")
def mobilenet():
    return _app("MobileNetV2")


@pytest.fixture(scope="module")
def resnet():
    return _app("ResNet50")


@pytest.fixture(scope="module")
def densenet():
    return _app("DenseNet121")


@pytest.fixture(scope="module")
def residual_toy():
    """Pure ReLU: conv-BN-relu, a residual Add, a Concatenate of two branches and their input,
    an unfolded BN, an Average of a tensor and its ReLU, max and average pooling, GAP, dropout,
    dense head with softmax."""
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(3)
    inp = keras.Input((16, 16, 3))
    x = L.Conv2D(8, 3, padding="same", name="c1")(inp)
    x = L.BatchNormalization(name="bn1")(x)
    x = L.ReLU(name="r1")(x)
    y = L.Conv2D(8, 3, padding="same", name="c2")(x)
    y = L.BatchNormalization(name="bn2")(y)
    x = L.Activation("relu", name="r2")(L.Add(name="add")([x, y]))
    a = L.Conv2D(4, 1, activation="relu", name="branch_a")(x)
    b = L.Conv2D(6, 3, padding="same", activation="relu", name="branch_b")(x)
    x = L.Concatenate(name="cat")([a, b, x])
    x = L.ReLU(name="r3")(L.BatchNormalization(name="bn_cat")(x))
    x = L.MaxPooling2D(2, name="maxpool")(x)
    x = L.Conv2D(8, 3, padding="same", name="c3")(x)
    x = L.Average(name="avg")([x, L.ReLU(name="r_avg")(x)])
    x = L.AveragePooling2D(2, name="avgpool")(x)
    x = L.Activation("relu", name="r4")(x)
    x = L.Dropout(0.3)(L.GlobalAveragePooling2D(name="gap")(x))
    x = L.Dense(16, activation="relu", name="fc")(x)
    out = L.Dense(5, activation="softmax", name="predictions")(x)
    return make_info(_realistic(keras.Model(inp, out), 3), "residual_toy")


@pytest.fixture(scope="module")
def separable_toy():
    """Pure ReLU: strided conv, depthwise convs (multiplier 2, folded BN; strided 'valid' after
    asymmetric padding), separable convs (dilated with a folded BN; multiplier 2 with bias),
    global max pooling and a logits output."""
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(4)
    inp = keras.Input((17, 17, 3))
    x = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem")(inp)
    x = L.ReLU()(L.BatchNormalization(name="stem_bn")(x))
    x = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", use_bias=False, name="dw1")(x)
    x = L.ReLU()(L.BatchNormalization(name="dw1_bn")(x))
    x = L.ZeroPadding2D(((1, 0), (0, 1)), name="pad")(x)
    x = L.DepthwiseConv2D(3, strides=2, activation="relu", name="dw2")(x)
    x = L.SeparableConv2D(12, 3, padding="same", dilation_rate=2, use_bias=False, name="sep1")(x)
    x = L.ReLU()(L.BatchNormalization(name="sep1_bn")(x))
    x = L.SeparableConv2D(8, 3, depth_multiplier=2, padding="same", activation="relu",
                          name="sep2")(x)
    x = L.GlobalMaxPooling2D(name="gmp")(x)
    out = L.Dense(5, name="logits")(x)
    return make_info(_realistic(keras.Model(inp, out), 4), "separable_toy")


def _pixels_tail(inp, x):
    import keras
    from keras import layers as L

    x = L.Conv2D(6, 3, activation="relu", name="conv")(x)
    x = L.MaxPooling2D(2, name="pool")(x)
    x = L.Dense(8, activation="relu", name="fc")(L.Flatten(name="flat")(x))
    return keras.Model(inp, L.Dense(5, activation="softmax", name="predictions")(x))


@pytest.fixture(scope="module")
def rescaling_pair():
    """The same network with its scaling inside (raw 0..255 pixels, Rescaling to -1..1) and
    outside (fed -1..1 pixels)."""
    import keras

    keras.utils.set_random_seed(5)
    inp = keras.Input((12, 12, 3))
    inside = _realistic(_pixels_tail(inp, keras.layers.Rescaling(1 / 127.5, -1.0)(inp)), 5)
    inp2 = keras.Input((12, 12, 3))
    outside = _pixels_tail(inp2, inp2)
    outside.set_weights(inside.get_weights())
    return make_info(inside, "rescaling_inside", "none"), make_info(outside, "rescaling_outside")


def _lrp0_reference(info, x: np.ndarray, target: int) -> tuple[float, np.ndarray, float]:
    """(logit, df/dx, sum_b b df/db) by autodiff, biases including each batch norm's effective
    shift beta - mean * gamma / sqrt(var + eps) (df/d shift = df/d beta)."""
    import tensorflow as tf

    head = info.graph.head()
    tap = info.graph.tap([], [head.pre])
    variables, coefs = [], []
    for lyr in info.model.layers:
        if type(lyr).__name__ == "BatchNormalization":
            g = lyr.gamma.numpy() / np.sqrt(lyr.moving_variance.numpy() + lyr.epsilon)
            variables.append(lyr.beta)
            coefs.append(lyr.beta.numpy() - lyr.moving_mean.numpy() * g)
        elif getattr(lyr, "use_bias", False):
            variables.append(lyr.bias)
            coefs.append(lyr.bias.numpy())
    xt = tf.constant(x[None])
    with tf.GradientTape() as tape:
        tape.watch(xt)
        logit = head.to_logits(tap(xt, training=False))[0, target]
    grads = tape.gradient(logit, [xt, *variables])
    bias = sum(float((c.astype(np.float64) * g.numpy()).sum()) for c, g in zip(coefs, grads[1:]))
    return float(logit), grads[0].numpy()[0], bias


def _assert_conserves(info, x, preset="epsilon", epsilon=1e-6, first_rule="zb", nontrivial=True):
    engine = get_engine(info)
    res = propagate(engine, x, -1, preset, epsilon, first_rule)
    s = res.stats
    logit = float(engine.logits_fn()(x[None]).numpy()[0][res.target])
    assert abs(logit) > 0.05, logit  # a fair scale for the 1% tolerance
    assert s["score"] == pytest.approx(logit, rel=1e-4, abs=1e-5)
    assert np.isfinite(res.relevance).all()
    total = s["map_sum"] + s["bias_absorbed"] + s["epsilon_absorbed"]
    assert abs(total - logit) <= 0.01 * abs(logit), (s, logit)
    assert s["map_sum"] == pytest.approx(float(res.relevance.sum(dtype=np.float64)))
    assert s["held"] == pytest.approx(s["map_sum"] / s["score"])
    if nontrivial:  # the map and the biases both hold a real share of the score
        assert abs(s["map_sum"]) > 0.05 * abs(logit) and abs(s["bias_absorbed"]) > 0.05 * abs(logit)
    return res


# --------------------------------------------------------------------------- applications


@pytest.mark.parametrize("name", ["mobilenet", "resnet", "densenet"])
def test_epsilon_conserves_on_applications(name, request):
    info = request.getfixturevalue(name)
    assert lrp_applies(info) == (True, "")
    x = _image((32, 32, 3))
    _assert_conserves(info, x, epsilon=1e-6)
    res = _assert_conserves(info, x, epsilon=0.1, nontrivial=False)
    assert abs(res.stats["epsilon_absorbed"]) > 0.01 * abs(res.stats["score"])


@pytest.mark.parametrize("name", ["mobilenet", "resnet", "densenet"])
def test_zplus_map_is_non_negative_on_applications(name, request):
    info = request.getfixturevalue(name)
    x = _image((32, 32, 3))
    res = propagate(get_engine(info), x, -1, "zplus")
    assert res.stats["score"] > 0  # the map has the sign of the explained logit
    r = res.relevance
    assert np.isfinite(r).all() and r.max() > 0
    assert r.min() >= -1e-6 * r.max()
    assert res.stats["bias_absorbed"] == 0.0
    total = res.stats["map_sum"] + res.stats["epsilon_absorbed"]
    assert total == pytest.approx(res.stats["score"], rel=1e-3)


def test_resnet_lrp0_bias_absorption_matches_the_gradient_identity(resnet):
    x = _image((32, 32, 3))
    res = propagate(get_engine(resnet), x, -1, "epsilon", 1e-9)
    logit, grad, bias = _lrp0_reference(resnet, x, res.target)
    x_grad = float((x.astype(np.float64) * grad).sum())
    assert x_grad + bias == pytest.approx(logit, rel=1e-3)  # the reference itself is right
    assert abs(bias) > 0.05 * abs(logit)
    assert abs(res.stats["bias_absorbed"] - bias) <= 0.01 * abs(logit)
    assert abs(res.stats["map_sum"] - x_grad) <= 0.01 * abs(logit)
    assert abs(res.stats["epsilon_absorbed"]) <= 0.001 * abs(logit)


def test_efficientnet_is_refused_naming_a_layer():
    import keras

    from vizcore.models import ModelInfo

    keras.utils.set_random_seed(0)
    model = keras.applications.EfficientNetB0(weights=None, input_shape=(32, 32, 3), classes=5)
    info = ModelInfo("effnet", "effnet", model, "none", NAMES)
    ok, reason = lrp_applies(info)
    assert not ok
    assert "LRP does not support layer '" in reason
    assert "(Activation with activation 'silu')" in reason or "(Multiply)" in reason
    assert "more layers are unsupported" in reason
    with pytest.raises(ValueError, match="does not support layer"):
        explain(info, _image((32, 32, 3), low=0, high=255), "lrp_epsilon")


# --------------------------------------------------------------------------- toy graphs


@pytest.mark.parametrize("toy", ["residual_toy", "separable_toy"])
def test_toy_graphs_conserve_and_lrp0_is_gradient_times_input(toy, request):
    info = request.getfixturevalue(toy)
    x = _image(info.input_shape, seed=2)
    before = weights_snapshot(info.model)
    _assert_conserves(info, x, epsilon=1e-6)
    _assert_conserves(info, x, epsilon=0.5, nontrivial=False)
    res = propagate(get_engine(info), x, -1, "epsilon", 1e-9)
    logit, grad, bias = _lrp0_reference(info, x, res.target)
    # in a ReLU network LRP-0 is gradient x input pixel by pixel: checks every transpose
    np.testing.assert_allclose(res.relevance, x * grad, rtol=1e-3,
                               atol=1e-4 * np.abs(x * grad).max())
    assert abs(res.stats["bias_absorbed"] - bias) <= 0.01 * abs(logit)
    assert_weights_equal(info.model, before)


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("toy", ["residual_toy", "separable_toy"])
def test_every_preset_accounts_for_the_whole_score(toy, preset, request):
    info = request.getfixturevalue(toy)
    x = _image(info.input_shape, seed=2)
    res = propagate(get_engine(info), x, -1, preset, 0.25)
    s = res.stats
    assert np.isfinite(res.relevance).all()
    total = s["map_sum"] + s["bias_absorbed"] + s["epsilon_absorbed"]
    assert abs(total - s["score"]) <= 0.01 * abs(s["score"]), s
    if preset in ("zplus", "ab10") and s["score"] > 0:
        assert res.relevance.min() >= -1e-6 * res.relevance.max()
    recorded = ({"c1", "c2", "add", "bn_cat", "avg", "avgpool", "gap", "predictions"}
                if toy == "residual_toy" else {"stem", "dw1", "dw2", "sep1", "sep2", "logits"})
    assert recorded <= set(res.by_layer)


def test_batch_norms_are_folded_only_into_their_linear_conv(residual_toy, separable_toy):
    plan = build_plan(residual_toy.graph)
    assert {k: v.name for k, v in plan.folded.items()} == {"c1": "bn1", "c2": "bn2"}
    assert {s.name for s in plan.steps if s.op == "mix"} == {"add", "bn_cat", "avg", "avgpool",
                                                             "gap"}
    assert [s.layer.name for s in plan.steps if s.first] == ["c1"]
    plan = build_plan(separable_toy.graph)
    assert {k: v.name for k, v in plan.folded.items()} == {
        "stem": "stem_bn", "dw1": "dw1_bn", "sep1": "sep1_bn"}


def test_scaling_inside_the_model_gives_the_same_maps(rescaling_pair):
    inside, outside = rescaling_pair
    raw = _image((12, 12, 3), seed=3, low=0, high=255)
    x = raw / 127.5 - 1.0
    _assert_conserves(inside, raw, epsilon=1e-6)
    for preset, eps in [("epsilon", 1e-6), ("zplus", 0.0), ("ab21", 1e-6), ("composite", 0.25)]:
        a = propagate(get_engine(inside), raw, -1, preset, eps)
        b = propagate(get_engine(outside), x, -1, preset, eps)
        assert a.target == b.target
        np.testing.assert_allclose(a.relevance, b.relevance, rtol=1e-3,
                                   atol=1e-5 * np.abs(b.relevance).max())
    # z^B used the pixel bounds mapped through the Rescaling: not the z+ map
    zplus = propagate(get_engine(inside), raw, -1, "composite", 0.25, "zplus").relevance
    assert not np.allclose(a.relevance, zplus, atol=1e-3 * np.abs(zplus).max())


def test_normalization_in_front_conserves():
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(6)
    inp = keras.Input((12, 12, 3))
    norm = L.Normalization(mean=[120.0, 110.0, 100.0], variance=[3600.0, 3000.0, 4000.0])
    info = make_info(_realistic(_pixels_tail(inp, norm(inp)), 6), "normalised", "none")
    raw = _image((12, 12, 3), seed=4, low=0, high=255)
    _assert_conserves(info, raw, epsilon=1e-6, nontrivial=False)
    for preset in PRESETS:
        assert np.isfinite(propagate(get_engine(info), raw, -1, preset, 0.25).relevance).all()


def test_zb_falls_back_to_zplus_when_the_first_conv_is_not_on_the_pixels():
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(7)
    inp = keras.Input((10, 10, 3))
    x = L.BatchNormalization(name="bn_in")(inp)
    x = L.Conv2D(4, 3, activation="relu", name="conv")(x)
    out = L.Dense(3, activation="softmax")(L.GlobalAveragePooling2D()(x))
    info = make_info(_realistic(keras.Model(inp, out), 7), "bn_first")
    plan = build_plan(info.graph)
    (first,) = [s for s in plan.steps if s.first]
    assert first.name == "conv" and first.bounds_path is None
    x = _image((10, 10, 3), seed=5)
    engine = get_engine(info)
    zb = propagate(engine, x, -1, "composite", 0.25, "zb").relevance
    zp = propagate(engine, x, -1, "composite", 0.25, "zplus").relevance
    np.testing.assert_allclose(zb, zp, rtol=1e-5, atol=1e-8)


def test_a_nested_transfer_model_is_propagated_through_its_inlined_layers():
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(9)
    inp = keras.Input((12, 12, 3))
    x = L.Conv2D(6, 3, use_bias=False, name="base_conv")(inp)
    x = L.ReLU(6.0, name="base_relu6")(L.BatchNormalization(name="base_bn")(x))
    base = keras.Model(inp, L.Add(name="base_add")([x, L.Conv2D(6, 1, name="base_proj")(x)]))
    model = keras.Sequential([keras.Input((12, 12, 3)), base, L.GlobalAveragePooling2D(),
                              L.Dense(5, activation="softmax")])
    info = make_info(_realistic(model, 9), "nested")
    assert "base_bn" in info.graph and build_plan(info.graph).folded["base_conv"].name == "base_bn"
    _assert_conserves(info, _image((12, 12, 3), seed=7), epsilon=1e-6, nontrivial=False)


@pytest.mark.parametrize("head", ["softmax_layer", "softmax_activation", "logits"])
def test_the_explained_score_is_the_logit(head):
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(8)
    inp = keras.Input((8, 8, 1))
    x = L.Flatten()(L.Conv2D(3, 3, activation="relu")(inp))
    z = L.Dense(4, name="dense_logits")(x)
    out = {"softmax_layer": L.Softmax(), "softmax_activation": L.Activation("softmax"),
           "logits": L.Activation("linear")}[head](z)
    info = make_info(_realistic(keras.Model(inp, out), 8), head)
    x = _image((8, 8, 1), seed=6, low=0, high=1)
    engine = get_engine(info)
    logits = engine.logits_fn()(x[None]).numpy()[0]
    for target in range(4):
        res = propagate(engine, x, target, "epsilon", 1e-6)
        assert res.stats["score"] == pytest.approx(float(logits[target]), rel=1e-5, abs=1e-6)
        np.testing.assert_allclose(res.logits, logits, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- refusals, API


def _one_layer_model(layer, shape=(8, 8, 4)):
    import keras
    from keras import layers as L

    inp = keras.Input(shape)
    x = layer(inp)
    return keras.Model(inp, L.Dense(3, activation="softmax")(L.Flatten()(x)))


@pytest.mark.parametrize("layer, expected", [
    ("grouped", "'grouped' (Conv2D): it is a grouped convolution (groups=2)"),
    ("swish", "'swish' (Conv2D with activation 'silu')"),
    ("leaky", "'leaky' (LeakyReLU)"),
    ("tanh", "'tanh' (Activation with activation 'tanh')"),
])
def test_unsupported_layers_are_refused_by_name(layer, expected):
    from keras import layers as L

    lyr = {"grouped": L.Conv2D(4, 3, groups=2, name="grouped"),
           "swish": L.Conv2D(4, 3, activation="swish", name="swish"),
           "leaky": L.LeakyReLU(name="leaky"),
           "tanh": L.Activation("tanh", name="tanh")}[layer]
    info = make_info(_one_layer_model(lyr), layer)
    ok, reason = lrp_applies(info)
    assert not ok and expected in reason, reason
    with pytest.raises(ValueError, match="LRP does not support layer"):
        explain(info, _image((8, 8, 4), low=0, high=1), "lrp_zplus")


def test_multiply_is_refused_by_name():
    import keras
    from keras import layers as L

    inp = keras.Input((6, 6, 2))
    x = L.Multiply(name="gate")([inp, L.Conv2D(2, 1, activation="relu")(inp)])
    info = make_info(keras.Model(inp, L.Dense(3)(L.Flatten()(x))), "gated")
    ok, reason = lrp_applies(info)
    assert not ok and "layer 'gate' (Multiply)" in reason


def test_unknown_preset_or_rule_is_a_clear_error(residual_toy):
    engine = get_engine(residual_toy)
    x = _image(residual_toy.input_shape)
    with pytest.raises(ValueError, match="unknown LRP preset 'zeta'.*composite"):
        propagate(engine, x, -1, "zeta")
    with pytest.raises(ValueError, match="unknown LRP rule 'zz'.*zplus"):
        propagate(engine, x, -1, "composite", 0.25, "zz")
    assert set(RULES) >= {"epsilon", "zplus", "ab10", "ab21", "zb"}


def test_unknown_rule_names_are_errors_listing_the_valid_ones():
    with pytest.raises(ValueError) as err:
        get_rule("z_plus")
    msg = str(err.value)
    assert msg.startswith("unknown LRP rule 'z_plus'; choose one of ")
    assert all(repr(name) in msg for name in RULES)
    assert get_rule("zb") is RULES["zb"]
    # a preset row naming an unknown rule fails when it is written, not when it runs
    with pytest.raises(ValueError, match=r"unknown LRP rule 'epsilom'; choose one of \['ab10'"):
        Preset(None, "zplus", "epsilom", "zplus")


def test_unknown_preset_names_are_errors_never_a_default():
    with pytest.raises(ValueError) as err:
        get_preset("Composite")
    msg = str(err.value)
    assert msg.startswith("unknown LRP preset 'Composite'; choose one of ")
    assert all(repr(name) in msg for name in PRESETS)
    assert get_preset("composite") is PRESETS["composite"]
    # a method file with a mistyped preset fails on import, before anything runs
    with pytest.raises(ValueError, match="unknown LRP preset 'ab12'.*'ab21'"):
        type("Mistyped", (LrpMethod,), {"preset": "ab12"})


def test_each_lrp_method_runs_its_own_preset(residual_toy):
    from vizcore.explain import REGISTRY

    lrp = {k: m for k, m in REGISTRY.items() if m.family == "lrp"}
    assert {k: m.preset for k, m in lrp.items()} == {
        "lrp_epsilon": "epsilon", "lrp_alphabeta_21": "ab21", "lrp_alphabeta_10": "ab10",
        "lrp_zplus": "zplus", "lrp_composite": "composite"}
    x = _image(residual_toy.input_shape, seed=4)
    engine = get_engine(residual_toy)
    for key, m in lrp.items():
        kw = {"epsilon": 0.25} if key == "lrp_composite" else {}
        e = explain(residual_toy, x, key, target=2, **kw)
        ref = propagate(engine, x, 2, m.preset, kw.get("epsilon", 1e-6))
        np.testing.assert_array_equal(e.signed, ref.relevance)
        assert e.stats["score"] == ref.stats["score"]


def test_compiled_once_per_preset_and_explain_reports_the_stats(residual_toy):
    x = _image(residual_toy.input_shape)
    engine = get_engine(residual_toy)
    e = explain(residual_toy, x, "lrp_composite")
    explain(residual_toy, x, "lrp_composite", target=(e.target + 1) % 5, epsilon=0.7)
    explain(residual_toy, _image(residual_toy.input_shape, seed=9), "lrp_composite")
    fn, _ = compiled_pass(engine, "composite", "zb")
    assert fn.experimental_get_tracing_count() == 1
    assert {"score", "map_sum", "bias_absorbed", "epsilon_absorbed", "held"} <= set(e.stats)
    line = describe_stats(e.stats)
    assert line.startswith(f"Explained score (logit) {e.stats['score']:.3g}: the map holds")
    assert "biases absorbed" in line
    # the preset table, not a silent default: z+ and epsilon give different maps
    a = propagate(engine, x, -1, "zplus").relevance
    b = propagate(engine, x, -1, "epsilon", 1e-6).relevance
    assert not np.allclose(a, b)
