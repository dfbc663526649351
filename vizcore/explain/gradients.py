"""Gradient methods: saliency, SmoothGrad, guided backpropagation, integrated gradients.

All explain the target class's logit (the pre-softmax score, the "linear head"), as tf-keras-vis
recommends with ``ReplaceToLinear``: the softmax would mix in every other class. Gradients run in
compiled ``tf.function``\\ s with fixed input signatures; multi-sample methods run in batches.
"""

from __future__ import annotations

import numpy as np

from vizcore.explain.base import (
    Engine,
    MethodSpec,
    Param,
    Progress,
    cap_batch,
    compile_input_grad,
    linear_head,
    normalize,
    register,
)


def _target(engine: Engine, x: np.ndarray, target: int) -> int:
    return engine.predicted(x) if target < 0 else target


def _batched_grads(
    fn, xs: np.ndarray, target: int, batch_size: int, progress: Progress = None
) -> np.ndarray:
    """Sum over ``xs`` of d logit_target / dx, computed ``batch_size`` images at a time."""
    total = np.zeros(xs.shape[1:], np.float64)
    n = len(xs)
    for i in range(0, n, batch_size):
        g, _ = fn(xs[i : i + batch_size], np.int32(target))
        total += g.numpy().sum(axis=0)
        if progress is not None:
            progress(min(1.0, (i + batch_size) / n))
    return total.astype(np.float32)


def abs_max_map(grads: np.ndarray) -> np.ndarray:
    """(H, W, C) gradients -> (H, W) map: max over channels of |g|, min-max normalised (as in
    Simonyan et al. 2013 and tf-keras-vis)."""
    return normalize(np.max(np.abs(grads), axis=-1))


# --------------------------------------------------------------------------- saliency


def saliency(engine: Engine, x: np.ndarray, target: int, layer=None, progress: Progress = None):
    """Vanilla gradient saliency.

    Simonyan, Vedaldi, Zisserman (2013), "Deep Inside Convolutional Networks: Visualising Image
    Classification Models and Saliency Maps", arXiv:1312.6034. The map is |d logit_c / d x|,
    maximum over colour channels.

    Cost: 1 forward and 1 backward pass.

    Returns:
        (heatmap (H, W), signed gradient (H, W, C), target).
    """
    g, logits = engine.input_grad_fn()(x[None], np.int32(target))
    tgt = int(np.argmax(logits.numpy()[0])) if target < 0 else target
    g = g.numpy()[0]
    return abs_max_map(g), g, tgt


def smoothgrad_noise(x: np.ndarray, n: int, noise: float, seed: int) -> np.ndarray:
    """The ``n`` noisy copies of ``x`` SmoothGrad averages over: Gaussian noise with standard
    deviation ``noise * (max(x) - min(x))``, drawn with ``numpy.random.RandomState(seed)`` (the
    same draws as tf-keras-vis after ``np.random.seed(seed)``)."""
    sigma = noise * float(x.max() - x.min())
    rng = np.random.RandomState(seed)
    return (x[None] + rng.normal(0.0, sigma, (n, *x.shape))).astype(np.float32)


def smoothgrad_from_inputs(
    engine: Engine, xs, target: int, batch_size: int = 32, progress: Progress = None
) -> np.ndarray:
    """Mean over noisy inputs of |d logit_target / dx| (H, W, C): the batched core of SmoothGrad.

    Args:
        xs: An array (n, H, W, C), or a list of such batches (generated lazily).
    """
    fn = engine.input_grad_fn()
    batches = (
        [xs[i : i + batch_size] for i in range(0, len(xs), batch_size)]
        if isinstance(xs, np.ndarray)
        else xs
    )
    total, n = None, 0
    for k, batch in enumerate(batches):
        g, _ = fn(batch, np.int32(target))
        s = np.abs(g.numpy()).sum(axis=0, dtype=np.float64)
        total = s if total is None else total + s
        n += len(batch)
        if progress is not None and isinstance(batches, list):
            progress((k + 1) / len(batches))
    return (total / n).astype(np.float32)


