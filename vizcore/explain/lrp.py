"""Layer-wise relevance propagation (LRP) for plain chains of layers (VGG-like CNNs).

Bach, Binder, Montavon, Klauschen, Mueller, Samek (2015), "On Pixel-Wise Explanations for
Non-Linear Classifier Decisions by Layer-Wise Relevance Propagation", PLoS ONE 10(7):e0130140;
Montavon, Binder, Lapuschkin, Samek, Mueller (2019), "Layer-Wise Relevance Propagation: An
Overview", in Explainable AI, LNCS 11700 (the rules and the composite preset; the z^B rule from
Montavon et al. 2017, "Explaining nonlinear classification decisions with deep Taylor
decomposition", arXiv:1512.02479).

The explained score is the target's logit, which is redistributed layer by layer back to the
pixels. Every rule is implemented with the "gradient trick" of Montavon 2019 (section 10.2.2):
``R_in = a * (W^T (R / z))`` where ``W^T s`` is the gradient of the layer's linear map, so
Conv2D (any stride/padding/dilation) and Dense need no hand-written transposes. The whole pass
runs in one compiled ``tf.function`` per rule preset reading (never changing) the model's weights.

Supported layers: InputLayer, Conv2D, Dense (ReLU or linear activation; softmax on the last),
MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, Flatten, Reshape,
ReLU, Activation (relu/linear), Dropout and BatchNormalization.
"""

from __future__ import annotations

import numpy as np

from vizcore.explain.base import Engine, MethodSpec, Param, Progress, normalize, register

_IDENTITY = {
    "InputLayer",
    "Dropout",
    "SpatialDropout2D",
    "GaussianDropout",
    "GaussianNoise",
    "ActivityRegularization",
    "ReLU",
    "Activation",
}
_WEIGHTED = {"Conv2D", "Dense"}
_POOL_MAX = {"MaxPooling2D", "GlobalMaxPooling2D"}
_POOL_AVG = {"AveragePooling2D", "GlobalAveragePooling2D"}
_RESHAPE = {"Flatten", "Reshape"}
SUPPORTED = (
    _IDENTITY | _WEIGHTED | _POOL_MAX | _POOL_AVG | _RESHAPE | {"BatchNormalization", "Softmax"}
)
_TINY = 1e-9


def _act_name(layer) -> str:
    return getattr(getattr(layer, "activation", None), "__name__", "linear")


def lrp_support(model) -> tuple[bool, str]:
    """Whether LRP here can run on ``model`` (a chain of supported layers), and why not."""
    layers = model.layers
    for i, lyr in enumerate(layers):
        kind = type(lyr).__name__
        if kind not in SUPPORTED:
            return False, (
                f"LRP here supports Conv2D, Dense, pooling, Flatten, ReLU, Dropout and "
                f"BatchNormalization layers; layer '{lyr.name}' is a {kind}."
            )
        if i > 0 and lyr.input is not layers[i - 1].output:
            return False, (
                "LRP here supports plain chains of layers (like VGG); this model has "
                f"branches or merges (at layer '{lyr.name}', e.g. residual "
                "connections)."
            )
        act = _act_name(lyr)
        last = i == len(layers) - 1
        if kind == "Softmax" and not last:
            return False, f"Softmax layer '{lyr.name}' is not the last layer."
        if (
            kind in _WEIGHTED | {"Activation"}
            and act not in ("relu", "linear")
            and not (last and act == "softmax")
        ):
            return False, (
                f"LRP rules assume ReLU networks; layer '{lyr.name}' uses a {act} activation."
            )
        if kind == "ReLU" and (lyr.negative_slope or lyr.max_value is not None):
            return False, f"Layer '{lyr.name}' is a leaky or capped ReLU, which LRP here skips."
        if kind == "Conv2D" and getattr(lyr, "groups", 1) != 1:
            return False, f"Grouped convolutions ('{lyr.name}') are not supported by LRP here."
        if kind == "BatchNormalization" and lyr.axis not in (-1, len(lyr.input.shape) - 1):
            return False, f"BatchNormalization '{lyr.name}' must normalise the last axis."
    return True, ""


def lrp_applies(info) -> tuple[bool, str]:
    """LRP applies to chains of the supported layers."""
    return lrp_support(info.model)


# --------------------------------------------------------------------------- rules (traced)


