"""The per-model service: one cache of compiled pieces and model variants for each model.

Every feature that runs a model (explanations, faithfulness and sanity metrics, adversarial
examples, activation maximization, feature maps, patches, embeddings) asks :func:`get_engine`
for the model's :class:`Engine` and takes its compiled pieces from there:

- ``logits_fn`` / ``probs_fn`` / ``forward_fn``: batch -> logits, softmax of the logits, the
  model's own output turned into probabilities;
- ``acts_fn(layer)``: batch -> (feature maps of ``layer``, logits);
- ``tap_fn(names)``: batch -> outputs of the named layers;
- ``input_grad_fn``: (batch, class) -> (d logit / d input, logits);
- model variants: ``guided()`` (ReLUs pass only positive gradients) and ``working_copy()`` (a
  private copy whose weights may be changed, e.g. randomised).

Pieces are built lazily, once per model, inside :meth:`Engine.cached` under the engine's lock,
so two sessions of the app never race a ``tf.function`` trace or a Keras build. The shared Keras
model is never mutated. The engine lives on the model object itself, so it is freed with the
model (an uploaded model is released when nothing holds it any more).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Progress = Callable[[float], None] | None

def memory_limit() -> int:
    """Bytes of memory this process may use: the cgroup limit (a container, hosted Streamlit)
    when there is one, else the machine's physical memory."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = open(path).read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 50:
            return int(text)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


#: "hosted" on a small server (under 4 GiB, as Streamlit Community Cloud's 2.7 GB) or when
#: ``VIZCORE_PROFILE=hosted``; else "local". The hosted profile caps batches at 8 images of
#: 224x224x3 (a VGG16 batch of 32 needs about 2 GB of activations), local at 32.
PROFILE = os.environ.get("VIZCORE_PROFILE") or ("hosted" if memory_limit() < 4 << 30
                                                else "local")

#: Perturbation batches hold at most this many input values.
MAX_BATCH_VALUES = (8 if PROFILE == "hosted" else 32) * 224 * 224 * 3


def finite(m: np.ndarray, **replace) -> np.ndarray:
    """``np.nan_to_num(m, **replace)``, but ``m`` itself when every value is finite (the usual
    case, checked in one pass instead of ``nan_to_num``'s four)."""
    if np.isfinite(m).all():
        return m
    return np.nan_to_num(m, **replace)


