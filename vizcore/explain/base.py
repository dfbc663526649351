"""The common result type, the registry of attribution methods and the per-model engine cache.

Every method is registered once as a :class:`MethodSpec` (key, display name, family, paper, a
plain-language note, parameters with defaults from the paper, an ``applies_to`` check and the
function). :func:`explain` is the one public entry point: it resolves the target class and the
layer, runs the method, times it and returns an :class:`Explanation`.

Compiled pieces (tapped models, ``tf.function``\\ s with fixed input signatures, guided clones) are
built once per model and cached in an :class:`Engine`, looked up by :func:`get_engine` through a
weak mapping keyed by the :class:`~vizcore.models.ModelInfo`. The shared Keras model is never
mutated: the "linear head" is computed from the last Dense layer's pre-activation (reading its
weights, not changing them), and methods that need a changed network build and cache a clone.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Progress = Callable[[float], None] | None

FAMILIES = ("gradient", "cam", "lrp", "perturbation")


# --------------------------------------------------------------------------- result


@dataclass
class Explanation:
    """One attribution map for one image and one target class.

    Attributes:
        heatmap: (H, W) float32 in [0, 1] at the input's resolution; 1 = most important.
        target: The explained class index.
        method: Registry key of the method.
        signed: The raw signed map where the method has one ((H, W) or (H, W, C)), else None.
        layer: The layer used (CAM family, Guided Grad-CAM), else None.
        params: The parameters actually used (defaults filled in).
        seconds: Wall time of the computation.
        stats: Method-specific numbers worth showing beside the map (LRP: the explained score,
            the relevance the map holds and the relevance the biases absorbed).
    """

    heatmap: np.ndarray
    target: int
    method: str
    signed: np.ndarray | None = None
    layer: str | None = None
    params: dict = field(default_factory=dict)
    seconds: float = 0.0
    stats: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Param:
    """A method parameter, described so that a UI can build a widget for it.

    Attributes:
        name: Keyword name passed to :func:`explain`.
        default: Default value (from the method's paper where it gives one).
        kind: ``"int"``, ``"float"``, ``"choice"`` or ``"bool"``.
        low: Lower bound for numbers.
        high: Upper bound for numbers.
        choices: Allowed values for ``"choice"``.
        log: True when a log-scale slider suits the number.
        help: One sentence for the widget's tooltip.
        advanced: True for parameters a UI may hide by default.
    """

    name: str
    default: Any
    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    log: bool = False
    help: str = ""
    advanced: bool = False

    def validate(self, value: Any) -> Any:
        """Return ``value`` converted to the parameter's type, or raise ValueError."""
        if self.kind == "int":
            value = int(value)
        elif self.kind == "float":
            value = float(value)
        elif self.kind == "bool":
            return bool(value)
        elif self.kind == "choice":
            if value not in self.choices:
                raise ValueError(f"{self.name} must be one of {list(self.choices)}, not {value!r}")
            return value
        if self.low is not None and value < self.low or self.high is not None and value > self.high:
            raise ValueError(f"{self.name}={value} is outside [{self.low}, {self.high}]")
        return value


@dataclass(frozen=True)
class MethodSpec:
    """One registered attribution method.

    Attributes:
        key: Registry key (``"gradcam"``).
        name: Display name (``"Grad-CAM"``).
        family: One of :data:`FAMILIES`.
        paper: Citation: authors, year, title, arXiv id.
        note: Plain-language note for students: what the map shows and its known weaknesses.
        cost: The method's cost in passes (``"1 forward + 1 backward pass"``).
        fn: ``fn(engine, x, target, layer, progress, **params) -> (heatmap, signed, target)``
            (optionally a 4th item: the layer used, or None; and a 5th: a dict of stats for
            :attr:`Explanation.stats`) where the ``target`` passed in may be -1 for "the
            predicted class" and the returned one is resolved.
        params: Parameters with defaults and ranges.
        uses_layer: True for methods that take a convolutional layer (CAM family).
        applies: ``applies(info) -> (ok, reason)``; None means "applies to every model".
        signed: True when the method returns a signed map.
        keep_tiny: True when a map with tiny values still means something (maps built from
            class probabilities, which are tiny for unlikely classes, and CAM's class-weighted
            maps): such maps are never blanked (see :data:`BLANK_PEAK`).
    """

    key: str
    name: str
    family: str
    paper: str
    note: str
    cost: str
    fn: Callable
    params: tuple[Param, ...] = ()
    uses_layer: bool = False
    applies: Callable | None = None
    signed: bool = False
    keep_tiny: bool = False

    def defaults(self) -> dict:
        """Default parameter values by name."""
        return {p.name: p.default for p in self.params}

    def applies_to(self, info) -> tuple[bool, str]:
        """Whether the method can explain ``info``'s model, and if not, why (for the page)."""
        if self.uses_layer and not info.cam_layers():
            return False, (f"{self.name} needs a convolutional layer with feature-map output; "
                           f"this model ({len(info.graph.layers())} layers, nested models "
                           "included) has none.")
        if self.applies is None:
            return True, ""
        return self.applies(info)


REGISTRY: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
    """Add a method to :data:`REGISTRY` (one line per method in its family module)."""
    if spec.family not in FAMILIES:
        raise ValueError(f"unknown family {spec.family!r}")
    REGISTRY[spec.key] = spec
    return spec


def methods(info=None, family: str | None = None) -> list[MethodSpec]:
    """Registered methods in registry order, optionally only those of a family / applicable."""
    out = [s for s in REGISTRY.values() if family is None or s.family == family]
    if info is not None:
        out = [s for s in out if s.applies_to(info)[0]]
    return out


def get_method(key: str) -> MethodSpec:
    """The :class:`MethodSpec` for ``key``, or a KeyError listing the valid keys."""
    try:
        return REGISTRY[key]
    except KeyError:
        raise KeyError(f"unknown method {key!r}; choose one of {list(REGISTRY)}") from None


# --------------------------------------------------------------------------- engine


class Engine:
    """Compiled, cached pieces for explaining one model; never mutates the model.

    Holds the model and what the methods need to know about it (not the ``ModelInfo`` itself,
    so that the weak cache in :func:`get_engine` can free it). Pieces are built lazily through
    :meth:`cached` under a lock, once per process.
    """

    def __init__(self, info) -> None:
        self.model = info.model
        self.scaling: str = info.scaling
        self.input_shape: tuple[int, int, int] = tuple(info.input_shape)
        self.num_classes: int = info.num_classes
        self.outputs_probabilities: bool = bool(info.outputs_probabilities)
        self.graph = info.graph
        self.cam_layers: list[str] = list(info.cam_layers())
        self.default_layer: str | None = info.cam_layer()
        self._cache: dict = {}
        self._lock = threading.RLock()
        self._head = None
        self._clones: list = []

    # -- caching
    def cached(self, key, build: Callable[[], Any]) -> Any:
        """Return the cached piece ``key``, building it with ``build()`` the first time."""
        with self._lock:
            if key not in self._cache:
                self._cache[key] = build()
            return self._cache[key]

    def clear(self) -> None:
        """Drop every cached piece (used after the weights of a private copy changed)."""
        with self._lock:
            self._cache.clear()
            self._head = None
            self._clones = []

    # -- specs
    def spec_batch(self):
        """``tf.TensorSpec`` of a batch of inputs, (None, H, W, C) float32."""
        import tensorflow as tf

        return tf.TensorSpec([None, *self.input_shape], tf.float32)

    def spec_image(self):
        """``tf.TensorSpec`` of one input, (H, W, C) float32."""
        import tensorflow as tf

        return tf.TensorSpec(list(self.input_shape), tf.float32)

    # -- the linear head
    def head(self):
        """(pre_tensor, to_logits) of :func:`linear_head` for the shared model, cached."""
        with self._lock:
            if self._head is None:
                self._head = linear_head(self.model, self.outputs_probabilities)
            return self._head

    def add_clone(self, clone) -> None:
        """Remember a private clone so :meth:`sync_clones` can refresh its weights."""
        with self._lock:
            self._clones.append(clone)

    def sync_clones(self) -> None:
        """Copy the model's current weights into every private clone (after the weights of a
        private model copy changed, e.g. in the randomisation check)."""
        with self._lock:
            if self._clones:
                weights = self.model.get_weights()
                for clone in self._clones:
                    clone.set_weights(weights)

    def tapped(self, layer: str | None):
        """A functional model ``x -> [layer output, pre-softmax tensor]`` (or just the latter
        for ``layer=None``) over the shared layers, built once. Apply :meth:`head` to the last
        output to get logits."""

        def build():
            pre, _ = self.head()
            return self.graph.tap([] if layer is None else [layer], [pre])

        return self.cached(("tapped", layer), build)

    def logits_fn(self):
        """Compiled ``x (B,H,W,C) -> logits (B,K)``."""

        def build():
            import tensorflow as tf

            tap, (_, to_logits) = self.tapped(None), self.head()

            @tf.function(input_signature=[self.spec_batch()], autograph=False)
            def logits(x):
                return to_logits(tap(x, training=False))

            return logits

        return self.cached("logits", build)

    def input_grad_fn(self):
        """Compiled ``(x (B,H,W,C), cls int32) -> (d logit_cls / dx, logits)``; ``cls = -1``
        means each row's predicted class. One forward and one backward pass per row."""

        def build():
            _, to_logits = self.head()
            return compile_input_grad(self, self.tapped(None), to_logits)

        return self.cached("input_grad", build)

    def predicted(self, x: np.ndarray) -> int:
        """Predicted class of one image (one forward pass)."""
        return int(np.argmax(self.logits_fn()(np.asarray(x, np.float32)[None]).numpy()[0]))

    # -- input range
    def input_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lowest and highest model-range value of each input channel, shape (C,) each."""
        from vizcore.models import scale_pixels

        c = self.input_shape[-1]
        lo = scale_pixels(np.zeros((1, 1, c), np.uint8), self.scaling).reshape(-1)
        hi = scale_pixels(np.full((1, 1, c), 255, np.uint8), self.scaling).reshape(-1)
        return np.minimum(lo, hi).astype(np.float32), np.maximum(lo, hi).astype(np.float32)

    def black(self) -> np.ndarray:
        """A black image in model range, (H, W, C) float32."""
        from vizcore.models import scale_pixels

        return scale_pixels(np.zeros(self.input_shape, np.uint8), self.scaling).astype(np.float32)


def linear_head(model, outputs_probabilities: bool | None = None):
    """The pre-softmax tensor of ``model`` and a function from it to logits.

    See :meth:`vizcore.graph.Graph.head`: for a last ``Dense(softmax)`` the pre-softmax tensor
    is that layer's input and the function applies its kernel and bias (read, not changed); for a
    last ``Softmax``/``Activation("softmax")`` layer it is that layer's input; a model that
    outputs logits is used as is; any other probability output falls back to log-probabilities.

    Returns:
        (pre_tensor, to_logits)
    """
    from vizcore.graph import graph_of

    head = graph_of(model).head(outputs_probabilities)
    return head.pre, head.to_logits


def compile_input_grad(engine: Engine, forward, to_logits):
    """Compiled ``(x (B,H,W,C), cls int32) -> (d logit_cls / dx, logits)`` through ``forward``
    (a Keras model ending at the pre-softmax tensor) and ``to_logits``; ``cls = -1`` means each
    row's predicted class."""
    import tensorflow as tf

    @tf.function(
        autograph=False, input_signature=[engine.spec_batch(), tf.TensorSpec([], tf.int32)]
    )
    def grad(x, cls):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x)
            logits = to_logits(forward(x, training=False))
            score = class_score(logits, cls)
        return tape.gradient(score, x), logits

    return grad