def _linear(layer, a, w):
    """The layer's linear map of ``a`` with kernel ``w`` and no bias."""
    import tensorflow as tf

    if type(layer).__name__ == "Dense":
        return tf.matmul(a, w)
    return tf.nn.convolution(
        a, w, strides=layer.strides, padding=layer.padding.upper(), dilations=layer.dilation_rate
    )


def _transpose(layer, a, w, s):
    """``W^T s``: the gradient of the linear map at ``a`` with output gradient ``s``."""
    import tensorflow as tf

    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(a)
        z = _linear(layer, a, w)
    return tape.gradient(z, a, output_gradients=s)


def _stab(z, eps):
    import tensorflow as tf

    return z + eps * tf.where(z >= 0, tf.ones_like(z), -tf.ones_like(z))


def _safe_div(r, z):
    import tensorflow as tf

    nz = tf.cast(tf.abs(z) > _TINY, z.dtype)
    return r * nz / (z + (1.0 - nz))


def _rule_epsilon(layer, a, r, eps):
    z = _linear(layer, a, layer.kernel)
    if layer.use_bias:
        z = z + layer.bias
    return a * _transpose(layer, a, layer.kernel, r / _stab(z, eps + _TINY))


def _rule_alphabeta(layer, a, r, alpha: float, beta: float, bias: bool):
    import tensorflow as tf

    w = layer.kernel
    wp, wn = tf.nn.relu(w), tf.minimum(w, 0.0)
    ap, an = tf.nn.relu(a), tf.minimum(a, 0.0)
    zp = _linear(layer, ap, wp) + _linear(layer, an, wn)
    if bias and layer.use_bias:
        zp = zp + tf.nn.relu(layer.bias)
    sp = _safe_div(r, zp)
    out = alpha * (ap * _transpose(layer, ap, wp, sp) + an * _transpose(layer, an, wn, sp))
    if beta:
        zn = _linear(layer, ap, wn) + _linear(layer, an, wp)
        if bias and layer.use_bias:
            zn = zn + tf.minimum(layer.bias, 0.0)
        sn = _safe_div(r, zn)
        out -= beta * (ap * _transpose(layer, ap, wn, sn) + an * _transpose(layer, an, wp, sn))
    return out


def _rule_zb(layer, a, r, lo, hi):
    import tensorflow as tf

    w = layer.kernel
    wp, wn = tf.nn.relu(w), tf.minimum(w, 0.0)
    low, high = lo * tf.ones_like(a), hi * tf.ones_like(a)
    z = _linear(layer, a, w) - _linear(layer, low, wp) - _linear(layer, high, wn)
    s = _safe_div(r, z)
    return (
        a * _transpose(layer, a, w, s)
        - low * _transpose(layer, low, wp, s)
        - high * _transpose(layer, high, wn, s)
    )


def _through(layer, a, r, eps=_TINY):
    """Relevance through a parameter-free layer: winner-take-all for max pooling, the
    z-rule for average pooling, a reshape for Flatten/Reshape, identity otherwise."""
    import tensorflow as tf

    kind = type(layer).__name__
    if kind in _IDENTITY:
        return r
    if kind in _RESHAPE:
        return tf.reshape(r, tf.shape(a))
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(a)
        z = layer(a, training=False)
    if kind in _POOL_MAX:
        return tape.gradient(z, a, output_gradients=r)
    return a * tape.gradient(z, a, output_gradients=r / _stab(z, eps))


def _bn(layer, a, r, eps):
    import tensorflow as tf

    g = tf.math.rsqrt(layer.moving_variance + layer.epsilon)
    if layer.scale:
        g = g * layer.gamma
    b = -layer.moving_mean * g
    if layer.center:
        b = b + layer.beta
    z = g * a
    return z * r / _stab(z + b, eps + _TINY)


# --------------------------------------------------------------------------- presets

PRESETS = {
    "lrp_epsilon": "epsilon",
    "lrp_alphabeta_21": "ab21",
    "lrp_alphabeta_10": "ab10",
    "lrp_zplus": "zplus",
    "lrp_composite": "composite",
}


def _rules(layers, preset: str, first_rule: str) -> list[str | None]:
    """The rule of each layer ("epsilon", "ab21", "ab10", "zplus", "zb") or None."""
    first = next(i for i, lyr in enumerate(layers) if type(lyr).__name__ in _WEIGHTED)
    out: list[str | None] = []
    for i, lyr in enumerate(layers):
        kind = type(lyr).__name__
        if kind not in _WEIGHTED:
            out.append(None)
        elif preset != "composite":
            out.append(preset)
        elif i == first:
            out.append(first_rule)
        else:
            out.append("epsilon" if kind == "Dense" else "zplus")
    return out


