"""The method base, the result types, the registry and the one entry point :func:`explain`.

Every method is a small :class:`Method` subclass in its own file (metadata as class attributes:
key, name, family, paper, note, cost, params; a ``run`` returning an :class:`Attribution`),
registered with :func:`register`. :func:`explain` resolves the target class and the layer,
validates the parameters, runs the method, times it and returns an :class:`Explanation`.

Compiled pieces come from the model's :class:`~vizcore.engine.Engine` (built once per model,
never mutating it); the method bases :mod:`vizcore.explain.cam_base` and
:mod:`vizcore.explain.gradient_base` hold the pipelines the families share.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from vizcore.engine import (  # noqa: F401  (the methods' toolbox, re-exported)
    MAX_BATCH_VALUES,
    Engine,
    Progress,
    cap_batch,
    class_score,
    compile_input_grad,
    finite,
    get_engine,
    normalize,
)

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


@dataclass
class Attribution:
    """What a method's :meth:`Method.run` returns (``explain`` wraps it in an Explanation).

    Attributes:
        heatmap: (H, W) float32 in [0, 1].
        signed: The raw signed map ((H, W) or (H, W, C)), or None.
        target: The resolved class index (never -1).
        layer: The layer the method actually used when it fixes one itself (CAM), else None.
        stats: Numbers worth showing beside the map (see :attr:`Explanation.stats`).
    """

    heatmap: np.ndarray
    signed: np.ndarray | None
    target: int
    layer: str | None = None
    stats: dict = field(default_factory=dict)


class Method:
    """Base of every attribution method: metadata as class attributes and one :meth:`run`.

    A method is one small file: a subclass setting the attributes below and ``run``, decorated
    with :func:`register`, plus one import line in ``vizcore/explain/__init__.py``.

    Attributes:
        key: Registry key (``"gradcam"``), also the method's module name.
        name: Display name (``"Grad-CAM"``).
        family: One of :data:`FAMILIES`.
        paper: Citation, given once: authors, year, title, arXiv id (or journal).
        note: Plain-language note for students: what the map shows and its known weaknesses.
        cost: The method's cost in passes (``"1 forward + 1 backward pass"``).
        params: Parameters with defaults (from the paper where it gives one) and ranges.
        uses_layer: True for methods that take a convolutional layer (CAM family).
        signed: True when the method returns a signed map.
        keep_tiny: True when a map with tiny values still means something (maps built from
            class probabilities, which are tiny for unlikely classes, and CAM's class-weighted
            maps): such maps are never blanked (see :data:`BLANK_PEAK`).
    """

    key: ClassVar[str] = ""
    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    note: ClassVar[str] = ""
    cost: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    uses_layer: ClassVar[bool] = False
    signed: ClassVar[bool] = True
    keep_tiny: ClassVar[bool] = False

    def run(self, engine: Engine, x: np.ndarray, target: int, layer: str | None,
            progress: Progress = None, **params) -> Attribution:
        """Explain ``target`` (-1: the predicted class) on one image ``x`` (H, W, C).

        ``layer`` is the checked layer for methods with :attr:`uses_layer`, else None;
        ``params`` holds every parameter of :attr:`params`, validated.
        """
        raise NotImplementedError

    def run_batch(self, engine: Engine, x: np.ndarray, target: int, layer: str | None,
                  **params) -> list[Attribution] | None:
        """:meth:`run` over a batch (N, H, W, C) in one compiled call, or None when the method
        has no batched form (then :func:`explain_batch` runs :meth:`run` per image)."""
        return None

    def applies(self, info) -> tuple[bool, str]:
        """Model-specific check beyond the layer check: (ok, reason naming what is missing)."""
        return True, ""

    def applies_to(self, info) -> tuple[bool, str]:
        """Whether the method can explain ``info``'s model, and if not, why (for the page)."""
        if self.uses_layer and not info.cam_layers():
            return False, (f"{self.name} needs a convolutional layer with feature-map output; "
                           f"this model ({len(info.graph.layers())} layers, nested models "
                           "included) has none.")
        return self.applies(info)

    def uses(self, info, layer: str | None) -> str:
        """What the method reads on ``info``'s model, for the overview table."""
        if self.uses_layer:
            return f"layer '{layer or info.cam_layer()}'"
        return {
            "lrp": f"all {len(info.graph.layers())} layers, output to input",
            "perturbation": "forward passes of perturbed images",
        }.get(self.family, "gradient of the class logit w.r.t. the input")

    def defaults(self) -> dict:
        """Default parameter values by name."""
        return {p.name: p.default for p in self.params}

    def __repr__(self) -> str:
        return f"<method {self.key}: {self.name}>"


