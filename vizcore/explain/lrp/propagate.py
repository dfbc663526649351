"""The LRP pass: one compiled ``tf.function`` per (model, preset, first-layer rule).

The forward half computes the linear and mixing steps of the :class:`~vizcore.explain.lrp.plan.Plan`
through the same (batch-norm folded) maps the rules divide by, so a unit's activation and its
rule's denominator are the same number (with Keras' own conv-then-BN values instead, rounding in
units near zero shifts relevance between the map and the biases). The backward half walks the
steps in reverse, each weighted step with the rule of its role, each mixing step with the
preset's ``mix`` rule, each routing step handing it on (:func:`_route`), and records what
every bias and stabiliser absorbed. The pass is built and traced once inside the engine's cache
(:meth:`~vizcore.engine.Engine.cached`), with the class index and epsilon as tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vizcore.engine import Engine
from vizcore.explain.lrp.plan import Plan, Step, build_plan
from vizcore.explain.lrp.presets import Preset, get_preset
from vizcore.explain.lrp.rules import ALL, Linear, get_rule, part, rowsum


def _affine(layer):
    """(g, c) with ``layer(x) = g * x + c`` for BatchNormalization (inference), Rescaling and
    Normalization (per channel or scalar, as tensors)."""
    import keras
    import tensorflow as tf

    kind = type(layer).__name__
    if kind == "BatchNormalization":
        g = tf.math.rsqrt(tf.convert_to_tensor(layer.moving_variance) + layer.epsilon)
        if layer.scale:
            g = g * layer.gamma
        c = -tf.convert_to_tensor(layer.moving_mean) * g
        if layer.center:
            c = c + layer.beta
        return g, c
    if kind == "Rescaling":
        return (tf.constant(np.asarray(layer.scale, np.float32)),
                tf.constant(np.asarray(layer.offset, np.float32)))
    g = 1.0 / tf.maximum(tf.sqrt(tf.convert_to_tensor(layer.variance)), keras.config.epsilon())
    return g, -tf.convert_to_tensor(layer.mean) * g


def _stages(step: Step, a, bounds) -> list[tuple[Linear, str]]:
    """The linear stages of a weighted step, output side first, with their roles (``"first"``,
    ``"conv"``, ``"dense"``); a folded BatchNormalization is merged into the last stage."""
    import keras
    import tensorflow as tf

    lyr = step.layer
    kind = type(lyr).__name__
    role = "first" if step.first else ("dense" if kind == "Dense" else "conv")
    bias = lyr.bias if getattr(lyr, "use_bias", False) else None
    g = c = None
    if step.bn is not None:
        g, c = _affine(step.bn)
        bias = c if bias is None else bias * g + c

    def conv(k, strides, padding, dilation):
        return lambda xs, s: keras.ops.conv(xs[0], part(k, s), strides=strides,
                                            padding=padding, dilation_rate=dilation)

    def depthwise(k):
        return lambda xs, s: keras.ops.depthwise_conv(
            xs[0], part(k, s), strides=lyr.strides, padding=lyr.padding,
            dilation_rate=lyr.dilation_rate)

    if kind == "SeparableConv2D":
        dk, pk = lyr.depthwise_kernel, lyr.pointwise_kernel
        if g is not None:
            pk = pk * g
        dw = depthwise(dk)
        mid = dw([a], ALL)
        pw = conv(pk, 1, "valid", 1)
        return [(Linear(pw, [mid], bias), "conv"), (Linear(dw, [a], None, bounds=bounds), role)]
    if kind == "DepthwiseConv2D":
        k = lyr.kernel
        if g is not None:
            k = k * tf.reshape(g, tuple(k.shape[2:]))
        return [(Linear(depthwise(k), [a], bias, bounds=bounds), role)]
    k = lyr.kernel if g is None else lyr.kernel * g
    if kind == "Dense":
        return [(Linear(lambda xs, s: keras.ops.matmul(xs[0], part(k, s)), [a], bias,
                        bounds=bounds), role)]
    return [(Linear(conv(k, lyr.strides, lyr.padding, lyr.dilation_rate), [a], bias,
                    bounds=bounds), role)]


def _mix_linear(layer, ins) -> Linear:
    """The linear map of a mixing layer."""
    import tensorflow as tf

    kind = type(layer).__name__
    if kind in ("Add", "Average"):
        n = float(len(ins))
        scale = 1.0 / n if kind == "Average" else 1.0
        return Linear(lambda xs, s: tf.add_n(xs) * scale, list(ins), None, nonneg=True)
    if kind in ("AveragePooling2D", "GlobalAveragePooling2D"):
        return Linear(lambda xs, s: layer(xs[0], training=False), list(ins), None, nonneg=True)
    g, c = _affine(layer)
    return Linear(lambda xs, s: part(g, s) * xs[0], list(ins), c)


def _activate(layer, z):
    """A weighted layer's activation (relu, relu6 or linear: the ones LRP accepts)."""
    import tensorflow as tf

    act = getattr(getattr(layer, "activation", None), "__name__", "linear")
    if act == "relu":
        return tf.nn.relu(z)
    if act == "relu6":
        return tf.nn.relu6(z)
    return z


