"""Layer-wise relevance propagation (LRP) over the model's graph.

Papers (cited once, in :data:`_PAPER` and :data:`_DTD`): Bach et al. 2015 (LRP, the epsilon and
alpha-beta rules), Montavon et al. 2017 (deep Taylor decomposition: the z+ and z^B rules) and
Montavon et al. 2019 (the overview: the gradient trick, the composite preset, canonisation).

The explained score is the target's logit: a last ``Dense(softmax)`` is applied without its
softmax, a last ``Softmax`` / ``Activation("softmax")`` layer is skipped, a logits output is used
as is. The score is handed back from the output to the pixels over the DAG of
``graph_of(model).nodes``, in reverse topological order. Each layer call is one *step* that
takes the relevance of the tensor the layer made and hands it to the tensors the layer read; a
tensor read by several layers (a residual shortcut, a DenseNet feature map) gets the sum of what
its readers hand back.

Steps:

* Weighted layers (Conv2D, Dense, DepthwiseConv2D; SeparableConv2D as two linear steps,
  depthwise then pointwise) use the rule of the preset's row for their role (first weighted
  layer, conv, dense), computed with the gradient trick ``R_in = a * W^T (R / z)``: ``W^T s`` is
  the gradient of the layer's linear map, so no transpose is hand-written. A BatchNormalization
  that is the only reader of a linear conv/dense layer is folded into it (canonisation): the
  folded kernel and bias are computed as tensors at trace time, the layer is never changed.
* Mixing layers (Add, Average, average pooling, an unfolded BatchNormalization and a Rescaling or
  Normalization inside the network, all linear maps) use the preset's ``mix`` rule: the
  epsilon-stabilised z-rule, or positive parts only under the z+ and alpha1-beta0 presets, so
  those maps keep the sign of the score.
* Routing layers hand relevance back unchanged: activations (ReLU, capped ReLU, relu6, linear),
  pass-throughs (Dropout ...), Flatten/Reshape (reshaped), ZeroPadding2D (cropped),
  Concatenate (sliced), max pooling (winner takes all).
* A Rescaling or Normalization between the input and the first weighted layer is part of the
  input encoding: a pixel's relevance is the relevance of its scaled value, so a model with its
  preprocessing inside gives the same map as the same model fed preprocessed pixels. The z^B
  rule maps the pixel bounds through those layers (and ZeroPadding2D, Flatten, Reshape).

Bias absorption: every linear step records the relevance its bias took (``sum_j b_j R_j /
z_j`` with the step's own denominator) and, separately, what the epsilon stabiliser took
(``sum_j eps_j R_j / z_j``, plus the relevance of units whose denominator is zero). Both are
computed from those terms, never as a difference of totals, so ``map_sum + bias_absorbed +
epsilon_absorbed = score`` is a check on the whole propagation. In a CNN with biases they often
absorb more than half the logit.

The pass runs in one ``tf.function`` per (model, preset, first-layer rule), traced once inside
the engine's cache, with the class index and epsilon as tensors. Its forward half computes the
linear and mixing steps through the same (folded) maps the rules divide by, so a unit's
activation and its rule's denominator are the same number (with Keras' own conv-then-BN values
instead, rounding in units near zero shifts relevance between the map and the biases).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from vizcore.explain.base import Engine, MethodSpec, Param, Progress, normalize, register
from vizcore.graph import PASS_THROUGH

_TINY = 1e-9
_ALL, _POS, _NEG = 0, 1, -1

#: Layers with a kernel that LRP propagates through with a rule.
WEIGHTED = frozenset({"Conv2D", "Dense", "DepthwiseConv2D", "SeparableConv2D"})
#: Activations that hand relevance back unchanged.
_ACTIVATIONS = ("relu", "relu6", "linear", "")
#: Layers that may sit between the input and the first weighted layer as the input encoding.
_INPUT_SIDE = frozenset({"InputLayer", "Rescaling", "Normalization", "ZeroPadding2D", "Flatten",
                         "Reshape"}) | PASS_THROUGH
_SUPPORTED = sorted(WEIGHTED | {
    "Add", "Average", "Concatenate", "BatchNormalization", "Rescaling", "Normalization",
    "ZeroPadding2D", "ReLU", "Activation", "MaxPooling2D", "GlobalMaxPooling2D",
    "AveragePooling2D", "GlobalAveragePooling2D", "Flatten", "Reshape", "InputLayer", "Softmax",
} | PASS_THROUGH)


class LRPUnsupported(ValueError):
    """The model has a layer LRP here has no rule for; the message names it."""


# --------------------------------------------------------------------------- linear steps


def _part(w, sign: int):
    """``w`` (sign 0), its positive part (1) or its negative part (-1)."""
    import tensorflow as tf

    if sign == _POS:
        return tf.nn.relu(w)
    if sign == _NEG:
        return tf.minimum(w, 0.0)
    return w


def _rowsum(t):
    """Sum over every axis but the batch axis, (B,)."""
    import tensorflow as tf

    return tf.reduce_sum(t, axis=list(range(1, len(t.shape))))


@dataclass
class Linear:
    """One linear map ``z = sum_k W_k a_k + b`` at trace time, as a rule sees it.

    Attributes:
        apply: ``apply(xs, sign) -> sum_k W_k^sign x_k`` (no bias) where ``sign`` restricts the
            weights to their positive (1) or negative (-1) part, or not (0).
        inputs: The activations ``a_k`` the layer read.
        bias: ``b`` (broadcastable to z) or None.
        nonneg: Every weight is >= 0 (sums, average pooling): the negative part is empty.
        bounds: (low, high) of the input for the z^B rule (first layer only), else None.
    """

    apply: Callable
    inputs: list
    bias: object = None
    nonneg: bool = False
    bounds: tuple | None = None


def _contributions(lin: Linear, combos):
    """``z = sum_(f, sign) W^sign f(a)`` and ``back(s) = [sum_(f, sign) f(a_k) (W^sign)^T s]``.

    ``f`` picks part of the activations (all, positive, negative); the transposes come from one
    gradient of ``z`` (the gradient trick).
    """
    import tensorflow as tf

    xs_list = [[f(a) for a in lin.inputs] for f, _ in combos]
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        for xs in xs_list:
            for x in xs:
                tape.watch(x)
        z = tf.add_n([lin.apply(xs, sign) for xs, (_, sign) in zip(xs_list, combos)])

    def back(s):
        flat = [x for xs in xs_list for x in xs]
        grads = tape.gradient(z, flat, output_gradients=s,
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        n = len(lin.inputs)
        out = [None] * n
        for i, (x, g) in enumerate(zip(flat, grads)):
            out[i % n] = x * g if out[i % n] is None else out[i % n] + x * g
        return out

    return z, back


def _all(a):
    import tensorflow as tf

    return tf.identity(a)  # a fresh tensor per use, so an input read twice is counted twice


def _pos(a):
    import tensorflow as tf

    return tf.nn.relu(a)


def _neg(a):
    import tensorflow as tf

    return tf.minimum(a, 0.0)


def _safe_div(r, z):
    """(r / z where z != 0 else 0, r where z == 0): the ratio and the relevance dropped."""
    import tensorflow as tf

    nz = tf.abs(z) > _TINY
    return tf.where(nz, r / tf.where(nz, z, tf.ones_like(z)), 0.0), tf.where(nz, 0.0, r)


class Rule:
    """A relevance rule for one linear step.

    ``rule(lin, r, eps) -> (relevance of each input, bias part (B,), stabiliser part (B,))``: the
    relevance the bias and the stabiliser (epsilon, or units with a zero denominator) absorbed,
    each computed from its own term.
    """

    name = ""

    def __call__(self, lin: Linear, r, eps):  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class Epsilon(Rule):
    """LRP-epsilon (LRP-0 as epsilon -> 0): ``R_i = a_i sum_j w_ij R_j / (z_j + eps sign z_j)``."""

    name: str = "epsilon"

    def __call__(self, lin, r, eps):
        import tensorflow as tf

        z, back = _contributions(lin, [(_all, _ALL)])
        if lin.bias is not None:
            z = z + lin.bias
        d = (eps + _TINY) * tf.where(z >= 0, 1.0, -1.0)
        s = r / (z + d)
        bias = _rowsum(lin.bias * s) if lin.bias is not None else tf.zeros_like(_rowsum(r))
        return back(s), bias, _rowsum(d * s)


@dataclass(frozen=True)
class AlphaBeta(Rule):
    """LRP-alpha-beta: positive contributions (``a_i w_ij > 0``) get ``alpha`` times the
    relevance in proportion, negative ones ``beta`` times against; ``alpha=1, beta=0`` without
    biases is the z+ rule."""

    alpha: float = 1.0
    beta: float = 0.0
    bias: bool = True
    name: str = "ab"

    def _side(self, lin, r, sign: int):
        if lin.nonneg:
            combos = [(_pos, _ALL)] if sign > 0 else [(_neg, _ALL)]
        else:
            combos = [(_pos, _POS), (_neg, _NEG)] if sign > 0 else [(_pos, _NEG), (_neg, _POS)]
        z, back = _contributions(lin, combos)
        b = _part(lin.bias, sign) if self.bias and lin.bias is not None else None
        if b is not None:
            z = z + b
        s, lost = _safe_div(r, z)
        bias = _rowsum(b * s) if b is not None else 0.0 * _rowsum(r)
        return back(s), bias, _rowsum(lost)

    def __call__(self, lin, r, eps):
        rel, bias, lost = self._side(lin, r, 1)
        if self.alpha != 1.0:
            rel, bias, lost = [self.alpha * t for t in rel], self.alpha * bias, self.alpha * lost
        if self.beta:
            rn, bn, ln = self._side(lin, r, -1)
            rel = [p - self.beta * n for p, n in zip(rel, rn)]
            bias, lost = bias - self.beta * bn, lost - self.beta * ln
        return rel, bias, lost


@dataclass(frozen=True)
class ZBox(Rule):
    """z^B for a bounded input ``l <= a <= h``: contributions ``a_i w_ij - l_i w+_ij - h_i
    w-_ij`` (all >= 0; biases ignored). Falls back to z+ when the bounds are unknown."""

    name: str = "zb"

    def __call__(self, lin, r, eps):
        import tensorflow as tf

        if lin.bounds is None or len(lin.inputs) != 1:
            return RULES["zplus"](lin, r, eps)
        (a,) = lin.inputs
        lo, hi = (tf.identity(b * tf.ones_like(a)) for b in lin.bounds)
        a = tf.identity(a)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch([a, lo, hi])
            z = lin.apply([a], _ALL) - lin.apply([lo], _POS) - lin.apply([hi], _NEG)
        s, lost = _safe_div(r, z)
        ga, gl, gh = tape.gradient(z, [a, lo, hi], output_gradients=s,
                                   unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return [a * ga + lo * gl + hi * gh], 0.0 * _rowsum(r), _rowsum(lost)


#: The rules by name.
RULES: dict[str, Rule] = {
    "epsilon": Epsilon(),
    "zplus": AlphaBeta(1.0, 0.0, False, "zplus"),
    "ab10": AlphaBeta(1.0, 0.0, True, "ab10"),
    "ab21": AlphaBeta(2.0, 1.0, True, "ab21"),
    "zb": ZBox(),
}


def _named(table: dict, name: str, what: str):
    """``table[name]``, or a ValueError naming ``what`` and listing the valid names."""
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown LRP {what} {name!r}; choose one of {sorted(table)}") from None


def get_rule(name: str) -> Rule:
    """The rule called ``name``, or a ValueError listing the valid names."""
    return _named(RULES, name, "rule")


# --------------------------------------------------------------------------- presets


@dataclass(frozen=True)
class Preset:
    """Which rule each kind of step uses.

    Attributes:
        first: Rule of the first weighted layer(s); None = the ``first_rule`` argument.
        conv: Rule of the other conv layers (Conv2D, DepthwiseConv2D, SeparableConv2D).
        dense: Rule of the other Dense layers.
        mix: Rule of the mixing layers (Add, average pooling, unfolded BatchNormalization).
    """

    first: str | None
    conv: str
    dense: str
    mix: str


#: One line per preset: first weighted layer, conv layers, dense layers, mixing layers.
PRESETS: dict[str, Preset] = {
    "epsilon": Preset("epsilon", "epsilon", "epsilon", "epsilon"),
    "ab21": Preset("ab21", "ab21", "ab21", "epsilon"),
    "ab10": Preset("ab10", "ab10", "ab10", "ab10"),
    "zplus": Preset("zplus", "zplus", "zplus", "zplus"),
    "composite": Preset(None, "zplus", "epsilon", "zplus"),
}
#: The preset of each registered method.
METHOD_PRESETS = {
    "lrp_epsilon": "epsilon",
    "lrp_alphabeta_21": "ab21",
    "lrp_alphabeta_10": "ab10",
    "lrp_zplus": "zplus",
    "lrp_composite": "composite",
}


def get_preset(name: str) -> Preset:
    """The preset called ``name``, or a ValueError listing the valid names."""
    return _named(PRESETS, name, "preset")


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Step:
    """What one layer call does to relevance.

    Attributes:
        name: The node whose output relevance the step takes.
        op: ``"input"``, ``"identity"``, ``"reshape"``, ``"crop"``, ``"wta"``, ``"split"``,
            ``"mix"`` or ``"weighted"``.
        layer: The layer.
        parents: The nodes it hands relevance to, in argument order.
        bn: A BatchNormalization folded into this weighted layer (the step then takes the BN's
            output relevance), or None.
        first: The weighted layer reads the input through no other weighted layer.
        bounds_path: For a first layer reached from the input through input-side layers only:
            those layers, input first (to map the z^B bounds); else None.
    """

    name: str
    op: str
    layer: object
    parents: tuple[str, ...]
    bn: object = None
    first: bool = False
    bounds_path: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Plan:
    """The relevance steps of one model (topological order) and its head.

    Attributes:
        steps: One per layer call that relevance goes through (a folded conv has none).
        start: The node producing the logits.
        head_dense: A last Dense(softmax) applied without its softmax, or None.
        folded: Weighted layer name -> the BatchNormalization folded into it.
    """

    steps: tuple[Step, ...]
    start: str
    head_dense: str | None
    folded: dict = field(default_factory=dict)


def _why_not(n, head_dense: str | None) -> str | None:
    """Why LRP cannot go through node ``n`` (naming the layer and its kind), or None."""
    kind, lyr = n.kind, n.layer
    where = f"LRP does not support layer '{n.name}' ({kind}"
    if kind not in _SUPPORTED:
        return (f"{where}): there is no relevance rule for it here (LRP handles "
                "Conv2D/Dense/depthwise/separable convs, Add, Concatenate, pooling, batch norm "
                "and ReLU-like activations).")
    if len(n.parents) != len(n.inputs):
        return f"{where}): it reads a tensor that no layer of the model produces."
    fmt = getattr(lyr, "data_format", "channels_last")
    if fmt != "channels_last":
        return f"{where}): it uses data_format={fmt!r}; LRP here needs channels_last."
    if (kind in WEIGHTED or kind == "Activation") and n.name != head_dense:
        act = n.activation
        if act not in _ACTIVATIONS:
            return (f"{where} with activation '{act}'): LRP's rules assume ReLU-like "
                    "activations (relu, relu6, linear).")
    if kind == "Conv2D" and getattr(lyr, "groups", 1) != 1:
        return (f"{where}): it is a grouped convolution (groups={lyr.groups}), which LRP here "
                "does not support.")
    if kind == "ReLU" and (float(lyr.negative_slope or 0) or float(lyr.threshold or 0)):
        return f"{where}): a leaky or thresholded ReLU; LRP here takes plain or capped ReLUs."
    if kind == "Softmax":  # a last softmax is not among the nodes checked
        return f"{where}): a softmax inside the network (only a last softmax is skipped)."
    if kind == "BatchNormalization" and lyr.axis not in (-1, n.rank - 1):
        return f"{where}): it normalises axis {lyr.axis}, not the channel (last) axis."
    if kind == "Normalization" and getattr(lyr, "invert", False):
        return f"{where}): an inverted Normalization."
    if kind in ("Add", "Average"):
        shapes = {tuple(t.shape[1:]) for t in n.inputs}
        if len(shapes) > 1:
            return f"{where}): its inputs have different shapes {sorted(shapes)} (broadcasting)."
    return None


def _problems(graph, outputs_probabilities: bool | None = None) -> tuple[list[str], dict]:
    """(reasons LRP cannot run, head info) for a graph."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        return ["LRP here explains models with one input and one output."], {}
    last = graph.output_node()
    head_dense = None
    if last.kind == "Dense" and last.activation == "softmax":
        start, head_dense = last.name, last.name
    elif last.is_softmax_layer:
        start = last.parents[0]
    elif outputs_probabilities and not graph.outputs_probabilities():
        return [f"The model's output '{last.name}' ({last.kind}) is read as probabilities, but no "
                "softmax can be removed to get the logits LRP explains."], {}
    else:
        start = last.name
    keep: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name not in keep:
            keep.add(name)
            todo.extend(graph.parents(name))
    reasons = [why for n in graph.nodes if n.name in keep
               if (why := _why_not(n, head_dense))]
    if not reasons and not any(graph.node(k).kind in WEIGHTED for k in keep):
        reasons.append("LRP needs at least one Conv2D or Dense layer; this model has none.")
    return reasons, {"start": start, "head_dense": head_dense, "keep": keep}