def smoothgrad(
    engine: Engine,
    x: np.ndarray,
    target: int,
    layer=None,
    progress: Progress = None,
    n: int = 50,
    noise: float = 0.15,
    batch_size: int = 32,
    seed: int = 0,
):
    """SmoothGrad: the saliency map averaged over noisy copies of the image.

    Smilkov, Thorat, Kim, Viegas, Wattenberg (2017), "SmoothGrad: removing noise by adding
    noise", arXiv:1706.03825. Paper defaults: n = 50 samples, noise 10-20 % of the input range.
    The noise is drawn batch by batch from ``numpy.random.RandomState(seed)`` (so memory stays at
    one batch, and the draws equal tf-keras-vis's after ``np.random.seed(seed)``).

    Cost: n forward and n backward passes, batched (``batch_size`` images per pass).

    Returns:
        (heatmap (H, W), mean |gradient| (H, W, C), target).
    """
    tgt = _target(engine, x, target)
    bs = cap_batch(engine, batch_size)
    sigma = noise * float(x.max() - x.min())
    rng = np.random.RandomState(seed)
    sizes = [min(bs, n - i) for i in range(0, n, bs)]

    def batches():
        done = 0
        for b in sizes:
            yield (x[None] + rng.normal(0.0, sigma, (b, *x.shape))).astype(np.float32)
            done += b
            if progress is not None:
                progress(done / n)

    g = smoothgrad_from_inputs(engine, batches(), tgt, bs)
    return abs_max_map(g), g, tgt


# --------------------------------------------------------------------------- guided backprop


def _guided_relu(cap: float | None = None):
    """ReLU (capped at ``cap`` when given, as ReLU6 is) whose gradient passes only positive
    gradients, and only where the unit is active (0 < x < cap)."""
    import tensorflow as tf

    @tf.autograph.experimental.do_not_convert
    @tf.custom_gradient
    def guided_relu(x):
        def grad(dy):
            open_ = tf.cast(x > 0, dy.dtype)
            if cap is not None:
                open_ *= tf.cast(x < cap, dy.dtype)
            return dy * tf.cast(dy > 0, dy.dtype) * open_

        y = tf.nn.relu(x)
        return (y if cap is None else tf.minimum(y, cap)), grad

    return guided_relu


def guided_model(engine: Engine):
    """A clone of the model (own weights copy) whose ReLUs pass only positive gradients to
    positive inputs, with its linear head; built once per model and cached. The shared model is
    untouched: the clone is built with ``keras.models.clone_model`` + ``set_weights``."""

    def build():
        import keras

        clone = keras.models.clone_model(engine.model)
        clone.set_weights(engine.model.get_weights())
        g, g6 = _guided_relu(), _guided_relu(6.0)
        for lyr in clone.layers:
            act = getattr(lyr, "activation", None)
            name = getattr(act, "__name__", "") if act is not None else ""
            if name in ("relu", "relu6"):
                lyr.activation = g if name == "relu" else g6
            elif type(lyr).__name__ == "ReLU" and not lyr.negative_slope and not lyr.threshold:
                fn = g if lyr.max_value is None else _guided_relu(float(lyr.max_value))
                lyr.call = lambda inputs, *a, _g=fn, **k: _g(inputs)
        engine.add_clone(clone)
        pre, to_logits = linear_head(clone, engine.outputs_probabilities)
        return keras.Model(clone.inputs[0], pre), to_logits

    return engine.cached("guided_model", build)


def guided_grad_fn(engine: Engine):
    """Compiled ``(x (B,H,W,C), cls) -> (guided gradient, logits)`` on the guided clone."""

    def build():
        gm, to_logits = guided_model(engine)
        return compile_input_grad(engine, gm, to_logits)

    return engine.cached("guided_grad", build)


def guided_gradients(engine: Engine, x: np.ndarray, target: int) -> tuple[np.ndarray, int]:
    """Guided-backprop gradient (H, W, C) of one image and the resolved target."""
    g, logits = guided_grad_fn(engine)(x[None], np.int32(target))
    tgt = int(np.argmax(logits.numpy()[0])) if target < 0 else target
    return g.numpy()[0], tgt


def guided_backprop(
    engine: Engine, x: np.ndarray, target: int, layer=None, progress: Progress = None
):
    """Guided backpropagation.

    Springenberg, Dosovitskiy, Brox, Riedmiller (2014), "Striving for Simplicity: The All
    Convolutional Net", arXiv:1412.6806. Backward through each ReLU only positive gradients at
    positive inputs pass (a ``tf.custom_gradient`` ReLU on a cloned model).

    Cost: 1 forward and 1 backward pass (plus one model clone, once per model).

    Returns:
        (heatmap (H, W), guided gradient (H, W, C), target).
    """
    g, tgt = guided_gradients(engine, x, target)
    return abs_max_map(g), g, tgt


# --------------------------------------------------------------------------- integrated gradients