def normalize(m: np.ndarray) -> np.ndarray:
    """Min-max scale a map to [0, 1] float32 (a constant map becomes zeros); NaN -> 0."""
    m = finite(np.asarray(m, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(m.min()), float(m.max())
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        return np.zeros_like(m, dtype=np.float32)
    return ((m - lo) / (hi - lo)).astype(np.float32)


class Engine:
    """Compiled, cached pieces for one model; never mutates the model.

    Attributes:
        model: The shared functional Keras model.
        graph: Its :class:`vizcore.graph.Graph`.
        scaling: Input scaling (see :data:`vizcore.models.SCALINGS`), or None if unknown.
        input_shape: (H, W, C).
        num_classes: Output units.
        outputs_probabilities: True when the model's output is a softmax.
        cam_layers: Layers a CAM can read; default_layer: the default one (or None).
    """

    def __init__(self, model, scaling: str | None = None,
                 outputs_probabilities: bool | None = None) -> None:
        from vizcore.graph import graph_of

        self.model = model
        self.graph = graph_of(model)
        self.scaling = scaling
        self.input_shape: tuple[int, int, int] = tuple(int(d) for d in model.inputs[0].shape[1:])
        self.num_classes: int = int(model.outputs[0].shape[-1])
        if outputs_probabilities is None:
            outputs_probabilities = self.graph.outputs_probabilities()
        self.outputs_probabilities = bool(outputs_probabilities)
        self.cam_layers: list[str] = list(self.graph.cam_layers())
        self.default_layer: str | None = self.graph.cam_layer()
        self._cache: dict = {}
        self._lock = threading.RLock()
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

    # -- the linear head and taps
    def head(self):
        """(pre_tensor, to_logits) of the model's classifier head (see
        :meth:`vizcore.graph.Graph.head`), cached."""

        def build():
            head = self.graph.head(self.outputs_probabilities)
            return head.pre, head.to_logits

        return self.cached("head", build)

    def tapped(self, layer: str | None):
        """A functional model ``x -> [layer output, pre-softmax tensor]`` (or just the latter
        for ``layer=None``) over the shared layers, built once. Apply :meth:`head`'s
        ``to_logits`` to the last output to get logits."""

        def build():
            pre, _ = self.head()
            return self.graph.tap([] if layer is None else [layer], [pre])

        return self.cached(("tapped", layer), build)

    def trunk(self):
        """``(forward, to_logits)``: the model up to its pre-softmax tensor and the map from
        there to logits, the pair most compiled pieces start from."""
        return self.tapped(None), self.head()[1]

    # -- standard compiled pieces
    def logits_fn(self):
        """Compiled ``x (B,H,W,C) -> logits (B,K)``."""

        def build():
            import tensorflow as tf

            forward, to_logits = self.trunk()

            @tf.function(input_signature=[self.spec_batch()], autograph=False)
            def logits(x):
                return to_logits(forward(x, training=False))

            return logits

        return self.cached("logits", build)

    def probs_fn(self):
        """Compiled ``x (B,H,W,C) -> softmax of the logits (B,K)``."""

        def build():
            import tensorflow as tf

            forward, to_logits = self.trunk()

            @tf.function(input_signature=[self.spec_batch()], autograph=False)
            def probs(x):
                return tf.nn.softmax(to_logits(forward(x, training=False)), axis=-1)

            return probs

        return self.cached("probs", build)

    def forward_fn(self):
        """Compiled ``x (B,H,W,C) -> class probabilities (B,K)`` from the model's own output
        (its softmax, or a softmax over the logits it returns)."""

        def build():
            import tensorflow as tf

            model, probabilities = self.model, self.outputs_probabilities

            @tf.function(input_signature=[self.spec_batch()])
            def forward(x):
                y = model(x, training=False)
                return y if probabilities else tf.nn.softmax(y, axis=-1)

            return forward

        return self.cached("forward", build)

    def acts_fn(self, layer: str):
        """Compiled ``x (B,H,W,C) -> (outputs of layer, logits)``."""

        def build():
            import tensorflow as tf

            tap, (_, to_logits) = self.tapped(layer), self.head()

            @tf.function(autograph=False, input_signature=[self.spec_batch()])
            def run(x):
                a, pre = tap(x, training=False)
                return a, to_logits(pre)

            return run

        return self.cached(("acts", layer), build)

    def tap_fn(self, names: Sequence[str]):
        """Compiled ``x (B,H,W,C) -> outputs of the named layers`` (one tensor for one name).

        Raises:
            KeyError: a name that is not a layer of the model.
        """
        key = tuple(names)
        missing = [n for n in key if n not in self.graph]
        if missing:
            raise KeyError(f"no layer named {missing[0]!r} in model {self.model.name!r}")

        def build():
            import tensorflow as tf

            tap = self.graph.tap(key)

            @tf.function(input_signature=[self.spec_batch()])
            def run(x):
                return tap(x, training=False)

            return run

        return self.cached(("tap", key), build)

    def input_grad_fn(self):
        """Compiled ``(x (B,H,W,C), cls int32) -> (d logit_cls / dx, logits)``; ``cls = -1``
        means each row's predicted class. One forward and one backward pass per row."""
        return self.cached("input_grad", lambda: compile_input_grad(self, *self.trunk()))

    # -- numpy conveniences
    def predicted(self, x: np.ndarray) -> int:
        """Predicted class of one image (one forward pass)."""
        return int(np.argmax(self.logits_fn()(np.asarray(x, np.float32)[None]).numpy()[0]))

    def probabilities(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Class probabilities (N, K) of a float32 batch (or one image) in model range."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        fn = self.forward_fn()
        out = [fn(x[i : i + batch_size]).numpy() for i in range(0, len(x), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.num_classes), np.float32)

    def activations(self, names: Sequence[str], x: np.ndarray,
                    batch_size: int = 128) -> dict[str, np.ndarray]:
        """Outputs of the named layers for a float32 batch (N, H, W, C) in model range."""
        fn = self.tap_fn(names)
        x = np.asarray(x, np.float32)
        parts: list[list[np.ndarray]] = [[] for _ in names]
        for i in range(0, len(x), batch_size):
            outs = fn(x[i : i + batch_size])
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            for p, o in zip(parts, outs):
                p.append(o.numpy())
        return {n: np.concatenate(p) for n, p in zip(names, parts)}

    # -- input range
    def input_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lowest and highest model-range value of each input channel, shape (C,) each."""
        from vizcore.models import input_bounds

        return input_bounds(self.scaling or "0..1", self.input_shape[-1])

    def black(self) -> np.ndarray:
        """A black image in model range, (H, W, C) float32."""
        from vizcore.models import scale_pixels

        return scale_pixels(np.zeros(self.input_shape, np.uint8),
                            self.scaling or "0..1").astype(np.float32)

    def cap_batch(self, batch_size: int) -> int:
        """``batch_size`` capped so one batch holds at most :data:`MAX_BATCH_VALUES` values."""
        per_image = int(np.prod(self.input_shape))
        return int(max(1, min(int(batch_size), MAX_BATCH_VALUES // per_image)))

    # -- model variants
    def guided(self):
        """``(forward, to_logits)`` of a clone of the model (its own weights copy) whose ReLUs
        pass only positive gradients to positive inputs (guided backpropagation), built once.
        The shared model is untouched."""

        def build():
            import keras

            clone = keras.models.clone_model(self.model)
            clone.set_weights(self.model.get_weights())
            g, g6 = guided_relu(), guided_relu(6.0)
            for lyr in clone.layers:
                act = getattr(lyr, "activation", None)
                name = getattr(act, "__name__", "") if act is not None else ""
                if name in ("relu", "relu6"):
                    lyr.activation = g if name == "relu" else g6
                elif type(lyr).__name__ == "ReLU" and not lyr.negative_slope and not lyr.threshold:
                    fn = g if lyr.max_value is None else guided_relu(float(lyr.max_value))
                    lyr.call = lambda inputs, *a, _g=fn, **k: _g(inputs)
            with self._lock:
                self._clones.append(clone)
            from vizcore.graph import graph_of

            head = graph_of(clone).head(self.outputs_probabilities)
            return keras.Model(clone.inputs[0], head.pre), head.to_logits

        return self.cached("guided", build)

    def sync_clones(self) -> None:
        """Copy the model's current weights into every private clone (after the weights of a
        private model copy changed, e.g. in the randomisation check)."""
        with self._lock:
            if self._clones:
                weights = self.model.get_weights()
                for clone in self._clones:
                    clone.set_weights(weights)

    def working_copy(self):
        """``(model, lock)``: a private copy of the model whose weights a caller may change
        while holding ``lock`` (the randomisation check), built once."""

        def build():
            import keras

            model = keras.models.clone_model(self.model)
            model.set_weights(self.model.get_weights())
            return model, threading.Lock()

        return self.cached("working_copy", build)


def guided_relu(cap: float | None = None):
    """ReLU (capped at ``cap`` when given, as ReLU6 is) whose gradient passes only positive
    gradients, and only where the unit is active (0 < x < cap)."""
    import tensorflow as tf

    @tf.autograph.experimental.do_not_convert
    @tf.custom_gradient
    def relu(x):
        def grad(dy):
            open_ = tf.cast(x > 0, dy.dtype)
            if cap is not None:
                open_ *= tf.cast(x < cap, dy.dtype)
            return dy * tf.cast(dy > 0, dy.dtype) * open_

        y = tf.nn.relu(x)
        return (y if cap is None else tf.minimum(y, cap)), grad

    return relu


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


_ENGINES_LOCK = threading.Lock()
_ATTR = "_vizcore_engine"


def get_engine(info_or_model) -> Engine:
    """The :class:`Engine` of a :class:`~vizcore.models.ModelInfo` or a Keras model, built on
    first use and kept on the model object (so it is freed with the model).

    An engine first built from a bare model learns the scaling from the first ``ModelInfo``
    that asks; a ``ModelInfo`` that disagrees with an engine's scaling or head gets a fresh one.
    """
    model = getattr(info_or_model, "model", info_or_model)
    scaling = getattr(info_or_model, "scaling", None)
    probs = getattr(info_or_model, "outputs_probabilities", None)
    with _ENGINES_LOCK:
        eng = getattr(model, _ATTR, None)
        if eng is not None and scaling is not None and eng.scaling not in (None, scaling):
            eng = None
        if eng is not None and probs is not None and eng.outputs_probabilities != bool(probs):
            eng = None
        if eng is None:
            eng = Engine(model, scaling, probs)
            # plain attribute, outside Keras's layer tracking (never saved with the model)
            object.__setattr__(model, _ATTR, eng)
        elif eng.scaling is None and scaling is not None:
            eng.scaling = scaling
        return eng


def cap_batch(engine: Engine, batch_size: int) -> int:
    """``batch_size`` capped so one batch holds at most :data:`MAX_BATCH_VALUES` input values."""
    return engine.cap_batch(batch_size)