def _lrp_fn(engine: Engine, preset: str, first_rule: str):
    """Compiled ``(x (1,H,W,C), cls, eps) -> (relevance (1,H,W,C), logits)``."""

    def build():
        import tensorflow as tf

        layers = engine.model.layers
        rules = _rules(layers, preset, first_rule)
        lo, hi = (tf.constant(v.reshape(1, 1, 1, -1)) for v in engine.input_bounds())
        last = layers[-1]
        last_soft = _act_name(last) == "softmax" or type(last).__name__ == "Softmax"

        @tf.function(
            autograph=False,
            input_signature=[
                engine.spec_batch(),
                tf.TensorSpec([], tf.int32),
                tf.TensorSpec([], tf.float32),
            ],
        )
        def run(x, cls, eps):
            acts = [x]
            a = x
            for i, lyr in enumerate(layers[1:], start=1):
                if i == len(layers) - 1 and last_soft:
                    if type(lyr).__name__ == "Dense":
                        a = tf.matmul(a, lyr.kernel) + (lyr.bias if lyr.use_bias else 0.0)
                    # a Softmax/Activation("softmax") layer: its input are the logits
                elif type(lyr).__name__ != "InputLayer":
                    a = lyr(a, training=False)
                acts.append(a)
            logits = a
            c = tf.where(cls < 0, tf.argmax(logits[0], output_type=tf.int32), cls)
            r = logits * tf.one_hot([c], tf.shape(logits)[-1], dtype=logits.dtype)
            for i in range(len(layers) - 1, 0, -1):
                lyr, a_in, rule = layers[i], acts[i - 1], rules[i]
                kind = type(lyr).__name__
                if kind in _WEIGHTED:
                    if rule == "epsilon":
                        r = _rule_epsilon(lyr, a_in, r, eps)
                    elif rule == "ab21":
                        r = _rule_alphabeta(lyr, a_in, r, 2.0, 1.0, True)
                    elif rule == "ab10":
                        r = _rule_alphabeta(lyr, a_in, r, 1.0, 0.0, True)
                    elif rule == "zplus":
                        r = _rule_alphabeta(lyr, a_in, r, 1.0, 0.0, False)
                    elif rule == "zb":
                        r = _rule_zb(lyr, a_in, r, lo, hi)
                    else:  # "epsilon0"
                        r = _rule_epsilon(lyr, a_in, r, 0.0)
                elif kind == "BatchNormalization":
                    r = _bn(lyr, a_in, r, eps)
                elif kind in ("Softmax",) or (kind == "Activation" and i == len(layers) - 1):
                    pass
                else:
                    r = _through(lyr, a_in, r)
            return r, logits, c

        return run

    return engine.cached(("lrp", preset, first_rule), build)


def relevance(
    engine: Engine,
    x: np.ndarray,
    target: int,
    preset: str = "epsilon",
    epsilon: float = 0.01,
    first_rule: str = "zb",
) -> tuple[np.ndarray, np.ndarray, int]:
    """Input relevance (H, W, C), the logits (K,) and the explained class, for one image."""
    r, logits, c = _lrp_fn(engine, preset, first_rule)(
        x[None], np.int32(target), np.float32(epsilon)
    )
    return r.numpy()[0], logits.numpy()[0], int(c.numpy())


def _make(key: str):
    preset = PRESETS[key]

    def method(
        engine: Engine,
        x: np.ndarray,
        target: int,
        layer=None,
        progress: Progress = None,
        epsilon: float = 1e-6,
        first_rule: str = "zb",
    ):
        r, _, c = relevance(engine, x, target, preset, epsilon, first_rule)
        return normalize(np.maximum(r.sum(axis=-1), 0.0)), r, c

    method.__name__ = key
    method.__doc__ = (
        f"LRP with the {preset} rule preset (see the module docstring for the papers: Bach et "
        "al. 2015, PLoS ONE e0130140; Montavon et al. 2019, LNCS 11700).\n\n"
        "Cost: 1 forward pass and 1 relevance (backward-like) pass, compiled.\n\n"
        "Returns:\n    (heatmap (H, W) = positive part of the channel sum, relevance (H, W, C), "
        "target)."
    )
    return method


