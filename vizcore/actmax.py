"""Activation maximization: the input a unit responds to most, recorded step by step.

Gradient ascent on the input image (Erhan, Bengio, Courville and Vincent 2009, "Visualizing
higher-layer features of a deep network", Tech. Rep. 1341, Univ. Montreal; Simonyan, Vedaldi and
Zisserman 2013, arXiv:1312.6034; Yosinski, Clune, Nguyen, Fuchs and Lipson 2015,
arXiv:1506.06579 for the regularisers and image transformations), built on tf-keras-vis's
:class:`~tf_keras_vis.activation_maximization.ActivationMaximization`: its score protocol, its
regularisers (:class:`TotalVariation2D`, :class:`Norm`), its input modifiers (:class:`Jitter`,
:class:`Rotate2D`, :class:`Scale`) and its callback interface.

What differs from calling tf-keras-vis directly, and why:

* The gradient step (forward pass, score, regularisers, gradient, optimizer update, clipping) runs
  as one compiled ``tf.function`` with a fixed input signature and the unit indices passed as a
  tensor, traced once per (layer, batch shape, regulariser kinds) and reused across calls and
  units. tf-keras-vis runs the same step eagerly, op by op. The input modifiers (numpy/scipy in
  tf-keras-vis) run between steps exactly as tf-keras-vis runs them. With no random modifiers the
  two give the same images (a test checks it).
* No model clone. A conv filter is scored on the channel mean of an extracted sub-model; a Dense
  unit's "linear head" is computed from the Dense layer's *input* and its own kernel and bias, so
  ``x @ W[:, u] + b[u]`` is exactly what ``ReplaceToLinear`` on a clone would give (a test checks
  it) without cloning VGG16's 138 M parameters, and it also works for hidden Dense layers whose
  ReLU would otherwise block the gradient of a silent unit. The shared model is never modified.
* Seeded: the random start and every random input modifier draw from one ``numpy`` generator.

Cost: ``steps`` forward and backward passes of the model up to the chosen layer, for a batch of
units at once; one trace of the compiled step per (layer, batch shape) per process.
"""

from __future__ import annotations

import copy
import io
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

import keras
import numpy as np
import tensorflow as tf
from tf_keras_vis.activation_maximization import ActivationMaximization
from tf_keras_vis.activation_maximization.callbacks import Callback, managed_callbacks
from tf_keras_vis.activation_maximization.input_modifiers import Jitter, Rotate2D, Scale
from tf_keras_vis.activation_maximization.regularizers import Norm, TotalVariation2D
from tf_keras_vis.utils.model_modifiers import ModelModifier
from tf_keras_vis.utils.scores import Score

Progress = Callable[[float], None] | None


CONV_KINDS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose")
DENSE_KINDS = ("Dense",)



# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class AMParams:
    """Every knob of the optimisation (hashable, so results can be cached on it).

    Attributes:
        steps: Gradient-ascent iterations.
        learning_rate: Optimizer step size, in model-input units.
        optimizer: ``"rmsprop"`` (tf-keras-vis's default, rho 0.999) or ``"adam"``.
        tv_weight: Weight of tf-keras-vis's ``TotalVariation2D`` (smoothness), 0 = off.
        norm_weight: Weight of tf-keras-vis's ``Norm`` (small pixel values), 0 = off.
        norm_p: Order of the norm (1 or 2).
        jitter: Maximum random shift in pixels per step (``Jitter``), 0 = off.
        rotate: Maximum random rotation in degrees per step (``Rotate2D``), 0 = off.
        scale: Maximum random zoom deviation per step (``Scale(1 - s, 1 + s)``), 0 = off.
        start_noise: Amplitude of the uniform random start around the middle of the input
            range, as a fraction of half the range (1 = the whole range).
        frame_every: Record a frame every this many steps (0 = only the start and the end).
        seed: Seed of the random start and of the random input modifiers.
        linear: For Dense units, maximise the pre-activation (the "linear head": no ReLU or
            softmax), as ``ReplaceToLinear`` would.
        project: Clip the image to the input range after every step (projected gradient
            ascent), so the model always sees a valid image. tf-keras-vis clips only the
            returned copy and keeps optimising the unclipped values (``project=False``).
    """

    steps: int = 200
    learning_rate: float = 0.05
    optimizer: str = "rmsprop"
    tv_weight: float = 1.0
    norm_weight: float = 0.3
    norm_p: int = 1
    jitter: int = 1
    rotate: float = 2.0
    scale: float = 0.0
    start_noise: float = 0.2
    frame_every: int = 5
    seed: int = 0
    linear: bool = True
    project: bool = True

    def as_dict(self) -> dict:
        return asdict(self)


