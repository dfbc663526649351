"""The one place that reads Keras graph internals.

A model given to vizcore is normalised once, on load, into a single *flat* functional graph by
:func:`normalise`: a ``Sequential`` becomes a functional model, nested models (the
transfer-learning shape ``Sequential([MobileNetV2(include_top=False), GAP, Dense])``) are
inlined so that their layers are layers of the outer model, and every layer is a private copy
with the original weights, so that each layer has exactly one node, the one of this model. A
model that is already a flat functional graph whose layers belong to it alone is kept as is.

:class:`Graph` (``graph_of(model)``, cached per model) then answers every structural question
from the model's own nodes (``model._nodes_by_depth``), never from ``layer.output`` or
``layer._inbound_nodes``, which a layer shared with another model answers from a stale graph:
the tensor a layer produces in this model, the layers feeding it, whether the model is one chain,
its conv layers and the default layer for CAMs, and the classifier head (pre-softmax tensor and
the map from it to logits).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: Layers that are the identity at inference.
PASS_THROUGH = frozenset({
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout",
    "GaussianNoise", "AlphaDropout", "ActivityRegularization",
})
#: Layers that act on each value (or each channel) alone: a conv block ends after them.
POINTWISE = frozenset({
    "BatchNormalization", "LayerNormalization", "Activation", "ReLU", "LeakyReLU", "ELU",
    "PReLU",
}) | PASS_THROUGH
#: Convolutions whose output channels are feature maps.
CONV_KINDS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose")
DENSE_KINDS = ("Dense",)
_NOT_CAM = PASS_THROUGH | {
    "InputLayer", "MaxPooling2D", "AveragePooling2D", "ZeroPadding2D", "Cropping2D",
    "Rescaling", "Normalization", "Resizing", "CenterCrop", "UpSampling2D", "Reshape",
}
_CAM_KINDS = {"Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Add", "Concatenate",
              "BatchNormalization"}


class GraphError(ValueError):
    """A model that cannot be turned into one functional graph; the message says why."""


# --------------------------------------------------------------------------- normalisation


def _nodes_of(model) -> list:
    """The model's own nodes, inputs first (topological order)."""
    by_depth = model._nodes_by_depth
    return [n for d in sorted(by_depth, reverse=True) for n in by_depth[d]]


def _is_model(op) -> bool:
    import keras

    return isinstance(op, keras.Model)


def is_flat(model) -> bool:
    """True for a functional (not Sequential) model with no nested model whose every layer has
    exactly one node, which belongs to this model (so ``layer.output`` is this model's tensor)."""
    import keras

    if isinstance(model, keras.Sequential) or not hasattr(model, "_nodes_by_depth"):
        return False
    own = {id(n) for n in _nodes_of(model)}
    for lyr in model.layers:
        if _is_model(lyr):
            return False
        nodes = getattr(lyr, "_inbound_nodes", [])
        if len(nodes) != 1 or id(nodes[0]) not in own:
            return False
    return True


def _copy_layer(layer, name: str):
    """A fresh layer of the same class and config (named ``name``), weights copied on build."""
    cfg = dict(layer.get_config())
    cfg["name"] = name
    return type(layer).from_config(cfg)