def class_score(logits, cls):
    """Sum over the batch of each row's logit for ``cls`` (or its argmax where ``cls < 0``)."""
    import tensorflow as tf

    idx = tf.where(
        cls < 0,
        tf.argmax(logits, axis=-1, output_type=tf.int32),
        tf.fill(tf.shape(logits)[:1], cls),
    )
    return tf.reduce_sum(tf.gather(logits, idx, axis=1, batch_dims=1))


_ENGINES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_ENGINES_LOCK = threading.Lock()


def get_engine(info) -> Engine:
    """The cached :class:`Engine` of a ``ModelInfo`` (built on first use)."""
    with _ENGINES_LOCK:
        eng = _ENGINES.get(info)
        if eng is None or eng.model is not info.model:
            eng = Engine(info)
            _ENGINES[info] = eng
        return eng


# --------------------------------------------------------------------------- helpers


def normalize(m: np.ndarray) -> np.ndarray:
    """Min-max scale a map to [0, 1] float32 (a constant map becomes zeros); NaN -> 0."""
    m = np.nan_to_num(np.asarray(m, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(m.min()), float(m.max())
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        return np.zeros_like(m, dtype=np.float32)
    return ((m - lo) / (hi - lo)).astype(np.float32)


#: Perturbation batches hold at most this many input values (32 images of 224x224x3).
MAX_BATCH_VALUES = 32 * 224 * 224 * 3


def cap_batch(engine: Engine, batch_size: int) -> int:
    """``batch_size`` capped so one batch holds at most :data:`MAX_BATCH_VALUES` input values."""
    per_image = int(np.prod(engine.input_shape))
    return int(max(1, min(int(batch_size), MAX_BATCH_VALUES // per_image)))


def resolve_layer(engine: Engine, layer: str | None) -> str:
    """The layer name to use: ``layer`` if given (checked), else the default CAM layer (the
    output of the last conv block, nested models included)."""
    if layer is None:
        if engine.default_layer is None:
            raise ValueError("this model has no convolutional layer")
        return engine.default_layer
    if layer not in engine.graph:
        near = ", ".join(engine.cam_layers[-5:])
        raise ValueError(f"the model has no layer {layer!r}; its last conv layers are {near}")
    shape = engine.graph.output_shape(layer)
    if len(shape) != 4:
        raise ValueError(
            f"layer {layer!r} outputs shape {shape}, not feature maps (batch, h, w, channels); "
            f"choose a conv layer such as {engine.default_layer!r}"
        )
    return layer


def explain(
    info,
    x: np.ndarray,
    method: str,
    target: int | None = None,
    layer: str | None = None,
    progress: Progress = None,
    **params,
) -> Explanation:
    """Explain the model's score for ``target`` on one image with one registered method.

    Args:
        info: The :class:`~vizcore.models.ModelInfo` (its model is never changed).
        x: One image, (H, W, C) float32 in the model's input range.
        method: A key of :data:`REGISTRY` (see :func:`methods`).
        target: Class index to explain; None explains the predicted class.
        layer: Convolutional layer for the CAM family; None = last conv layer. Ignored by
            methods that do not use a layer.
        progress: Optional callback receiving the completed fraction in [0, 1].
        **params: Method parameters (see ``REGISTRY[method].params``); missing ones take their
            defaults, unknown ones raise TypeError.

    Returns:
        The :class:`Explanation` (heatmap (H, W) in [0, 1] at input resolution).

    Raises:
        KeyError: unknown method. ValueError: the method does not apply to this model, a bad
        input shape, layer, target or parameter value.
    """
    spec = get_method(method)
    ok, reason = spec.applies_to(info)
    if not ok:
        raise ValueError(reason)
    engine = get_engine(info)
    x = np.asarray(x, dtype=np.float32)
    if x.shape != engine.input_shape:
        raise ValueError(f"expected one image of shape {engine.input_shape}, got {x.shape}")
    known = {p.name: p for p in spec.params}
    unknown = set(params) - set(known)
    if unknown:
        raise TypeError(f"{method} has no parameter(s) {sorted(unknown)}; it takes {list(known)}")
    used = {name: p.validate(params.get(name, p.default)) for name, p in known.items()}
    if target is not None and not 0 <= int(target) < engine.num_classes:
        raise ValueError(f"target {target} is outside 0..{engine.num_classes - 1}")
    lyr = resolve_layer(engine, layer) if spec.uses_layer else None
    t0 = time.perf_counter()
    out = spec.fn(engine, x, -1 if target is None else int(target), lyr, progress, **used)
    heat, signed, tgt = out[:3]
    if len(out) > 3 and out[3] is not None:  # methods with a fixed layer (CAM) report it
        lyr = out[3]
    stats = dict(out[4]) if len(out) > 4 and out[4] else {}
    seconds = time.perf_counter() - t0
    if progress is not None:
        progress(1.0)
    heat = np.clip(np.nan_to_num(np.asarray(heat, np.float32)), 0.0, 1.0)
    if signed is not None:
        peak = float(np.nan_to_num(np.abs(np.asarray(signed, np.float32))).max(initial=0.0))
        stats.setdefault("peak", peak)
        if peak < BLANK_PEAK and not spec.keep_tiny:
            # min-max scaling would paint float rounding noise as evidence
            heat = np.zeros_like(heat)
            stats["blank"] = True
    return Explanation(heat, int(tgt), method, signed, lyr, used, seconds, stats)


#: A signed map whose largest magnitude is below this is numerically zero (a dead network, a
#: saturated softmax, a class with no evidence): its heatmap is all zeros and ``stats["blank"]``
#: is set, instead of min-max scaling float rounding noise into a confident-looking picture.
BLANK_PEAK = 1e-9


def method_plan(info, layer: str | None = None) -> list[dict]:
    """What every registered method would do on ``info``'s model, before anything heavy runs.

    Returns:
        One dict per method, in registry order: ``key``, ``name``, ``family``, ``runs`` (bool),
        ``uses`` (the layer a CAM reads, or what the method differentiates / propagates through)
        and ``reason`` (why it does not apply, naming the layer; '' when it runs).
    """
    rows = []
    default = info.cam_layer()
    for spec in REGISTRY.values():
        ok, reason = spec.applies_to(info)
        if not ok:
            uses = ""
        elif spec.key == "cam":
            feat, dense = info.graph.cam_head()
            uses = f"layer '{feat}' and the weights of '{dense}'"
        elif spec.uses_layer:
            uses = f"layer '{layer or default}'"
        elif spec.family == "lrp":
            uses = f"all {len(info.graph.layers())} layers, output to input"
        elif spec.family == "perturbation":
            uses = "forward passes of perturbed images"
        else:
            uses = "gradient of the class logit w.r.t. the input"
        rows.append({"key": spec.key, "name": spec.name, "family": spec.family, "runs": ok,
                     "uses": uses, "reason": reason})
    return rows