def input_range(info) -> tuple[float, float]:
    """(low, high) of the model input for ``info.scaling``."""
    from vizcore.models import input_range as scaling_range

    return scaling_range(info.scaling)


def default_params(info) -> AMParams:
    """Good defaults per model: a 28x28 grayscale CNN in 0..1, or an ImageNet-size model.

    For small inputs a 1-pixel jitter and a 2 degree rotation already move a 28x28 image a lot,
    and the regularisers are weaker (TV 0.05, L1 norm 0.01) because their gradient per pixel does
    not shrink with the input range while the score's gradient grows as the range shrinks; for
    224x224 inputs these are tf-keras-vis's VGG16 settings (jitter 8 pixels here, rotation 1
    degree, TV 1.0, L1 norm 0.3, RMSprop learning rate 1.0 on a 0..255-sized range), with fewer
    steps because each VGG16 step costs about a second on a CPU.
    """
    lo, hi = input_range(info)
    width = hi - lo
    h = info.input_shape[0]
    if h <= 64:
        return AMParams(steps=200, learning_rate=round(0.05 * width, 6), tv_weight=0.05,
                        norm_weight=0.01, norm_p=1, jitter=1, rotate=2.0, scale=0.0,
                        start_noise=0.2, frame_every=5)
    return AMParams(steps=50, learning_rate=round(1.0 * width / 255.0, 6), tv_weight=1.0,
                    norm_weight=0.3, norm_p=1, jitter=8, rotate=1.0, scale=0.0,
                    start_noise=0.2, frame_every=2)


# --------------------------------------------------------------------------- layers and units


def layer_kind(model, layer: str) -> str:
    """``"conv"`` (spatial maps, scored on a channel mean) or ``"dense"`` (one value per unit)."""
    from vizcore.graph import graph_of

    node = graph_of(model).node(layer)
    shape = tuple(node.output.shape)
    if node.kind in DENSE_KINDS and len(shape) == 2:
        return "dense"
    if len(shape) == 4:
        return "conv"
    if len(shape) == 2:
        return "flat"
    raise ValueError(f"layer {layer!r} outputs shape {shape}; activation maximization needs "
                     "(batch, h, w, channels) maps or (batch, units) vectors")


def n_units(model, layer: str) -> int:
    """Number of channels (conv) or units (dense) of ``layer``."""
    from vizcore.graph import graph_of

    return int(graph_of(model).output_shape(layer)[-1])


def visualizable_layers(info) -> list[str]:
    """Conv layers then Dense layers, input to output (the page's layer list)."""
    return info.layers_of(CONV_KINDS) + info.layers_of(DENSE_KINDS)