def lrp_support(model, outputs_probabilities: bool | None = None) -> tuple[bool, str]:
    """Whether LRP here can run on ``model`` (a normalised model), and if not, why: the first
    unsupported layer, named with its kind, and how many more there are."""
    from vizcore.graph import graph_of

    reasons, _ = _problems(graph_of(model), outputs_probabilities)
    if not reasons:
        return True, ""
    more = f" ({len(reasons) - 1} more layers are unsupported too.)" if len(reasons) > 1 else ""
    return False, reasons[0] + more


def lrp_applies(info) -> tuple[bool, str]:
    """LRP applies to graphs of the supported layers (see the module docstring)."""
    return lrp_support(info.model, info.outputs_probabilities)


def build_plan(graph, outputs_probabilities: bool | None = None) -> Plan:
    """The relevance steps of a graph.

    Raises:
        LRPUnsupported: a layer without a rule (the message names it).
    """
    reasons, head = _problems(graph, outputs_probabilities)
    if reasons:
        raise LRPUnsupported(reasons[0])
    keep, start, head_dense = head["keep"], head["start"], head["head_dense"]
    nodes = [n for n in graph.nodes if n.name in keep]
    # canonisation: a BatchNormalization that is the only reader of a linear conv/dense layer
    fold: dict[str, str] = {}
    for n in nodes:
        if n.kind == "BatchNormalization" and len(n.parents) == 1:
            p = graph.node(n.parents[0])
            if (p.kind in WEIGHTED and p.activation in ("linear", "") and p.name != head_dense
                    and graph.children(p.name) == [n.name]):
                fold[n.name] = p.name
    folded = set(fold.values())
    # which weighted layers are first, and which layers are the input's encoding
    above: dict[str, bool] = {}  # a weighted layer lies between the input and this node's output
    input_side: dict[str, bool] = {}
    for n in nodes:
        above[n.name] = n.kind in WEIGHTED or any(above[p] for p in n.parents)
        input_side[n.name] = n.kind in _INPUT_SIDE and all(input_side[p] for p in n.parents)

    def bounds_path(name: str) -> tuple[str, ...] | None:
        path = []
        while name is not None and input_side.get(name):
            path.append(name)
            ps = graph.parents(name)
            if not ps:
                return tuple(reversed(path))
            name = ps[0] if len(ps) == 1 else None
        return None

    steps = []
    for n in nodes:
        if n.name in folded:
            continue
        kind, parents = n.kind, n.parents
        lyr, bn, op = n.layer, None, None
        if n.name in fold:
            conv = graph.node(fold[n.name])
            lyr, bn, parents, kind, op = conv.layer, n.layer, conv.parents, conv.kind, "weighted"
        elif kind == "InputLayer":
            op = "input"
        elif kind in WEIGHTED:
            op = "weighted"
        elif kind in PASS_THROUGH or kind in ("ReLU", "Activation") or (
                kind in ("Rescaling", "Normalization") and input_side[n.name]):
            op = "identity"
        elif kind in ("Flatten", "Reshape"):
            op = "reshape"
        elif kind == "ZeroPadding2D":
            op = "crop"
        elif kind in ("MaxPooling2D", "GlobalMaxPooling2D"):
            op = "wta"
        elif kind == "Concatenate":
            op = "split"
        else:  # Add, Average, average pooling, BatchNormalization, inner Rescaling/Normalization
            op = "mix"
        first = op == "weighted" and not any(above[p] for p in parents)
        path = bounds_path(parents[0]) if first and len(parents) == 1 else None
        steps.append(Step(n.name, op, lyr, tuple(parents), bn, first, path))
    return Plan(tuple(steps), start, head_dense,
                {v: graph.layer(k) for k, v in fold.items()})