def _strip(fn, keep: tuple[str, ...]):
    """A wrapper of ``fn`` that takes only the parameters in ``keep``."""

    def method(engine, x, target, layer=None, progress=None, **params):
        return fn(engine, x, target, layer, progress, **{k: params[k] for k in keep if k in params})

    method.__name__, method.__doc__ = fn.__name__, fn.__doc__
    return method


_EPS = Param(
    "epsilon",
    1e-6,
    "float",
    1e-9,
    10.0,
    log=True,
    help="Stabiliser added to each neuron's total input: larger values absorb weak or "
    "contradictory relevance and give sparser, less noisy maps (default as in "
    "zennit; relevance is conserved only for small values).",
)
_PAPER = (
    "Bach, Binder, Montavon, Klauschen, Mueller, Samek 2015, On Pixel-Wise Explanations "
    "... by Layer-Wise Relevance Propagation, PLoS ONE 10(7):e0130140; Montavon, Binder, "
    "Lapuschkin, Samek, Mueller 2019, Layer-Wise Relevance Propagation: An Overview, "
    "LNCS 11700"
)
_COST = "1 forward + 1 relevance pass"
_LRP_NOTE = " LRP here handles plain chains of layers (like VGG), not residual networks."

register(
    MethodSpec(
        "lrp_epsilon",
        "LRP-epsilon",
        "lrp",
        _PAPER,
        "Splits the class score backwards, layer by layer, in proportion to each input's "
        "contribution, until it reaches the pixels; the relevances add up to the score. Red pixels "
        "speak for the class, blue against. With a small epsilon the map is close to "
        "gradient x input and can be noisy." + _LRP_NOTE,
        _COST,
        _strip(_make("lrp_epsilon"), ("epsilon",)),
        (_EPS,),
        applies=lrp_applies,
        signed=True,
    )
)

register(
    MethodSpec(
        "lrp_alphabeta_21",
        "LRP-alpha2-beta1",
        "lrp",
        _PAPER,
        "Propagates positive contributions with weight 2 and negative ones with weight 1, "
        "so the map "
        "shows both evidence for and against the class. Tends to highlight edges; does not "
        "conserve "
        "the score exactly." + _LRP_NOTE,
        _COST,
        _strip(_make("lrp_alphabeta_21"), ()),
        applies=lrp_applies,
        signed=True,
    )
)

register(
    MethodSpec(
        "lrp_alphabeta_10",
        "LRP-alpha1-beta0",
        "lrp",
        _PAPER,
        "Propagates only positive contributions (biases included), giving clean, all-positive maps "
        "of supporting evidence. Like guided backprop it can be weakly class-discriminative."
        + _LRP_NOTE,
        _COST,
        _strip(_make("lrp_alphabeta_10"), ()),
        applies=lrp_applies,
        signed=True,
    )
)

register(
    MethodSpec(
        "lrp_zplus",
        "LRP-z+",
        "lrp",
        _PAPER + "; z+ rule: Montavon et al. 2017, Deep Taylor decomposition, arXiv:1512.02479",
        "Propagates only positive contributions and ignores biases, so relevance is conserved in "
        "ReLU networks. Clean positive maps, weakly class-discriminative." + _LRP_NOTE,
        _COST,
        _strip(_make("lrp_zplus"), ()),
        applies=lrp_applies,
        signed=True,
    )
)

register(
    MethodSpec(
        "lrp_composite",
        "LRP composite",
        "lrp",
        _PAPER + "; z^B rule: Montavon et al. 2017, arXiv:1512.02479",
        "The recommended mix (Montavon 2019): epsilon for the dense layers, z+ for the conv layers "
        "and the bounded-input z^B (box) rule for the first layer. Usually the most readable "
        "LRP map." + _LRP_NOTE,
        _COST,
        _make("lrp_composite"),
        (
            Param(
                "epsilon",
                0.25,
                "float",
                1e-9,
                10.0,
                log=True,
                help="Stabiliser of the epsilon rule in the dense layers.",
            ),
            Param(
                "first_rule",
                "zb",
                "choice",
                choices=("zb", "zplus", "epsilon"),
                help="Rule for the first layer: z^B uses the pixel range, z+ positive weights.",
            ),
        ),
        applies=lrp_applies,
        signed=True,
    )
)