def atlas_layers(info) -> list[str]:
    """The first, a middle and the last conv layer (fewer if the model has fewer)."""
    conv = info.layers_of(CONV_KINDS)
    if len(conv) <= 3:
        return conv
    return [conv[0], conv[len(conv) // 2], conv[-1]]


# --------------------------------------------------------------------------- scores (tf-keras-vis)


class _UnitScore(Score):
    """A tf-keras-vis ``Score`` whose unit indices can also be given as a tensor (compiled use).

    ``score(output, units)`` takes an int32 tensor (B,) of unit indices, one per sample;
    calling the object uses the indices given at construction (tf-keras-vis protocol).
    """

    def __init__(self, units) -> None:
        super().__init__(type(self).__name__)
        self.units = [int(u) for u in np.atleast_1d(units)]

    def __call__(self, output):
        batch = int(output.shape[0])
        units = self.units * batch if len(self.units) == 1 else self.units
        return self.score(output, tf.constant(units, tf.int32))

    def score(self, output, units):  # pragma: no cover - abstract
        raise NotImplementedError


class ChannelMeanScore(_UnitScore):
    """``CategoricalScore`` for conv filters: the spatial mean of channel ``u`` per sample."""

    def score(self, output, units):
        maps = tf.gather(output, units, axis=-1, batch_dims=1)  # (B, h, w)
        return tf.reduce_mean(maps, axis=list(range(1, len(output.shape) - 1)))


class UnitScore(_UnitScore):
    """The value of unit ``u`` of a flat (batch, units) output per sample."""

    def score(self, output, units):
        return tf.gather(output, units, axis=-1, batch_dims=1)


class DenseLinearScore(_UnitScore):
    """The pre-activation ``x @ W[:, u] + b[u]`` of a Dense layer, from its input ``x``.

    Identical to the unit's output after tf-keras-vis's ``ReplaceToLinear`` (on a clone), but
    reading the shared layer's own weights, so nothing is cloned or modified.
    """

    def __init__(self, units, layer) -> None:
        super().__init__(units)
        self.layer = layer

    def score(self, output, units):
        x = tf.reshape(output, [tf.shape(output)[0], -1])
        w = tf.gather(tf.convert_to_tensor(self.layer.kernel), units, axis=1)  # (D, B)
        s = tf.reduce_sum(x * tf.transpose(w), axis=1)
        if self.layer.use_bias:
            s = s + tf.gather(tf.convert_to_tensor(self.layer.bias), units)
        return s


# --------------------------------------------------------------------------- input modifiers


def make_input_modifiers(params: AMParams, rng: np.random.Generator) -> list:
    """tf-keras-vis input modifiers for ``params``, all drawing from ``rng`` (seeded).

    ``Jitter`` draws from numpy's global generator in tf-keras-vis, so a subclass routes it to
    ``rng``; ``Rotate2D`` and ``Scale`` own a generator, which is replaced by ``rng``.
    """
    class SeededJitter(Jitter):
        def __call__(self, seed_input):

            ndim = len(seed_input.shape)
            shift = tuple(int(s) for s in rng.integers(-self.jitter, self.jitter, ndim - 2))
            return tf.roll(seed_input, shift=shift, axis=tuple(range(ndim)[1:-1]))

    mods = []
    if params.jitter > 0:
        mods.append(SeededJitter(jitter=params.jitter))
    if params.rotate > 0:
        r = Rotate2D(degree=params.rotate)
        r.random_generator = rng
        mods.append(r)
    if params.scale > 0:
        s = Scale(low=1.0 - params.scale, high=1.0 + params.scale)
        s.random_generator = rng
        mods.append(s)
    return mods


def make_regularizers(params: AMParams) -> list:
    """tf-keras-vis's ``TotalVariation2D`` and ``Norm`` with the weights of ``params``."""
    regs = []
    if params.tv_weight > 0:
        regs.append(TotalVariation2D(weight=params.tv_weight))
    if params.norm_weight > 0:
        regs.append(Norm(weight=params.norm_weight, p=params.norm_p))
    return regs


def make_optimizer(params: AMParams):

    if params.optimizer == "adam":
        return keras.optimizers.Adam(params.learning_rate)
    if params.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(params.learning_rate, rho=0.999)
    raise ValueError(f"optimizer must be 'rmsprop' or 'adam', not {params.optimizer!r}")


def start_image(info, batch: int, params: AMParams) -> np.ndarray:
    """The seeded random start: uniform noise around the middle of the input range."""
    lo, hi = input_range(info)
    mid, half = (lo + hi) / 2.0, (hi - lo) / 2.0
    rng = np.random.default_rng(params.seed)
    noise = rng.uniform(-1.0, 1.0, (batch, *info.input_shape)).astype(np.float32)
    return (mid + params.start_noise * half * noise).astype(np.float32)


# --------------------------------------------------------------------------- callbacks


class FrameRecorder(Callback):
    """tf-keras-vis callback: frames every ``every`` steps and the activation at every step.

    tf-keras-vis's own ``GifGenerator2D`` casts the raw input to uint8 and fails on (H, W, 1)
    images; this one converts with ``to_uint8`` (the model's deprocessing) and keeps the frames
    in memory for the page's animation and :func:`gif_bytes`.

    Attributes:
        frames: uint8 (T, B, H, W, C) including the start (step 0) and the last step.
        frame_steps: (T,) the step after which each frame was taken.
        values: (steps, B) the unit's activation (score) at each step, before its update.
    """

    def __init__(self, every: int, to_uint8: Callable[[np.ndarray], np.ndarray],
                 progress: Progress = None) -> None:
        self.every, self.to_uint8, self.progress = int(every), to_uint8, progress
        self.frames: list[np.ndarray] = []
        self.frame_steps: list[int] = []
        self.values: list[np.ndarray] = []

    def on_begin(self, steps=None, seed_input=None, **kwargs) -> None:
        self.steps = int(steps or 0)
        self.frames, self.frame_steps, self.values = [], [], []
        if seed_input is not None:
            self.frames.append(self.to_uint8(np.asarray(seed_input)))
            self.frame_steps.append(0)

    def __call__(self, i, values, grads, scores, model_outputs, **kwargs) -> None:
        self.values.append(np.asarray(scores[0], np.float32).reshape(-1))
        done = i + 1
        if (self.every > 0 and done % self.every == 0) or done == self.steps:
            if not self.frame_steps or self.frame_steps[-1] != done:
                self.frames.append(self.to_uint8(np.asarray(values[0])))
                self.frame_steps.append(done)
        if self.progress is not None and self.steps:
            self.progress(done / self.steps)

    def on_end(self) -> None:
        pass


# --------------------------------------------------------------------------- the visualizer


class ExtractLayerInput(ModelModifier):
    """A sub-model ending at the *input* of a layer (for a Dense layer's linear head)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, model):
        from vizcore.graph import graph_of

        return keras.Model(model.inputs, graph_of(model).input(self.name))


class ExtractLayerOutput(ModelModifier):
    """A sub-model ending at a layer's output (tf-keras-vis's ExtractIntermediateLayer,
    built with the Keras 3 API the shared model was built with)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, model):
        from vizcore.graph import graph_of

        return graph_of(model).tap([self.name])