def _bounds(path, graph, lo, hi, shape):
    """The z^B bounds: the pixel bounds ``lo``, ``hi`` (C,) over an input of ``shape`` (H, W,
    C), mapped through the input-side layers of ``path`` (an InputLayer first)."""
    import tensorflow as tf

    low = tf.broadcast_to(tf.constant(lo.reshape(1, 1, 1, -1)), (1, *shape))
    high = tf.broadcast_to(tf.constant(hi.reshape(1, 1, 1, -1)), (1, *shape))
    for name in path[1:]:  # the first is the InputLayer
        lyr = graph.layer(name)
        a, b = lyr(low, training=False), lyr(high, training=False)
        low, high = tf.minimum(a, b), tf.maximum(a, b)
    return low, high


def _route(step: Step, r, ins) -> list:
    """The relevance a routing step hands to each input: unchanged (activations,
    pass-throughs), reshaped (Flatten, Reshape), cropped (ZeroPadding2D), sliced (Concatenate)
    or to the winners (max pooling)."""
    import tensorflow as tf

    if step.op == "identity":
        return [r]
    if step.op == "reshape":
        return [tf.reshape(r, tf.shape(ins[0]))]
    if step.op == "crop":
        (t, b), (left, right) = step.layer.padding
        h, w = tf.shape(r)[1], tf.shape(r)[2]
        return [r[:, t:h - b, left:w - right, :]]
    if step.op == "split":
        axis = step.layer.axis % len(r.shape)
        return tf.split(r, [int(a.shape[axis]) for a in ins], axis=axis)
    if step.op == "wta":
        a = tf.identity(ins[0])
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(a)
            z = step.layer(a, training=False)
        return [tape.gradient(z, a, output_gradients=r)]
    raise AssertionError(f"unknown LRP step {step.op!r}")


def _compile(engine: Engine, plan: Plan, preset: Preset, first_rule: str):
    """The traced pass ``(x (B,H,W,C), cls, eps) -> (relevance, logits, target, score,
    bias (S, B), stabiliser (S, B))`` with S = the steps that record absorption."""
    import tensorflow as tf

    graph = engine.graph
    lo, hi = engine.input_bounds()
    role_rule = {"first": get_rule(preset.first or first_rule), "conv": get_rule(preset.conv),
                 "dense": get_rule(preset.dense)}
    mix_rule = get_rule(preset.mix)

    @tf.function(autograph=False, input_signature=[
        engine.spec_batch(), tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float32)])
    def run(x, cls, eps):
        # forward: linear and mixing steps through the same maps the rules divide by, so that
        # each unit's activation and its rule's denominator are the same number
        acts, linears = {}, {}
        for step in plan.steps:
            ins = [acts[p] for p in step.parents]
            if step.op == "input":
                acts[step.name] = x
            elif step.op == "weighted":
                bounds = None
                if step.first and step.bounds_path is not None:
                    bounds = _bounds(step.bounds_path, graph, lo, hi, engine.input_shape)
                linears[step.name] = _stages(step, ins[0], bounds)
                z = linears[step.name][0][0].z()
                acts[step.name] = z if step.name == plan.head_dense else _activate(step.layer, z)
            elif step.op == "mix":
                linears[step.name] = _mix_linear(step.layer, ins)
                acts[step.name] = linears[step.name].z()
            else:
                acts[step.name] = step.layer(ins if len(ins) > 1 else ins[0], training=False)
        logits = acts[plan.start]
        batch = tf.shape(logits)[:1]
        c = tf.where(cls < 0, tf.argmax(logits, axis=-1, output_type=tf.int32),
                     tf.fill(batch, cls))
        rel = {plan.start: logits * tf.one_hot(c, tf.shape(logits)[-1], dtype=logits.dtype)}
        score = rowsum(rel[plan.start])
        biases, stabs = [], []
        r_input = None
        for step in reversed(plan.steps):
            r = rel.pop(step.name, None)
            if r is None:
                continue
            ins = [acts[p] for p in step.parents]
            if step.op == "input":
                r_input = r
                continue
            if step.op == "mix":
                outs, bias, stab = mix_rule(linears[step.name], r, eps)
                biases.append(bias)
                stabs.append(stab)
            elif step.op == "weighted":
                bias, stab = 0.0, 0.0
                for lin, role in linears[step.name]:
                    (r,), b, e = role_rule[role](lin, r, eps)
                    bias, stab = bias + b, stab + e
                outs = [r]
                biases.append(bias)
                stabs.append(stab)
            else:
                outs = _route(step, r, ins)
            for p, rp in zip(step.parents, outs):
                rel[p] = rel[p] + rp if p in rel else rp
        zeros = tf.zeros(tf.stack([0, batch[0]]))
        return (r_input, logits, c, score, tf.stack(biases) if biases else zeros,
                tf.stack(stabs) if stabs else zeros)

    return run