class _Flattener:
    """Rebuilds a model as one functional graph over fresh layer copies."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.copies: list[tuple[object, object]] = []  # (original, copy) to copy weights into

    def unique(self, name: str, prefix: str) -> str:
        out = name if name not in self.names else f"{prefix}_{name}"
        i = 1
        while out in self.names:
            out, i = f"{prefix}_{name}_{i}", i + 1
        self.names.add(out)
        return out

    def call_op(self, op, args, kwargs, prefix: str):
        """Apply the copy of ``op`` (or, for a nested model, its inlined graph) to tensors."""
        import keras
        from keras import tree

        kwargs = {k: v for k, v in kwargs.items() if k not in ("training", "mask")}
        if isinstance(op, keras.Sequential):
            (x,) = tree.flatten(args)[:1]
            for lyr in op.layers:
                x = self.call_op(lyr, (x,), {}, op.name)
            return x
        if _is_model(op):
            if not hasattr(op, "_nodes_by_depth"):
                raise GraphError(f"the nested model '{op.name}' is a subclassed model, which "
                                 "has no graph to inspect")
            return self.inline(op, tree.flatten(args), op.name)
        if isinstance(op, keras.layers.Layer):
            new = _copy_layer(op, self.unique(op.name, prefix))
            out = new(*args, **kwargs)
            self.copies.append((op, new))
            return out
        # a bare keras operation (keras.ops.* in a functional model): stateless, reused
        self.names.add(op.name)
        return op(*args, **kwargs)

    def inline(self, model, inputs: Sequence, prefix: str):
        """Run ``model``'s own graph on ``inputs`` (symbolic), returning its outputs."""
        from keras import tree

        tensors = {id(t): x for t, x in zip(model.inputs, inputs)}
        for node in _nodes_of(model):
            if node.operation is None or node.is_input:
                continue
            if any(id(t) not in tensors for t in node.input_tensors):
                continue
            args, kwargs = node.arguments.fill_in(tensors)
            outs = self.call_op(node.operation, args, kwargs, prefix)
            for t, y in zip(tree.flatten(node.outputs), tree.flatten(outs)):
                tensors[id(t)] = y
        outs = [tensors[id(t)] for t in model.outputs]
        return outs[0] if len(outs) == 1 else outs


def _input_shape(model) -> tuple:
    """The model's input shape without the batch axis."""
    if getattr(model, "inputs", None):
        return tuple(model.inputs[0].shape[1:])
    shape = getattr(model, "_build_shapes_dict", None) or {}
    if shape:
        return tuple(next(iter(shape.values()))[1:])
    raise GraphError("the model has no defined input shape. Fix: add a keras.Input(shape=...) "
                     "as its first layer (or call model.build) and save it again")


def normalise(model, input_size: tuple[int, int] | None = None):
    """``model`` as one flat functional graph (see the module docstring).

    Args:
        model: A Keras ``Model`` (functional or Sequential, possibly nesting other models).
        input_size: (H, W) to fix an input of unknown spatial size (``(None, None, C)``).

    Returns:
        The model itself when it is already flat (and no size is to be fixed), else a new
        functional model over layer copies holding the same weights.

    Raises:
        GraphError: a subclassed model, or no input shape.
    """
    import keras

    if not isinstance(model, keras.Model):
        raise GraphError(f"{type(model).__name__} is not a Keras model")
    n_in = len(getattr(model, "inputs", None) or [1])
    n_out = len(getattr(model, "outputs", None) or [1])
    if n_in != 1 or n_out != 1:
        raise GraphError(f"the model has {n_in} inputs and {n_out} outputs; vizcore needs one "
                         "image input and one class output")
    shape = _input_shape(model)
    needs_size = input_size is not None and tuple(shape[:2]) != tuple(input_size)
    if is_flat(model) and not needs_size:
        return model
    if not isinstance(model, keras.Sequential) and not hasattr(model, "_nodes_by_depth"):
        raise GraphError(f"'{model.name}' is a subclassed model, which has no graph to inspect")
    if input_size is not None:
        shape = (int(input_size[0]), int(input_size[1]), *shape[2:])
    flat = _Flattener()
    old_inputs = list(getattr(model, "inputs", None) or [])
    in_name = old_inputs[0].name if old_inputs else "input"
    flat.names.add(in_name)
    dtype = old_inputs[0].dtype if old_inputs else "float32"
    inp = keras.Input(shape=shape, dtype=dtype, name=in_name)
    if isinstance(model, keras.Sequential):
        out = flat.call_op(model, (inp,), {}, model.name)
    else:
        out = flat.inline(model, [inp], model.name)
    new = keras.Model(inp, out, name=model.name)
    for old, copy in flat.copies:
        copy.set_weights(old.get_weights())
        if hasattr(copy, "finalize_state"):  # Normalization recomputes its mean/variance
            copy.finalize_state()
        copy.trainable = old.trainable
    return new