# --------------------------------------------------------------------------- traced steps


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
        return lambda xs, s: keras.ops.conv(xs[0], _part(k, s), strides=strides,
                                            padding=padding, dilation_rate=dilation)

    def depthwise(k):
        return lambda xs, s: keras.ops.depthwise_conv(
            xs[0], _part(k, s), strides=lyr.strides, padding=lyr.padding,
            dilation_rate=lyr.dilation_rate)

    if kind == "SeparableConv2D":
        dk, pk = lyr.depthwise_kernel, lyr.pointwise_kernel
        if g is not None:
            pk = pk * g
        dw = depthwise(dk)
        mid = dw([a], _ALL)
        pw = conv(pk, 1, "valid", 1)
        return [(Linear(pw, [mid], bias), "conv"), (Linear(dw, [a], None, bounds=bounds), role)]
    if kind == "DepthwiseConv2D":
        k = lyr.kernel
        if g is not None:
            k = k * tf.reshape(g, tuple(k.shape[2:]))
        return [(Linear(depthwise(k), [a], bias, bounds=bounds), role)]
    k = lyr.kernel if g is None else lyr.kernel * g
    if kind == "Dense":
        return [(Linear(lambda xs, s: keras.ops.matmul(xs[0], _part(k, s)), [a], bias,
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
    return Linear(lambda xs, s: _part(g, s) * xs[0], list(ins), c)


def _z(lin: Linear):
    """The output of a linear step, ``sum_k W_k a_k + b``."""
    z = lin.apply(lin.inputs, _ALL)
    return z if lin.bias is None else z + lin.bias


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
                z = _z(linears[step.name][0][0])
                acts[step.name] = z if step.name == plan.head_dense else _activate(step.layer, z)
            elif step.op == "mix":
                linears[step.name] = _mix_linear(step.layer, ins)
                acts[step.name] = _z(linears[step.name])
            else:
                acts[step.name] = step.layer(ins if len(ins) > 1 else ins[0], training=False)
        logits = acts[plan.start]
        batch = tf.shape(logits)[:1]
        c = tf.where(cls < 0, tf.argmax(logits, axis=-1, output_type=tf.int32),
                     tf.fill(batch, cls))
        rel = {plan.start: logits * tf.one_hot(c, tf.shape(logits)[-1], dtype=logits.dtype)}
        score = _rowsum(rel[plan.start])
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
            if step.op == "identity":
                outs = [r]
            elif step.op == "reshape":
                outs = [tf.reshape(r, tf.shape(ins[0]))]
            elif step.op == "crop":
                (t, b), (left, right) = step.layer.padding
                h, w = tf.shape(r)[1], tf.shape(r)[2]
                outs = [r[:, t:h - b, left:w - right, :]]
            elif step.op == "split":
                axis = step.layer.axis % len(r.shape)
                outs = tf.split(r, [int(a.shape[axis]) for a in ins], axis=axis)
            elif step.op == "wta":
                a = tf.identity(ins[0])
                with tf.GradientTape(watch_accessed_variables=False) as tape:
                    tape.watch(a)
                    z = step.layer(a, training=False)
                outs = [tape.gradient(z, a, output_gradients=r)]
            elif step.op == "mix":
                outs, bias, stab = mix_rule(linears[step.name], r, eps)
                biases.append(bias)
                stabs.append(stab)
            else:  # weighted
                bias, stab = 0.0, 0.0
                for lin, role in linears[step.name]:
                    (r,), b, e = role_rule[role](lin, r, eps)
                    bias, stab = bias + b, stab + e
                outs = [r]
                biases.append(bias)
                stabs.append(stab)
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


def _lrp_fn(engine: Engine, preset: str, first_rule: str):
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
        preset: A key of :data:`PRESETS`.
        epsilon: Stabiliser of the epsilon rule.
        first_rule: Rule of the first weighted layer for presets that take it (composite).

    Returns:
        An :class:`LRPResult`.

    Raises:
        ValueError: unknown preset or rule; LRPUnsupported for a layer without a rule.
    """
    fn, names = _lrp_fn(engine, preset, first_rule)
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


def relevance(
    engine: Engine,
    x: np.ndarray,
    target: int,
    preset: str = "epsilon",
    epsilon: float = 0.01,
    first_rule: str = "zb",
) -> tuple[np.ndarray, np.ndarray, int]:
    """Input relevance (H, W, C), the logits (K,) and the explained class, for one image (see
    :func:`propagate`)."""
    res = propagate(engine, x, target, preset, epsilon, first_rule)
    return res.relevance, res.logits, res.target


def describe_stats(stats: dict) -> str:
    """One line for a UI: the explained logit, what the map holds and what the biases absorbed
    (and, when it matters, the stabiliser with the units a rule had nothing to divide by)."""
    score = stats["score"]

    def part(v: float) -> str:
        return f"{v:.3g} ({v / score:.0%})" if score else f"{v:.3g}"

    text = (f"Explained score (logit) {score:.3g}: the map holds {part(stats['map_sum'])}, the "
            f"biases absorbed {part(stats['bias_absorbed'])}")
    eps = stats.get("epsilon_absorbed", 0.0)
    if abs(eps) > 0.005 * max(abs(score), 1e-12):
        text += f", and the stabiliser or dead-end units {part(eps)}"
    return text + "."


# --------------------------------------------------------------------------- registry


def _make(key: str):
    preset = METHOD_PRESETS[key]

    def method(
        engine: Engine,
        x: np.ndarray,
        target: int,
        layer=None,
        progress: Progress = None,
        epsilon: float = 1e-6,
        first_rule: str = "zb",
    ):
        res = propagate(engine, x, target, preset, epsilon, first_rule)
        heat = normalize(np.maximum(res.relevance.sum(axis=-1), 0.0))
        return heat, res.relevance, res.target, None, res.stats

    method.__name__ = key
    method.__doc__ = (
        f"LRP with the {preset!r} rule preset (papers: Bach et al. 2015, Montavon et al. 2017 "
        "and 2019; see the module docstring).\n\n"
        "Cost: 1 forward pass and 1 relevance (backward-like) pass, compiled.\n\n"
        "Returns:\n    (heatmap (H, W) = positive part of the channel sum, relevance (H, W, C), "
        "target, None, stats: score, map_sum, bias_absorbed, epsilon_absorbed, held)."
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
_DTD = ("Montavon, Lapuschkin, Binder, Samek, Mueller 2017, Explaining nonlinear "
        "classification decisions with deep Taylor decomposition, arXiv:1512.02479")
_COST = "1 forward + 1 relevance pass"
_LRP_NOTE = (
    " Only part of the score reaches the pixels: each layer's biases take their share on the "
    "way (often more than half in a CNN with biases), and the line under the map says how much."
)

register(
    MethodSpec(
        "lrp_epsilon",
        "LRP-epsilon",
        "lrp",
        _PAPER,
        "Splits the class score (the logit) backwards, layer by layer, in proportion to each "
        "input's contribution, until it reaches the pixels. Red pixels speak for the class, "
        "blue against. With a small epsilon the map equals gradient x input in ReLU networks "
        "(correlation 1.00 on the shipped CNN) and is noisy; a larger epsilon removes weak, "
        "contradictory relevance but also swallows the score (at 0.25 the map keeps under 10% "
        "of it). The biases take a big share on the way: about half the logit on the shipped "
        "VGG-style CNN and nearly all of it on the GAP CNN (its batch-norm shifts), where red "
        "and blue nearly cancel; the line under the map says how much.",
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
        "Propagates positive contributions with weight 2 and negative ones with weight 1, so the "
        "map shows both evidence for and against the class. Tends to highlight edges; the map "
        "does not add up to the score (each layer can inflate relevance)." + _LRP_NOTE,
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
        "Propagates only positive contributions (biases included), giving clean maps of "
        "supporting evidence with the sign of the score (all positive for a positive logit, "
        "blank for a negative one). It is not class-discriminative: on the shipped CNNs the maps "
        "for any two classes with positive logits are practically identical (correlation "
        "0.98-1.00) and stay so when the weights are randomised, so it shows the image's bright "
        "structure more than the model's decision." + _LRP_NOTE,
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
        _PAPER + "; " + _DTD,
        "Propagates only positive contributions and ignores biases, so the map has the sign of "
        "the score (positive for a positive logit, blank for a negative one) and most of the "
        "score reaches the pixels (81% on the shipped VGG-style CNN; units switched on by a bias "
        "alone are dead ends). It is not class-discriminative: maps for any two classes with "
        "positive logits are practically identical (correlation 0.98-1.00) and survive "
        "randomising the weights, so it shows where the image is bright, not why the model chose "
        "the class.",
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
        _PAPER + "; " + _DTD,
        "The recommended mix (Montavon 2019): epsilon for the dense layers, z+ for the conv "
        "layers and the bounded-input z^B (box) rule for the first layer. Usually the most "
        "readable LRP map and, unlike pure z+, it changes with the class and passes the "
        "randomisation test. Part of the score is lost on the way, mostly to the dense layers' "
        "epsilon stabiliser rather than their biases; the line under the map says how much.",
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
