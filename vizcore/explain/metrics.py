"""Faithfulness and sanity metrics for attribution maps.

* Deletion and insertion curves and their areas (Petsiuk, Das, Saenko 2018, "RISE: Randomized
  Input Sampling for Explanation of Black-box Models", arXiv:1806.07421): remove (or insert) the
  pixels in the map's order of importance and follow the target's probability. A faithful map
  makes the deletion curve fall fast (low AUC) and the insertion curve rise fast (high AUC).
* The model-randomisation sanity check (Adebayo, Gilmer, Muelly, Goodfellow, Hardt, Kim 2018,
  "Sanity Checks for Saliency Maps", arXiv:1810.03292): randomise the weights layer by layer from
  the top (cascading) on a private copy of the model and compare each method's map with the
  original by Spearman rank correlation and SSIM. A method whose map barely changes does not
  depend on what the model learned.

All model evaluations are batched compiled ``tf.function``\\ s; the shared model is never changed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from vizcore.explain.base import (
    Engine,
    Explanation,
    Progress,
    cap_batch,
    explain,
    get_engine,
    get_method,
)

# --------------------------------------------------------------------------- deletion / insertion


@dataclass
class FaithfulnessCurves:
    """Deletion and insertion curves of one explanation.

    Attributes:
        fractions: (steps + 1,) fraction of pixels removed / inserted, 0 to 1.
        deletion: (steps + 1,) target probability as the most important pixels are removed.
        insertion: (steps + 1,) target probability as they are inserted into the start image.
        deletion_auc: Area under the deletion curve (lower = more faithful).
        insertion_auc: Area under the insertion curve (higher = more faithful).
        target: The class whose probability is followed.
        method: The explanation's method key.
    """

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    deletion_auc: float
    insertion_auc: float
    target: int
    method: str


def _curve_fn(engine: Engine):
    """Compiled ``(src, dst, rank (H,W), ks (B,), cls) -> p_cls (B,)`` of images that take
    ``dst`` at the pixels ranked below each k and ``src`` elsewhere."""

    def build():
        import tensorflow as tf

        tap, to_logits = engine.trunk()
        h, w = engine.input_shape[:2]

        @tf.function(
            autograph=False,
            input_signature=[
                engine.spec_image(),
                engine.spec_image(),
                tf.TensorSpec([h, w], tf.int32),
                tf.TensorSpec([None], tf.int32),
                tf.TensorSpec([], tf.int32),
            ],
        )
        def run(src, dst, rank, ks, cls):
            mask = rank[None, :, :, None] < ks[:, None, None, None]
            imgs = tf.where(mask, dst[None], src[None])
            return tf.nn.softmax(to_logits(tap(imgs, training=False)), axis=-1)[:, cls]

        return run

    return engine.cached("curve", build)


def pixel_rank(heatmap: np.ndarray, seed: int = 0) -> np.ndarray:
    """(H, W) int32 rank of each pixel, 0 = most important; ties broken by a seeded shuffle."""
    flat = np.asarray(heatmap, np.float64).ravel()
    tie = np.random.RandomState(seed).permutation(flat.size)
    order = np.lexsort((tie, -flat))
    rank = np.empty(flat.size, np.int32)
    rank[order] = np.arange(flat.size, dtype=np.int32)
    return rank.reshape(heatmap.shape)


def blurred(x: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """Gaussian-blurred copy of an (H, W, C) image (RISE's insertion start image); ``sigma``
    None = 5 pixels at 224 px, scaled with the image size (at least 1 pixel)."""
    from scipy.ndimage import gaussian_filter

    if sigma is None:
        sigma = max(1.0, 5.0 * max(x.shape[:2]) / 224.0)
    return gaussian_filter(x, sigma=(sigma, sigma, 0), mode="nearest").astype(np.float32)


def _start_image(engine: Engine, x: np.ndarray, kind, blur_sigma=None) -> np.ndarray:
    if isinstance(kind, np.ndarray):
        return np.broadcast_to(kind.astype(np.float32), x.shape).copy()
    if kind == "black":
        return engine.black()
    if kind == "blur":
        return blurred(x, blur_sigma)
    if kind == "mean":
        return np.broadcast_to(x.mean(axis=(0, 1), keepdims=True), x.shape).astype(np.float32)
    if kind == "zeros":
        return np.zeros_like(x)
    if kind == "grey":  # the middle of the input range: mid-grey, whatever the scaling
        lo, hi = engine.input_bounds()
        return np.broadcast_to((lo + hi) / 2.0, x.shape).astype(np.float32)
    raise ValueError(f"unknown baseline {kind!r}; use 'black', 'blur', 'grey', 'mean', 'zeros' "
                     "or an array")


def _curves(engine: Engine, rank: np.ndarray, ks: np.ndarray, pairs, target: int,
            batch_size: int, progress: Progress = None) -> list[np.ndarray]:
    """The target's probability along each ``(src, dst)`` pair's path: ``dst`` at the pixels
    ranked below each k, ``src`` elsewhere (batched forward passes)."""
    run = _curve_fn(engine)
    bs = cap_batch(engine, batch_size)
    curves = []
    for j, (src, dst) in enumerate(pairs):
        out = np.empty(len(ks), np.float32)
        for i in range(0, len(ks), bs):
            out[i : i + bs] = run(src, dst, rank, ks[i : i + bs], np.int32(target)).numpy()
            if progress is not None:
                progress((j + min(1.0, (i + bs) / len(ks))) / len(pairs))
        curves.append(out)
    return curves


def deletion_insertion(
    info,
    x: np.ndarray,
    explanation: Explanation | np.ndarray,
    steps: int = 50,
    batch_size: int = 32,
    baseline="black",
    insertion_start="blur",
    target: int | None = None,
    blur_sigma: float | None = None,
    progress: Progress = None,
) -> FaithfulnessCurves:
    """Deletion and insertion curves and AUCs of one map (Petsiuk et al. 2018, arXiv:1806.07421).

    Deletion replaces the most important pixels first with ``baseline`` (black by default, as in
    RISE); insertion starts from ``insertion_start`` (a blurred copy by default, as in RISE) and
    puts the original pixels back in the same order. AUCs use the trapezoid rule over the
    fraction of pixels in [0, 1], so both lie in [0, 1].

    Args:
        info: The ``ModelInfo``.
        x: The image, (H, W, C) float32 in model range.
        explanation: An :class:`Explanation` or an (H, W) importance map.
        steps: Number of steps (curves have ``steps + 1`` points).
        batch_size: Images per forward pass (capped at 32 of 224x224x3).
        baseline: Deletion fill: ``"black"``, ``"blur"``, ``"grey"``, ``"mean"``, ``"zeros"`` or
            an array.
        insertion_start: Insertion start image, same choices.
        target: Class to follow; default the explanation's target (or the predicted class).
        blur_sigma: Gaussian sigma in pixels for ``"blur"`` (None: scaled with image size).
        progress: Optional callback with the completed fraction.

    Cost: 2 * (steps + 1) forward passes, batched.
    """
    engine = get_engine(info)
    x = np.asarray(x, np.float32)
    if isinstance(explanation, Explanation):
        heat, method = explanation.heatmap, explanation.method
        target = explanation.target if target is None else target
    else:
        heat, method = np.asarray(explanation), "map"
    if target is None:
        target = engine.predicted(x)
    h, w = engine.input_shape[:2]
    if heat.shape != (h, w):
        raise ValueError(f"map shape {heat.shape} differs from the input's {(h, w)}")
    rank = pixel_rank(heat)
    fractions = np.linspace(0.0, 1.0, steps + 1)
    ks = np.round(fractions * h * w).astype(np.int32)
    pairs = [
        (x, _start_image(engine, x, baseline, blur_sigma)),
        (_start_image(engine, x, insertion_start, blur_sigma), x),
    ]
    dele, ins = _curves(engine, rank, ks, pairs, target, batch_size, progress)
    return FaithfulnessCurves(
        fractions,
        dele,
        ins,
        float(np.trapezoid(dele, fractions)),
        float(np.trapezoid(ins, fractions)),
        int(target),
        method,
    )


def faithfulness_aucs(
    info,
    x: np.ndarray,
    heatmap: np.ndarray,
    target: int,
    steps: int = 20,
    batch_size: int = 32,
    baseline="black",
    insertion_starts: Sequence[str] = ("blur", "grey"),
) -> dict[str, float]:
    """Deletion AUC and one insertion AUC per start image, for one map (the curves of
    :func:`deletion_insertion`, sharing one pixel ranking; dataset jobs use it).

    A blurred 28x28 item is often still recognised, so insertion from a blurred start scores
    near 1 for every map there; a grey start tells the methods apart. Both are returned
    (``insertion_auc_blur``, ``insertion_auc_grey``) so a summary can use the one that
    separates the methods on the data at hand.

    Cost: (1 + len(insertion_starts)) * (steps + 1) forward passes, batched.
    """
    engine = get_engine(info)
    x = np.asarray(x, np.float32)
    rank = pixel_rank(np.asarray(heatmap))
    fractions = np.linspace(0.0, 1.0, steps + 1)
    ks = np.round(fractions * rank.size).astype(np.int32)
    pairs = [(x, _start_image(engine, x, baseline))]
    pairs += [(_start_image(engine, x, kind), x) for kind in insertion_starts]
    curves = _curves(engine, rank, ks, pairs, int(target), batch_size)
    out = {"deletion_auc": float(np.trapezoid(curves[0], fractions))}
    for kind, curve in zip(insertion_starts, curves[1:]):
        out[f"insertion_auc_{kind}"] = float(np.trapezoid(curve, fractions))
    return out


def dataset_faithfulness(
    info,
    images: np.ndarray,
    methods: Sequence[str],
    targets: Sequence[int] | None = None,
    steps: int = 20,
    batch_size: int = 32,
    params: dict[str, dict] | None = None,
    progress: Progress = None,
) -> dict[str, dict]:
    """Mean deletion and insertion AUC per method over a sample of images.

    Args:
        info: The ``ModelInfo``.
        images: (N, H, W, C) float32 in model range (e.g. 200 test images).
        methods: Registry keys.
        targets: Class per image; default the predicted class.
        steps: Steps per curve (fewer than for one image, to stay fast).
        batch_size: Images per forward pass.
        params: Optional parameters per method, ``{"smoothgrad": {"n": 20}}``.
        progress: Optional callback with the completed fraction.

    Returns:
        ``{method: {"deletion_auc", "insertion_auc", "deletion_std", "insertion_std", "n",
        "seconds"}}`` (means over images; "seconds" is the mean explanation time), or
        ``{method: {"skipped": reason}}`` for methods that do not apply.

    Cost: per image and method, the method's own cost plus 2 * (steps + 1) forward passes.
    """
    params = params or {}
    images = np.asarray(images, np.float32)
    out: dict[str, dict] = {}
    usable = []
    for m in methods:
        ok, reason = get_method(m).applies_to(info)
        if ok:
            usable.append(m)
        else:
            out[m] = {"skipped": reason}
    if targets is None:
        targets = [int(t) for t in np.argmax(info.forward(images), axis=1)]
    total = max(1, len(images) * len(usable))
    for mi, m in enumerate(usable):
        dels, inss, secs = [], [], []
        for i, x in enumerate(images):
            e = explain(info, x, m, int(targets[i]), **params.get(m, {}))
            c = deletion_insertion(info, x, e, steps=steps, batch_size=batch_size)
            dels.append(c.deletion_auc)
            inss.append(c.insertion_auc)
            secs.append(e.seconds)
            if progress is not None:
                progress((mi * len(images) + i + 1) / total)
        out[m] = {
            "deletion_auc": float(np.mean(dels)),
            "insertion_auc": float(np.mean(inss)),
            "deletion_std": float(np.std(dels)),
            "insertion_std": float(np.std(inss)),
            "n": len(images),
            "seconds": float(np.mean(secs)),
        }
    return out


# --------------------------------------------------------------------------- similarity


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps (NaN when one is constant)."""
    from scipy.stats import spearmanr

    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def ssim(a: np.ndarray, b: np.ndarray, win_size: int = 7, data_range: float = 1.0) -> float:
    """Structural similarity of two (H, W) maps (Wang, Bovik, Sheikh, Simoncelli 2004), with the
    defaults of ``skimage.metrics.structural_similarity``: a uniform ``win_size`` window, sample
    covariances, K1 = 0.01, K2 = 0.03, border of half a window cropped."""
    from scipy.ndimage import uniform_filter

    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if min(a.shape) < win_size:  # small maps: the largest odd window that fits
        win_size = min(a.shape) if min(a.shape) % 2 else min(a.shape) - 1
    npix = win_size**2
    cov = npix / (npix - 1)
    ux, uy = uniform_filter(a, win_size), uniform_filter(b, win_size)
    vx = cov * (uniform_filter(a * a, win_size) - ux * ux)
    vy = cov * (uniform_filter(b * b, win_size) - uy * uy)
    vxy = cov * (uniform_filter(a * b, win_size) - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    pad = (win_size - 1) // 2
    return float(s[pad : -pad or None, pad : -pad or None].mean())


# --------------------------------------------------------------------------- randomisation


@dataclass
class RandomisationResult:
    """Maps and similarities of the cascading model-randomisation check.

    Attributes:
        target: The explained class (the original model's prediction by default), fixed.
        methods: Methods compared (those that apply).
        layers: Randomised layers in cascade order (top first); step i has layers[:i+1]
            randomised.
        maps: ``{(step, method): heatmap}`` with step ``"original"`` or a layer name.
        spearman: ``{(layer, method): rho}`` against the original map.
        ssim: ``{(layer, method): ssim}`` against the original map.
        skipped: ``{method: reason}`` for methods that do not apply to the model.
    """

    target: int
    methods: list[str]
    layers: list[str]
    maps: dict = field(default_factory=dict)
    spearman: dict = field(default_factory=dict)
    ssim: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)


def _working_copy(info):
    """(info, lock) over the engine's private copy of the model, for randomisation."""
    model, lock = get_engine(info).working_copy()
    return dataclasses.replace(info, key=f"{info.key}:randomised", model=model), lock


def randomisable_layers(model) -> list[str]:
    """Layers with a kernel, from the output to the input (the cascade order)."""
    from vizcore.graph import graph_of

    return [n.name for n in reversed(graph_of(model).nodes)
            if getattr(n.layer, "kernel", None) is not None]


def _randomise(layer, seed: int) -> None:
    """Re-initialise a layer's kernel (and bias) with its own initialisers, seeded."""
    import keras

    def seeded(init, s):
        init = keras.initializers.get(init)
        cfg = init.get_config()
        if "seed" in cfg:
            cfg["seed"] = s
            init = type(init).from_config(cfg)
        return init

    kinit = seeded(getattr(layer, "kernel_initializer", "glorot_uniform"), seed)
    layer.kernel.assign(kinit(tuple(layer.kernel.shape), dtype=layer.kernel.dtype))
    bias = getattr(layer, "bias", None)
    if bias is not None:
        binit = seeded(getattr(layer, "bias_initializer", "zeros"), seed + 1)
        bias.assign(binit(tuple(bias.shape), dtype=bias.dtype))


def randomisation_check(
    info,
    x: np.ndarray,
    methods: Sequence[str],
    target: int | None = None,
    layers: Sequence[str] | None = None,
    seed: int = 0,
    params: dict[str, dict] | None = None,
    progress: Progress = None,
) -> RandomisationResult:
    """Cascading model-parameter randomisation (Adebayo et al. 2018, arXiv:1810.03292).

    Starting from the output, the kernels (and biases) of one more layer are re-initialised at
    each step (seeded, with the layer's own initialiser), on a private cached copy of the model;
    every method explains the same image and target on the partly random model, and its map is
    compared with the original map by Spearman rank correlation and SSIM. The shared model is
    never changed; the copy is reset from it at the start of each call.

    Args:
        info: The ``ModelInfo``.
        x: One image (H, W, C) float32 in model range.
        methods: Registry keys.
        target: Class to explain; default the original model's prediction (kept fixed).
        layers: Subset of :func:`randomisable_layers` to use as cascade steps (default all);
            they are randomised in top-down order.
        seed: Seed of the re-initialisation.
        params: Optional parameters per method.
        progress: Optional callback with the completed fraction.

    Cost: (number of steps + 1) times the cost of every method.
    """
    params = params or {}
    x = np.asarray(x, np.float32)
    if target is None:
        target = get_engine(info).predicted(x)
    usable, skipped = [], {}
    for m in methods:
        ok, reason = get_method(m).applies_to(info)
        if ok:
            usable.append(m)
        else:
            skipped[m] = reason
    order = randomisable_layers(info.model)
    if layers is not None:
        unknown = set(layers) - set(order)
        if unknown:
            raise ValueError(f"cannot randomise {sorted(unknown)}; layers with weights: {order}")
        steps = [name for name in order if name in set(layers)]
    else:
        steps = order
    res = RandomisationResult(int(target), usable, list(steps), skipped=skipped)
    for m in usable:
        res.maps[("original", m)] = explain(info, x, m, target, **params.get(m, {})).heatmap
    copy, lock = _working_copy(info)
    total = max(1, len(order[: order.index(steps[-1]) + 1]) if steps else 1)
    with lock:
        copy.model.set_weights(info.model.get_weights())
        engine = get_engine(copy)
        done = 0
        for i, name in enumerate(order):
            if steps and i > order.index(steps[-1]):
                break
            _randomise(copy.graph.layer(name), seed + 2 * i)
            done += 1
            if name not in steps:
                continue
            engine.sync_clones()
            for m in usable:
                heat = explain(copy, x, m, target, **params.get(m, {})).heatmap
                orig = res.maps[("original", m)]
                res.maps[(name, m)] = heat
                res.spearman[(name, m)] = spearman(orig, heat)
                res.ssim[(name, m)] = ssim(orig, heat)
            if progress is not None:
                progress(done / total)
        copy.model.set_weights(info.model.get_weights())
        engine.sync_clones()
    return res