REGISTRY: dict[str, Method] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: add (an instance of) a method to :data:`REGISTRY`.

    Raises:
        ValueError: an unknown family, a missing key, name, paper, note or cost, or a key that
            is already taken.
    """
    if cls.family not in FAMILIES:
        raise ValueError(f"{cls.__name__}: unknown family {cls.family!r}")
    missing = [a for a in ("key", "name", "paper", "note", "cost") if not getattr(cls, a)]
    if missing:
        raise ValueError(f"{cls.__name__} does not set {missing}")
    if cls.key in REGISTRY and type(REGISTRY[cls.key]) is not cls:
        raise ValueError(f"method key {cls.key!r} is already registered")
    REGISTRY[cls.key] = cls()
    return cls


def methods(info=None, family: str | None = None) -> list[Method]:
    """Registered methods in registry order, optionally only those of a family / applicable."""
    out = [s for s in REGISTRY.values() if family is None or s.family == family]
    if info is not None:
        out = [s for s in out if s.applies_to(info)[0]]
    return out


def get_method(key: str) -> Method:
    """The registered :class:`Method` for ``key``, or a KeyError listing the valid keys."""
    try:
        return REGISTRY[key]
    except KeyError:
        raise KeyError(f"unknown method {key!r}; choose one of {list(REGISTRY)}") from None


# --------------------------------------------------------------------------- helpers


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


def _prepare(info, shape: tuple, method: str, target: int | None, layer: str | None,
             params: dict) -> tuple[Method, Engine, dict, str | None]:
    """Check a request before anything runs: (method, engine, validated params, layer)."""
    spec = get_method(method)
    ok, reason = spec.applies_to(info)
    if not ok:
        raise ValueError(reason)
    engine = get_engine(info)
    if tuple(shape) != engine.input_shape:
        raise ValueError(f"expected one image of shape {engine.input_shape}, got {tuple(shape)}")
    known = {p.name: p for p in spec.params}
    unknown = set(params) - set(known)
    if unknown:
        raise TypeError(f"{method} has no parameter(s) {sorted(unknown)}; it takes {list(known)}")
    used = {name: p.validate(params.get(name, p.default)) for name, p in known.items()}
    if target is not None and not 0 <= int(target) < engine.num_classes:
        raise ValueError(f"target {target} is outside 0..{engine.num_classes - 1}")
    lyr = resolve_layer(engine, layer) if spec.uses_layer else None
    return spec, engine, used, lyr


def _finish(spec: Method, res: Attribution, used: dict, layer: str | None,
            seconds: float) -> Explanation:
    """An :class:`Attribution` as the :class:`Explanation` every caller gets: the heatmap
    clipped to [0, 1], a numerically zero signed map blanked (see :data:`BLANK_PEAK`)."""
    heat, signed = res.heatmap, res.signed
    stats = dict(res.stats)
    heat = np.clip(finite(np.asarray(heat, np.float32)), 0.0, 1.0)
    if signed is not None:
        peak = float(np.abs(finite(np.asarray(signed, np.float32))).max(initial=0.0))
        stats.setdefault("peak", peak)
        if peak < BLANK_PEAK and not spec.keep_tiny:
            # min-max scaling would paint float rounding noise as evidence
            heat = np.zeros_like(heat)
            stats["blank"] = True
    # methods with a fixed layer (CAM) report it
    return Explanation(heat, int(res.target), spec.key, signed, res.layer or layer, used,
                       seconds, stats)


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
    x = np.asarray(x, dtype=np.float32)
    spec, engine, used, lyr = _prepare(info, x.shape, method, target, layer, params)
    t0 = time.perf_counter()
    res = spec.run(engine, x, -1 if target is None else int(target), lyr, progress, **used)
    seconds = time.perf_counter() - t0
    if progress is not None:
        progress(1.0)
    return _finish(spec, res, used, lyr, seconds)


def explain_batch(
    info,
    images: np.ndarray,
    method: str,
    target: int | None = None,
    layer: str | None = None,
    batch_size: int = 64,
    **params,
) -> list[Explanation]:
    """:func:`explain` for many images: the same maps, computed in batches where the method can.

    Methods whose whole computation is one compiled pass over a batch and whose map does not
    hinge on float rounding (the gradient CAMs: Grad-CAM, Grad-CAM++, Layer-CAM) run
    ``batch_size`` images per call of the very function :func:`explain` calls with one image;
    the others call :func:`explain` image by image. Either way each map equals the one
    :func:`explain` (and so the app) gives for that image. Input gradients are not batched: a
    batch of 1 and a batch of 2 sum a convolution in different orders, and where two activations
    in a max-pooling window tie up to the last bit the gradient is routed to the other one, which
    moved single saliency pixels by up to a fifth of the map's range on Fashion-MNIST.

    Args:
        info: The ``ModelInfo``.
        images: (N, H, W, C) float32 in the model's input range.
        method: A registry key.
        target: One class for every image; None explains each image's predicted class.
        layer: As for :func:`explain`.
        batch_size: Images per pass, capped by the engine's memory budget.
        **params: The method's parameters.

    Returns:
        One :class:`Explanation` per image; ``seconds`` is each image's share of its batch.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"expected a batch (N, H, W, C), got shape {images.shape}")
    spec, engine, used, lyr = _prepare(info, images.shape[1:], method, target, layer, params)
    tgt = -1 if target is None else int(target)
    out: list[Explanation] = []
    bs = engine.cap_batch(batch_size)
    for i in range(0, len(images), bs):
        chunk = images[i : i + bs]
        t0 = time.perf_counter()
        results = spec.run_batch(engine, chunk, tgt, lyr, **used)
        if results is None:  # not batchable: one image at a time
            out.extend(explain(info, x, method, target, layer, **params) for x in chunk)
            continue
        each = (time.perf_counter() - t0) / len(chunk)
        out.extend(_finish(spec, r, used, lyr, each) for r in results)
    return out


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
    for spec in REGISTRY.values():
        ok, reason = spec.applies_to(info)
        rows.append({"key": spec.key, "name": spec.name, "family": spec.family, "runs": ok,
                     "uses": spec.uses(info, layer) if ok else "", "reason": reason})
    return rows