class CompiledActivationMaximization(ActivationMaximization):
    """tf-keras-vis's ActivationMaximization with the gradient step compiled.

    Same arguments as ``ActivationMaximization.__call__`` (score, seed_input, input_range,
    input_modifiers, regularizers, steps, optimizer, callbacks), the same order of
    operations per step (modify the input, assign, forward, score, regularise, gradient,
    optimizer update, clip, callbacks) and the same callback protocol. The step is one
    ``tf.function`` (fixed input signature; unit indices and regulariser weights are
    tensors) cached per (batch shape, score class, regulariser kinds, optimizer kind) and
    reused across calls, so changing the unit or a weight does not retrace.
    """

    def __init__(self, model, model_modifier=None) -> None:
        super().__init__(model, model_modifier=model_modifier, clone=False)
        self._compiled: dict = {}
        self._lock = threading.RLock()

    # -------------------------------------------------------- compiled pieces
    def _step_fn(self, shape, score, regularizers, optimizer, low, high, project):
        key = (tuple(shape), type(score).__name__, getattr(score, "layer", None) and
               score.layer.name, tuple((type(r).__name__, getattr(r, "p", None))
                                      for r in regularizers),
               type(optimizer).__name__, getattr(optimizer, "rho", None),
               getattr(optimizer, "beta_1", None), low, high, project)
        if key in self._compiled:
            return self._compiled[key]
        var = tf.Variable(tf.zeros(shape, tf.float32), trainable=True)
        opt = type(optimizer).from_config(optimizer.get_config())
        opt.build([var])
        unit_regs = []
        for r in regularizers:
            r1 = copy.copy(r)
            if hasattr(r1, "weight"):
                r1.weight = 1.0
            unit_regs.append(r1)
        model = self.model
        spec = [tf.TensorSpec(shape, tf.float32), tf.TensorSpec([shape[0]], tf.int32),
                tf.TensorSpec([len(unit_regs)], tf.float32)]

        @tf.function(input_signature=spec)
        def step(x, units, weights):
            var.assign(x)
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(var)
                v = var.value()
                out = model(v, training=False)
                s = score.score(out, units)
                regs = [weights[i] * r(v) for i, r in enumerate(unit_regs)]
                loss = [-1.0 * s] + regs
            grad = tape.gradient(loss, var)
            opt.apply_gradients([(grad, var)])
            new = tf.identity(var.value())
            clipped = tf.clip_by_value(new, low, high)
            if project:
                new = clipped
            return new, clipped, s, tf.stack(regs) if regs else tf.zeros([0, shape[0]]), \
                grad, out

        entry = (step, var, opt)
        self._compiled[key] = entry
        return entry

    def score_fn(self, shape, score):
        """A compiled ``(x, units) -> score`` for measuring without optimising."""
        key = ("score", tuple(shape), type(score).__name__)
        if key not in self._compiled:
            model = self.model
            spec = [tf.TensorSpec(shape, tf.float32), tf.TensorSpec([shape[0]], tf.int32)]
            self._compiled[key] = tf.function(
                lambda x, u: score.score(model(x, training=False), u), input_signature=spec)
        return self._compiled[key]

    # -------------------------------------------------------- the loop
    def __call__(self, score, seed_input, input_range=(0, 255), input_modifiers=(),
                 regularizers=(), steps=200, optimizer=None, callbacks=None,
                 regularizer_weights=None, project=False):
        """Optimise ``seed_input`` for ``score`` (a :class:`_UnitScore`); see the class doc.

        Returns:
            The clipped result, (B, H, W, C) float32.
        """
        with self._lock:
            return self._run(score, seed_input, input_range, input_modifiers, regularizers,
                             steps, optimizer, callbacks, regularizer_weights, project)

    def _run(self, score, seed_input, input_range, input_modifiers, regularizers, steps,
             optimizer, callbacks, regularizer_weights, project):
        x = tf.convert_to_tensor(np.asarray(seed_input, np.float32))
        if x.shape.rank == len(self.model.inputs[0].shape) - 1:
            x = x[None]
        shape = tuple(int(d) for d in x.shape)
        if optimizer is None:
            optimizer = keras.optimizers.RMSprop(1.0, rho=0.999)
        low, high = (float(v) if v is not None else None for v in input_range)
        low = -np.inf if low is None else low
        high = np.inf if high is None else high
        regularizers = list(regularizers or [])
        weights = regularizer_weights
        if weights is None:
            weights = [float(getattr(r, "weight", 1.0)) for r in regularizers]
        step, var, opt = self._step_fn(shape, score, regularizers, optimizer, low, high,
                                         bool(project))
        # fresh optimizer state for this run; the learning rate is a variable
        for v in opt.variables:
            v.assign(tf.zeros_like(v))
        opt.learning_rate.assign(float(optimizer.learning_rate.numpy()
                                       if hasattr(optimizer.learning_rate, "numpy")
                                       else optimizer.learning_rate))
        units = tf.constant(np.broadcast_to(np.asarray(score.units, np.int32), shape[:1]))
        w = tf.constant(np.asarray(weights, np.float32).reshape(-1))
        arguments = dict(score=score, seed_input=np.asarray(x), input_range=input_range,
                         input_modifiers=input_modifiers, regularizers=regularizers,
                         steps=steps, optimizer=optimizer)
        clipped = tf.clip_by_value(x, low, high)
        with managed_callbacks(callbacks=callbacks, **arguments) as cbs:
            values = x
            for i in range(int(steps)):
                for mod in input_modifiers:
                    values = mod(values)
                values = tf.convert_to_tensor(values, tf.float32)
                values, clipped, s, regs, grad, out = step(values, units, w)
                if cbs:
                    reg_values = [(getattr(r, "name", f"regularizer-{j}"), regs[j])
                                  for j, r in enumerate(regularizers)]
                    for cb in cbs:
                        cb(i, [clipped], [grad], [s], [out], regularizations=reg_values,
                           overall_score=[-s] + [v for _, v in reg_values])
        return clipped.numpy()