# --------------------------------------------------------------------------- public API


@dataclass
class LRPResult:
    """One LRP pass on one image.

    Attributes:
        relevance: Input relevance, (H, W, C); its sum is ``stats["map_sum"]``.
        logits: The model's logits, (K,).
        target: The explained class.
        stats: ``score`` (the explained logit), ``map_sum``, ``bias_absorbed``,
            ``epsilon_absorbed`` (the stabiliser, and units with a zero denominator) and
            ``held`` (map_sum / score). ``map_sum + bias_absorbed + epsilon_absorbed = score``
            up to rounding for every preset.
        by_layer: Layer name -> (bias absorbed, stabiliser absorbed) for each weighted or
            mixing step (a folded BatchNormalization is reported under its conv).
    """

    relevance: np.ndarray
    logits: np.ndarray
    target: int
    stats: dict
    by_layer: dict


def compiled_pass(engine: Engine, preset: str, first_rule: str):
    """The compiled pass and the names of its recording steps, built and traced once per
    (model, preset, first-layer rule)."""
    spec = get_preset(preset)
    first = spec.first or first_rule
    get_rule(first)

    def build():
        plan = build_plan(engine.graph, engine.outputs_probabilities)
        fn = _compile(engine, plan, spec, first)
        fn.get_concrete_function()  # trace now, inside the engine's lock
        return fn, [s.layer.name for s in plan.steps if s.op in ("mix", "weighted")]

    return engine.cached(("lrp", preset, first), build)


def propagate(
    engine: Engine,
    x: np.ndarray,
    target: int,
    preset: str = "epsilon",
    epsilon: float = 0.01,
    first_rule: str = "zb",
) -> LRPResult:
    """Run LRP on one image.

    Args:
        engine: The model's engine (its compiled pass is cached there).
        x: One image (H, W, C) in the model's input range.
        target: Class to explain; -1 = the predicted class.
        preset: A key of :data:`~vizcore.explain.lrp.presets.PRESETS`.
        epsilon: Stabiliser of the epsilon rule.
        first_rule: Rule of the first weighted layer for presets that take it (composite).

    Returns:
        An :class:`LRPResult`.

    Raises:
        ValueError: unknown preset or rule; LRPUnsupported for a layer without a rule.
    """
    fn, names = compiled_pass(engine, preset, first_rule)
    r, logits, c, score, bias, stab = fn(np.asarray(x, np.float32)[None], np.int32(target),
                                        np.float32(epsilon))
    r = r.numpy()[0]
    score, bias, stab = float(score.numpy()[0]), bias.numpy()[:, 0], stab.numpy()[:, 0]
    map_sum = float(r.sum(dtype=np.float64))
    stats = {"score": score, "map_sum": map_sum, "bias_absorbed": float(bias.sum()),
             "epsilon_absorbed": float(stab.sum()),
             "held": map_sum / score if score else float("nan")}
    by_layer = {n: (float(b), float(e)) for n, b, e in zip(names, bias, stab)}
    return LRPResult(r, logits.numpy()[0], int(c.numpy()[0]), stats, by_layer)


def describe_stats(stats: dict) -> str:
    """One line for a UI: the explained logit, what the map holds and what the biases absorbed
    (and, when it matters, the stabiliser with the units a rule had nothing to divide by)."""
    score = stats["score"]

    def share(v: float) -> str:
        return f"{v:.3g} ({v / score:.0%})" if score else f"{v:.3g}"

    text = (f"Explained score (logit) {score:.3g}: the map holds {share(stats['map_sum'])}, the "
            f"biases absorbed {share(stats['bias_absorbed'])}")
    eps = stats.get("epsilon_absorbed", 0.0)
    if abs(eps) > 0.005 * max(abs(score), 1e-12):
        text += f", and the stabiliser or dead-end units {share(eps)}"
    return text + "."
