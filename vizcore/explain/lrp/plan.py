"""The LRP plan of a model: which layers relevance goes through, and what each one does to it.

:func:`build_plan` reads the model's graph (through :mod:`vizcore.graph` only) and returns one
:class:`Step` per layer call between the logits and the input, in topological order, with the
batch norms to fold into their conv (canonisation), the first weighted layers and, for those on
the pixels, the input-side layers the z^B bounds are mapped through. :func:`lrp_support` says why
a model cannot be explained, naming the first unsupported layer and its kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vizcore.graph import PASS_THROUGH

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
    """LRP applies to graphs of the supported layers (see :mod:`vizcore.explain.lrp`)."""
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