@dataclass
class UnitVisualizer:
    """A compiled activation maximizer for one layer of one model (cache it; see
    :func:`visualizer`).

    Attributes:
        layer: Layer name.
        kind: ``"conv"``, ``"dense"`` or ``"flat"``.
        linear: Dense units are scored on their pre-activation.
        am: The ``CompiledActivationMaximization`` (a tf-keras-vis ActivationMaximization).
    """

    layer: str
    kind: str
    linear: bool
    am: object
    seconds_to_build: float = 0.0

    def score(self, units):
        """A tf-keras-vis ``Score`` for ``units`` (usable with stock ActivationMaximization)."""
        if self.kind == "conv":
            return ChannelMeanScore(units)
        if self.kind == "dense" and self.linear:
            return DenseLinearScore(units, self._layer)
        return UnitScore(units)


def visualizer(model, layer: str, linear: bool = True) -> UnitVisualizer:
    """The cached :class:`UnitVisualizer` for (model, layer, linear); built once per process.

    Building extracts a sub-model over the shared graph (no clone, nothing modified); the first
    call of a batch shape traces the compiled step (about a second for the small CNN).
    """
    from vizcore.engine import get_engine
    from vizcore.graph import graph_of

    kind = layer_kind(model, layer)
    linear = bool(linear and kind == "dense")

    def build():
        t0 = time.perf_counter()
        modifier = ExtractLayerInput(layer) if linear else ExtractLayerOutput(layer)
        am = CompiledActivationMaximization(model, model_modifier=modifier)
        viz = UnitVisualizer(layer, kind, linear, am)
        viz._layer = graph_of(model).layer(layer)
        viz.seconds_to_build = time.perf_counter() - t0
        return viz

    return get_engine(model).cached(("actmax", layer, linear), build)