def integrated_gradients(
    engine: Engine,
    x: np.ndarray,
    target: int,
    layer=None,
    progress: Progress = None,
    steps: int = 50,
    baseline: str = "black",
    batch_size: int = 32,
):
    """Integrated gradients along the straight path from a baseline to the image.

    Sundararajan, Taly, Yan (2017), "Axiomatic Attribution for Deep Networks",
    arXiv:1703.01365. Right Riemann sum with ``steps`` points (the paper uses 20-300); the
    attributions add up (completeness) to logit(x) - logit(baseline) up to the sum's error.

    Cost: ``steps`` forward and ``steps`` backward passes, batched.

    Returns:
        (heatmap (H, W) = normalised |sum over channels|, attributions (H, W, C), target).
    """
    tgt = _target(engine, x, target)
    base = engine.black() if baseline == "black" else np.zeros_like(x)
    alphas = np.arange(1, steps + 1, dtype=np.float32) / steps
    xs = base[None] + alphas[:, None, None, None] * (x - base)[None]
    g = _batched_grads(
        engine.input_grad_fn(), xs.astype(np.float32), tgt, cap_batch(engine, batch_size), progress
    )
    attr = (x - base) * g / steps
    return normalize(np.abs(attr.sum(axis=-1))), attr.astype(np.float32), tgt


# --------------------------------------------------------------------------- registry

_BATCH = Param(
    "batch_size",
    32,
    "int",
    1,
    256,
    help="Images per pass; larger is faster up to memory limits.",
    advanced=True,
)

register(
    MethodSpec(
        "saliency",
        "Saliency (vanilla gradient)",
        "gradient",
        "Simonyan, Vedaldi, Zisserman 2013, Deep Inside Convolutional Networks, arXiv:1312.6034",
        "Shows which pixels, changed a tiny bit, would change the class score most. Fast, "
        "but noisy "
        "and speckled; it says how sensitive the score is, not what the model 'looks at'.",
        "1 forward + 1 backward pass",
        saliency,
        signed=True,
    )
)

register(
    MethodSpec(
        "smoothgrad",
        "SmoothGrad",
        "gradient",
        "Smilkov, Thorat, Kim, Viegas, Wattenberg 2017, SmoothGrad: removing noise by "
        "adding noise, "
        "arXiv:1706.03825",
        "Averages the saliency map over many noisy copies of the image, which removes much of the "
        "speckle (on the shipped models the pixel-to-pixel jumps halve). It costs N times the "
        "passes of plain saliency (batching keeps it to about 6-11x the time there), and the "
        "result depends on the noise level. The smoothing also washes out what is specific to the "
        "class: on the VGG-style model the maps for the top two classes are 0.79 similar (plain "
        "saliency: 0.39).",
        "n forward + n backward passes, batched",
        smoothgrad,
        (
            Param("n", 50, "int", 1, 500, help="Number of noisy samples (paper: 50)."),
            Param(
                "noise",
                0.15,
                "float",
                0.0,
                1.0,
                help="Noise standard deviation as a fraction of the input range (paper: 0.1-0.2).",
            ),
            _BATCH,
            Param("seed", 0, "int", 0, 2**31 - 1, help="Random seed of the noise.", advanced=True),
        ),
        signed=True,
    )
)

register(
    MethodSpec(
        "guided_backprop",
        "Guided backpropagation",
        "gradient",
        "Springenberg, Dosovitskiy, Brox, Riedmiller 2014, Striving for Simplicity: The All "
        "Convolutional Net, arXiv:1412.6806",
        "A gradient in which every ReLU lets only positive signals back. Gives crisp, edge-like "
        "pictures, but it is not class-discriminative: the maps for different classes look almost "
        "the same, and its map barely changes when the classifier layers are randomised (0.98 "
        "similar on the shipped CNN; Adebayo et al. 2018), so it shows image structure more than "
        "the model's reasoning.",
        "1 forward + 1 backward pass (on a model clone)",
        guided_backprop,
        signed=True,
    )
)

register(
    MethodSpec(
        "integrated_gradients",
        "Integrated gradients",
        "gradient",
        "Sundararajan, Taly, Yan 2017, Axiomatic Attribution for Deep Networks, arXiv:1703.01365",
        "Adds up gradients along a path from a black image to this image, so the attributions add "
        "up, approximately, to the score difference between the two (within a few percent with "
        "the default 50 steps). Signed: positive pixels raise the score. The result depends on the "
        "baseline: black pixels get exactly zero, so on Fashion-MNIST the map always traces the "
        "garment and still looks 0.88 similar after every layer is randomised; judge it by the "
        "pattern inside the object.",
        "steps forward + steps backward passes, batched",
        integrated_gradients,
        (
            Param("steps", 50, "int", 2, 512, help="Points on the path (paper: 20-300)."),
            Param(
                "baseline",
                "black",
                "choice",
                choices=("black", "zeros"),
                help="Starting image: a black image, or all-zero model input.",
            ),
            _BATCH,
        ),
        signed=True,
    )
)