# --------------------------------------------------------------------------- the graph


@dataclass(frozen=True)
class GNode:
    """One layer (or operation) call in the model's own graph.

    Attributes:
        name: The layer's name (unique in a flat model).
        layer: The layer object.
        kind: Its class name (``"Conv2D"``).
        parents: Names of the nodes whose outputs it reads, in argument order.
        inputs: The tensors it reads in this model.
        output: The (first) tensor it produces in this model.
    """

    name: str
    layer: object
    kind: str
    parents: tuple[str, ...]
    inputs: tuple
    output: object

    @property
    def rank(self) -> int:
        return len(self.output.shape)

    @property
    def is_softmax_layer(self) -> bool:
        """A ``Softmax`` or ``Activation("softmax")`` layer (not a Dense with a softmax)."""
        return self.kind == "Softmax" or (self.kind == "Activation"
                                          and self.activation == "softmax")

    @property
    def activation(self) -> str:
        """The layer's activation function name ('' when it has none)."""
        if self.kind == "ReLU":
            return "relu"
        act = getattr(self.layer, "activation", None)
        return getattr(act, "__name__", "") if act is not None else ""


@dataclass(frozen=True)
class Head:
    """How to get logits from the model.

    Attributes:
        pre: The pre-softmax tensor in this model (the last Dense layer's input when that
            Dense applies the softmax, else the logits themselves).
        to_logits: ``to_logits(pre) -> logits`` (traceable).
        dense: Name of the Dense layer whose softmax is folded into ``to_logits``, or None.
        logits_layer: Name of the layer producing the logits (or the probabilities, when the
            model only exposes those), for tapping.
        probabilities: True when the model outputs softmax probabilities.
    """

    pre: object
    to_logits: Callable
    dense: str | None
    logits_layer: str
    probabilities: bool