# --------------------------------------------------------------------------- results


@dataclass
class ActMaxResult:
    """The outcome of :func:`maximize`.

    Attributes:
        layer: Layer name.
        units: (B,) unit/channel indices, one per optimised image.
        images: (B, H, W, C) float32 results in the model's input range.
        frames: uint8 (T, B, H, W, C) snapshots (step 0 = the random start).
        frame_steps: (T,) step of each frame.
        values: (steps, B) the unit's activation (score) at each step.
        start_value: (B,) activation of the un-modified random start.
        final_value: (B,) activation of the result.
        params: The :class:`AMParams` used.
        seconds: Wall time of the optimisation.
    """

    layer: str
    units: np.ndarray
    images: np.ndarray
    frames: np.ndarray
    frame_steps: np.ndarray
    values: np.ndarray
    start_value: np.ndarray
    final_value: np.ndarray
    params: AMParams
    seconds: float
    kind: str = "conv"
    extra: dict = field(default_factory=dict)

    @property
    def images_uint8(self) -> np.ndarray:
        return self.frames[-1]


def maximize(info, layer: str, units: int | Sequence[int], params: AMParams | None = None,
             progress: Progress = None, batch_size: int | None = None) -> ActMaxResult:
    """Generate the input(s) that maximise unit(s) of ``layer`` (Erhan et al. 2009;
    Simonyan et al. 2013, arXiv:1312.6034; Yosinski et al. 2015, arXiv:1506.06579).

    Conv layers: the score is the spatial mean of the channel. Dense layers: the unit's
    pre-activation when ``params.linear`` (a linear head, as tf-keras-vis's ``ReplaceToLinear``),
    else its output. Several units are optimised together as one batch (each image its own unit).

    Args:
        info: A :class:`vizcore.models.ModelInfo` (its model is not modified).
        layer: Conv or Dense layer name.
        units: One unit index or a list of them.
        params: Knobs; default :func:`default_params`.
        progress: Optional callback receiving the completed fraction in [0, 1].
        batch_size: Images optimised together; default 32 for inputs up to 64x64, else 8
            (never more than 32 images of 224x224 at once). Larger lists run in chunks.

    Returns:
        An :class:`ActMaxResult`.

    Cost: ``params.steps`` forward and backward passes through the model up to ``layer`` per
    chunk, compiled; plus one trace per new (layer, batch shape).
    """

    params = params or default_params(info)
    units_arr = np.atleast_1d(np.asarray(units, dtype=np.int64))
    n = n_units(info.model, layer)
    if units_arr.size == 0 or units_arr.min() < 0 or units_arr.max() >= n:
        raise ValueError(f"unit indices must be in 0..{n - 1} for layer {layer!r}")
    if params.steps < 1:
        raise ValueError("steps must be at least 1")
    viz = visualizer(info.model, layer, params.linear)
    if batch_size is None:
        batch_size = 32 if info.input_shape[0] <= 64 else 8
    batch_size = max(1, min(int(batch_size), 32))
    lo, hi = input_range(info)
    t0 = time.perf_counter()
    chunks = [units_arr[i : i + batch_size] for i in range(0, len(units_arr), batch_size)]
    parts = []
    for ci, chunk in enumerate(chunks):
        sub = replace(params, seed=params.seed + ci)
        rng = np.random.default_rng([sub.seed, 1])
        seed = start_image(info, len(chunk), sub)

        def chunk_progress(f, ci=ci):
            if progress is not None:
                progress((ci + f) / len(chunks))

        rec = FrameRecorder(params.frame_every, info.deprocess, chunk_progress)
        score = viz.score(chunk)
        out = viz.am(score, seed, input_range=(lo, hi),
                     input_modifiers=make_input_modifiers(sub, rng),
                     regularizers=make_regularizers(sub), steps=sub.steps,
                     optimizer=make_optimizer(sub), callbacks=[rec], project=sub.project)
        measure = viz.am.score_fn((len(chunk), *info.input_shape), score)
        u = tf.constant(chunk.astype(np.int32))
        start_v = measure(tf.constant(np.clip(seed, lo, hi)), u).numpy()
        final_v = measure(tf.constant(out), u).numpy()
        parts.append((out, np.stack(rec.frames), np.asarray(rec.frame_steps),
                      np.stack(rec.values), start_v, final_v))
    if progress is not None:
        progress(1.0)
    steps_ref = parts[0][2]
    return ActMaxResult(
        layer=layer, units=units_arr, images=np.concatenate([p[0] for p in parts]),
        frames=np.concatenate([p[1] for p in parts], axis=1), frame_steps=steps_ref,
        values=np.concatenate([p[3] for p in parts], axis=1),
        start_value=np.concatenate([p[4] for p in parts]),
        final_value=np.concatenate([p[5] for p in parts]), params=params,
        seconds=time.perf_counter() - t0, kind=viz.kind)


# --------------------------------------------------------------------------- filter atlas


@dataclass
class AtlasRow:
    """Synthetic images for several filters of one layer."""

    layer: str
    units: np.ndarray
    images: np.ndarray  # uint8 (n, H, W, C)
    final_value: np.ndarray


def filter_atlas(info, n_filters: int = 8, params: AMParams | None = None,
                 layers: Sequence[str] | None = None, progress: Progress = None,
                 batch_size: int | None = None) -> list[AtlasRow]:
    """Activation maximization of the first ``n_filters`` filters of the first, a middle and
    the last conv layer: edges and colours early, textures and parts deeper (Yosinski et al.
    2015, arXiv:1506.06579; Olah, Mordvintsev and Schubert 2017, Distill).

    Cost: ``len(layers) * ceil(n_filters / batch_size) * params.steps`` forward and backward
    passes (batched), no frames kept.
    """
    params = replace(params or default_params(info), frame_every=0)
    layers = list(layers) if layers is not None else atlas_layers(info)
    rows = []
    for li, layer in enumerate(layers):
        units = np.arange(min(n_filters, n_units(info.model, layer)))

        def sub(f, li=li):
            if progress is not None:
                progress((li + f) / len(layers))

        res = maximize(info, layer, units, params, sub, batch_size)
        rows.append(AtlasRow(layer, units, res.images_uint8, res.final_value))
    if progress is not None:
        progress(1.0)
    return rows


# --------------------------------------------------------------------------- GIF


def gif_bytes(frames: np.ndarray, steps: Sequence[int] | None = None, duration_ms: int = 100,
              min_side: int = 168, label: bool = True) -> bytes:
    """An animated GIF of uint8 frames (T, H, W, 1) or (T, H, W, 3), grayscale or colour.

    Frames are enlarged (nearest neighbour) to at least ``min_side`` pixels and optionally
    stamped with their step; the last frame is held three times as long. Pillow encodes
    grayscale frames as "L" and colour frames with an adaptive palette per frame.
    """
    from PIL import Image, ImageDraw

    from vizcore.render import upscale

    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[..., None]
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3) or len(frames) == 0:
        raise ValueError(f"frames must be (T, H, W, 1|3) uint8, got {frames.shape}")
    gray = frames.shape[-1] == 1
    pics = []
    for t, f in enumerate(frames):
        big = upscale(f.astype(np.uint8), min_side)
        im = Image.fromarray(big[..., 0] if gray else big, "L" if gray else "RGB")
        if label and steps is not None:
            draw = ImageDraw.Draw(im)
            text = f"step {int(steps[t])}"
            draw.rectangle([0, 0, 8 + 6 * len(text), 14], fill=0 if gray else (0, 0, 0))
            draw.text((3, 2), text, fill=255 if gray else (255, 255, 255))
        pics.append(im if gray else im.quantize(colors=256, method=Image.Quantize.MEDIANCUT))
    durations = [duration_ms] * len(pics)
    durations[-1] = duration_ms * 3
    buf = io.BytesIO()
    pics[0].save(buf, format="GIF", save_all=True, append_images=pics[1:], loop=0,
                 duration=durations, optimize=False, disposal=1)
    return buf.getvalue()