class Graph:
    """Structural questions about one flat functional model, answered from its own nodes."""

    def __init__(self, model) -> None:
        from keras import tree

        self._model = weakref.ref(model)  # the cache below is keyed by the model: no cycle
        self.inputs, self.outputs = list(model.inputs), list(model.outputs)
        nodes: list[GNode] = []
        producer: dict[int, str] = {}
        for node in _nodes_of(model):
            op = node.operation
            outs = tree.flatten(node.outputs)
            ins = tuple(node.input_tensors)
            g = GNode(op.name, op, type(op).__name__,
                      tuple(producer[id(t)] for t in ins if id(t) in producer), ins, outs[0])
            for t in outs:
                producer[id(t)] = op.name
            nodes.append(g)
        self.nodes = nodes
        self._by_name = {n.name: n for n in nodes}
        self._producer = producer
        self._children: dict[str, list[str]] = {n.name: [] for n in nodes}
        for n in nodes:
            for p in n.parents:
                self._children[p].append(n.name)

    @property
    def model(self):
        return self._model()

    # -- lookup
    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def node(self, name: str) -> GNode:
        """The node of layer ``name``; a ValueError lists a few valid names otherwise."""
        try:
            return self._by_name[name]
        except KeyError:
            some = ", ".join(n.name for n in self.nodes[1:6])
            raise ValueError(f"the model has no layer {name!r} (its layers include {some}, "
                             "...)") from None

    def layer(self, name: str):
        return self.node(name).layer

    def output(self, name: str):
        """The tensor layer ``name`` produces in this model."""
        return self.node(name).output

    def input(self, name: str):
        """The one tensor layer ``name`` reads in this model (ValueError for merge layers)."""
        ins = self.node(name).inputs
        if len(ins) != 1:
            raise ValueError(f"layer {name!r} reads {len(ins)} tensors, not one")
        return ins[0]

    def parents(self, name: str) -> list[str]:
        return list(self.node(name).parents)

    def children(self, name: str) -> list[str]:
        self.node(name)
        return list(self._children[name])

    def producer(self, tensor) -> str | None:
        """Name of the node producing ``tensor`` in this model, or None."""
        return self._producer.get(id(tensor))

    def output_shape(self, name: str) -> tuple:
        return tuple(self.output(name).shape)

    def layers(self, kinds: Sequence[str] | None = None) -> list[str]:
        """Names of the layer nodes (no InputLayer), optionally only those of some kinds."""
        return [n.name for n in self.nodes if n.kind != "InputLayer"
                and (kinds is None or n.kind in kinds)]

    # -- shape of the graph
    def chain(self) -> list | None:
        """The layers (no InputLayer) in order when each reads only the previous one's output
        and the last produces the model output; None when the model branches or merges."""
        prev = self.inputs[0] if len(self.inputs) == 1 else None
        out = []
        for n in self.nodes:
            if n.kind == "InputLayer":
                continue
            if len(n.inputs) != 1 or n.inputs[0] is not prev or len(self._children[n.name]) > 1:
                return None
            out.append(n.layer)
            prev = n.output
        if prev is None or len(self.outputs) != 1 or prev is not self.outputs[0]:
            return None
        return out

    def is_chain(self) -> bool:
        return self.chain() is not None

    def first_branch(self) -> str | None:
        """The first layer that reads several tensors or whose output feeds several layers."""
        for n in self.nodes:
            if len(n.inputs) > 1 or len(self._children[n.name]) > 1:
                return n.name
        return None

    def output_node(self) -> GNode:
        """The node producing the model's (first) output."""
        return self.node(self._producer[id(self.outputs[0])])

    def skip_back(self, name: str, kinds=PASS_THROUGH) -> str:
        """Walk from ``name`` towards the input while the node is of ``kinds`` (one parent)."""
        n = self.node(name)
        while n.kind in kinds and len(n.parents) == 1:
            n = self.node(n.parents[0])
        return n.name

    # -- conv layers
    def conv_layers(self) -> list[str]:
        """Convolutions with feature-map outputs, input to output (nested ones included)."""
        return [n.name for n in self.nodes if n.kind in CONV_KINDS and n.rank == 4]

    def spatial_layers(self) -> list[str]:
        """Every layer with a (batch, h, w, channels) output, input to output."""
        return [n.name for n in self.nodes if n.kind != "InputLayer" and n.rank == 4]

    def cam_layer(self) -> str | None:
        """The default layer for the CAM family: the last layer with feature-map output that is
        not a pooling, padding or pass-through layer, provided a convolution precedes it (so
        ``block5_conv3`` in VGG16, the last ``Activation`` after the residual ``Add`` in
        ResNet50, ``out_relu`` in MobileNetV2); None without convolutions."""
        first = next((i for i, n in enumerate(self.nodes)
                      if n.kind in CONV_KINDS and n.rank == 4), None)
        if first is None:
            return None
        # the first conv is itself a candidate, so the list is never empty
        return [n.name for n in self.nodes[first:] if n.rank == 4 and n.kind not in _NOT_CAM][-1]

    def cam_layers(self) -> list[str]:
        """Layers offered to the CAM family, input to output: every convolution, activation
        and merge (Add, Concatenate) with feature-map output, and the default layer."""
        default = self.cam_layer()
        return [n.name for n in self.nodes if n.rank == 4 and n.kind != "InputLayer" and (
            n.kind in CONV_KINDS or n.kind in _CAM_KINDS or n.name == default)]

    # -- classifier head
    def head(self, outputs_probabilities: bool | None = None) -> Head:
        """The pre-softmax tensor and the map to logits (see :class:`Head`).

        For a last ``Dense(softmax)`` the pre-softmax tensor is that layer's input and the map
        applies its kernel and bias (read, never changed). For a last ``Softmax`` or
        ``Activation("softmax")`` it is that layer's input (pass-through layers in between are
        skipped). A model that outputs logits is used as is; any other probability output falls
        back to log-probabilities (logits up to a per-image shift).
        """
        import tensorflow as tf

        last = self.output_node()
        if last.kind == "Dense" and last.activation == "softmax":
            dense = last.layer

            def to_logits(h, dense=dense):
                z = tf.matmul(h, dense.kernel)
                return z + dense.bias if dense.use_bias else z

            return Head(last.inputs[0], to_logits, last.name, last.name, True)
        if last.is_softmax_layer:
            src = self.skip_back(last.parents[0]) if last.parents else None
            return Head(last.inputs[0], lambda h: h, None, src or last.name, True)
        probs = self.outputs_probabilities() if outputs_probabilities is None \
            else outputs_probabilities
        if not probs:
            return Head(last.output, lambda h: h, None, last.name, False)
        return Head(last.output, lambda p: tf.math.log(p + 1e-12), None, last.name, True)

    def outputs_probabilities(self) -> bool:
        """True when the output layer applies a softmax."""
        last = self.output_node()
        return last.kind == "Softmax" or last.activation == "softmax"

    def logits_dense(self) -> GNode | None:
        """The Dense layer that computes the logits (softmax folded in, a linear Dense before a
        Softmax layer, or a linear Dense output), or None."""
        last = self.output_node()
        if last.kind == "Dense" and last.activation in ("softmax", "linear", ""):
            return last
        if last.is_softmax_layer:
            src = self.node(self.skip_back(last.parents[0]))
            if src.kind == "Dense" and src.activation in ("linear", ""):
                return src
        return None

    def cam_head(self) -> tuple[str, str] | None:
        """(feature layer, logits Dense) when the model ends in ``features ->
        GlobalAveragePooling2D -> [pass-through] -> Dense`` (CAM's architecture), else None."""
        dense = self.logits_dense()
        if dense is None or len(dense.parents) != 1:
            return None
        gap = self.node(self.skip_back(dense.parents[0]))
        if gap.kind != "GlobalAveragePooling2D" or getattr(gap.layer, "keepdims", False):
            return None
        if len(gap.parents) != 1 or self.node(gap.parents[0]).rank != 4:
            return None
        return gap.parents[0], dense.name

    def cam_refusal(self) -> str:
        """Why CAM does not apply, naming what follows the feature maps."""
        dense = self.logits_dense()
        if dense is None:
            last = self.output_node()
            return (f"CAM reads the class weights of a final Dense layer, but the model's output "
                    f"layer '{last.name}' is a {last.kind}. Use Grad-CAM, which generalises CAM "
                    "to any architecture.")
        path, cur = [], dense.parents[0] if dense.parents else None
        while cur is not None and self.node(cur).rank != 4:
            path.append(f"'{cur}' ({self.node(cur).kind})")
            ps = self.parents(cur)
            cur = ps[0] if len(ps) == 1 else None
        between = ", ".join(reversed(path)) or "nothing"
        return (f"CAM needs the last feature maps to go through global average pooling straight "
                f"into the final Dense layer '{dense.name}' (a 'GAP' model). Here the layers "
                f"between them are {between}, so the class weights cannot be read off per "
                "feature map. Use Grad-CAM, which generalises CAM to any architecture.")

    # -- taps
    def tap(self, names: Sequence[str], extra: Sequence = ()):
        """A functional model ``x -> [outputs of names..., *extra tensors]`` over the shared
        layers (single output unwrapped)."""
        import keras

        outs = [self.output(n) for n in names] + list(extra)
        return keras.Model(self.inputs, outs[0] if len(outs) == 1 else outs)


_GRAPHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def graph_of(model) -> Graph:
    """The cached :class:`Graph` of a (normalised) model."""
    with _LOCK:
        g = _GRAPHS.get(model)
        if g is None:
            g = Graph(model)
            _GRAPHS[model] = g
        return g
