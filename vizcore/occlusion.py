"""Occlusion sensitivity and hand-made occlusions.

Zeiler and Fergus (2014), "Visualizing and Understanding Convolutional Networks" (ECCV 2014,
arXiv:1311.2901), section 4.2: slide a grey square over the image and record the probability of
the class at every position. Where covering the image makes the probability drop, the model
relied on what was there.

The map at input resolution is, for each pixel, the mean over every patch position covering it
of ``p_target(image) - p_target(occluded image)`` (the "drop", positive where covering hurts the
class; the same aggregation as Captum's ``Occlusion``); the probability map is the mean occluded
probability. Patch positions run from the top-left corner with the given stride, and a last
row/column of positions is added flush with the border so every pixel is covered.

All occluded images are built inside one compiled ``tf.function`` (fixed input signature, class
index passed as a tensor) from patch origins, so only the image, the fill image and a (B, 2)
array of origins cross into TensorFlow per batch.

The registry method ``"occlusion"`` (:mod:`vizcore.explain.occlusion`) is a thin wrapper over
:func:`occlusion_sensitivity`; :mod:`vizcore.incremental` evaluates a patch's effect on
plain conv/pool chains without recomputing the whole image.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from vizcore import incremental
from vizcore.engine import Engine, Progress, cap_batch, get_engine
from vizcore.incremental import Geometry

FILLS = ("gray", "mean", "blur", "zero")
FILL_HELP = {
    "gray": "mid-grey (pixel value 128), as in Zeiler and Fergus",
    "mean": "the image's own mean colour",
    "blur": "a blurred copy of the image (removes detail, keeps colour and rough shape)",
    "zero": "all-zero model input (black for 0..1 scaling, ImageNet's mean colour for caffe)",
}


@dataclass
class OcclusionResult:
    """An occlusion-sensitivity map of one image for one class.

    Attributes:
        drop: (H, W) float32: mean drop of the target probability when the pixel is covered
            (positive = covering it lowers the class's probability). Signed.
        prob: (H, W) float32: mean target probability when the pixel is covered, in [0, 1].
        grid_prob: (ny, nx) target probability for each patch position (Zeiler and Fergus's map).
        ys: (ny,) top rows of the patch positions.
        xs: (nx,) left columns of the patch positions.
        base_prob: Target probability of the unoccluded image.
        target: The class explained.
        patch: (height, width) of the patch in pixels.
        stride: Step between patch positions in pixels.
        fill: What the patch was filled with (one of :data:`FILLS`).
        passes: Number of forward passes (one per patch position, plus one).
        seconds: Wall time.
        incremental: True when the passes recomputed only the windows the patches changed
            (:mod:`vizcore.incremental`).
    """

    drop: np.ndarray
    prob: np.ndarray
    grid_prob: np.ndarray
    ys: np.ndarray
    xs: np.ndarray
    base_prob: float
    target: int
    patch: tuple[int, int]
    stride: int
    fill: str
    passes: int
    seconds: float
    incremental: bool = False

    @property
    def grid_drop(self) -> np.ndarray:
        """(ny, nx) drop of the target probability for each patch position."""
        return (self.base_prob - self.grid_prob).astype(np.float32)


# --------------------------------------------------------------------------- geometry


def auto_patch(shape: tuple[int, ...]) -> int:
    """Default patch side: about 1/7 of the shorter image side (4 px at 28, 32 px at 224)."""
    return max(1, int(round(min(shape[:2]) / 7)))


def auto_stride(shape: tuple[int, ...], patch: int) -> int:
    """Default stride: 1 pixel on small images (<= 64 px), else half the patch."""
    return 1 if min(shape[:2]) <= 64 else max(1, patch // 2)


def positions(size: int, patch: int, stride: int) -> np.ndarray:
    """Top-left coordinates of the patch along one axis: 0, stride, ... and a last position
    flush with the border (so every pixel is covered)."""
    if patch >= size:
        return np.zeros(1, np.int32)
    pos = list(range(0, size - patch + 1, stride))
    if pos[-1] != size - patch:
        pos.append(size - patch)
    return np.asarray(pos, np.int32)


def resolve_geometry(
    shape: tuple[int, ...], patch: int | None, stride: int | None
) -> tuple[tuple[int, int], int, np.ndarray, np.ndarray]:
    """(patch (ph, pw), stride, ys, xs) for an (H, W, C) input; None or 0 means automatic."""
    h, w = shape[:2]
    p = auto_patch(shape) if not patch else int(patch)
    if p < 1:
        raise ValueError(f"patch must be at least 1 pixel, not {patch}")
    s = auto_stride(shape, p) if not stride else int(stride)
    if s < 1:
        raise ValueError(f"stride must be at least 1 pixel, not {stride}")
    ph, pw = min(p, h), min(p, w)
    return (ph, pw), s, positions(h, ph, s), positions(w, pw, s)


# --------------------------------------------------------------------------- fills


def fill_image(engine: Engine, x: np.ndarray, fill: str | np.ndarray, patch: int = 4) -> np.ndarray:
    """The image occluded pixels take, (H, W, C) float32 in model range.

    Args:
        engine: The model's engine (for its input scaling).
        x: The image, (H, W, C) model range.
        fill: One of :data:`FILLS`, or an array broadcastable to ``x``.
        patch: Patch side; sets the blur's strength (sigma = patch / 2 pixels).
    """
    from vizcore.models import scale_pixels

    x = np.asarray(x, np.float32)
    if isinstance(fill, np.ndarray):
        return np.broadcast_to(fill.astype(np.float32), x.shape).copy()
    if fill == "gray":
        grey = np.full((1, 1, x.shape[-1]), 128, np.uint8)
        return np.broadcast_to(scale_pixels(grey, engine.scaling), x.shape).astype(np.float32)
    if fill == "mean":
        return np.broadcast_to(x.mean(axis=(0, 1), keepdims=True), x.shape).astype(np.float32)
    if fill == "blur":
        from scipy.ndimage import gaussian_filter

        sigma = max(1.0, patch / 2.0)
        return gaussian_filter(x, sigma=(sigma, sigma, 0), mode="nearest").astype(np.float32)
    if fill == "zero":
        return np.zeros_like(x)
    raise ValueError(f"unknown fill {fill!r}; choose one of {list(FILLS)}")


# --------------------------------------------------------------------------- compiled core


def _occlusion_fn(engine: Engine):
    """Compiled ``(x (H,W,C), fill (H,W,C), origins (B,2), size (2,), cls) -> p_cls (B,)``:
    the softmax probability of ``cls`` for ``x`` with a ``size`` patch at each origin replaced
    by ``fill``. B forward passes in one batch."""

    def build():
        import tensorflow as tf

        tap, to_logits = engine.trunk()
        h, w = engine.input_shape[:2]

        @tf.function(
            autograph=False,
            input_signature=[
                engine.spec_image(),
                engine.spec_image(),
                tf.TensorSpec([None, 2], tf.int32),
                tf.TensorSpec([2], tf.int32),
                tf.TensorSpec([], tf.int32),
            ],
        )
        def run(x, fill, origins, size, cls):
            rows = tf.range(h)[None, :]
            cols = tf.range(w)[None, :]
            y0, x0 = origins[:, :1], origins[:, 1:]
            in_rows = (rows >= y0) & (rows < y0 + size[0])  # (B, H)
            in_cols = (cols >= x0) & (cols < x0 + size[1])  # (B, W)
            mask = in_rows[:, :, None, None] & in_cols[:, None, :, None]
            imgs = tf.where(mask, fill[None], x[None])
            probs = tf.nn.softmax(to_logits(tap(imgs, training=False)), axis=-1)
            return probs[:, cls]

        return run

    return engine.cached("occlusion", build)


def _plan(engine: Engine):
    """The model's :class:`~vizcore.incremental.Plan` (None for models with branches)."""

    return engine.cached("incremental_plan", lambda: incremental.plan(engine.model))


def _base_maps_fn(engine: Engine):
    """Compiled ``x (H,W,C) -> [output (h,w,F) of every step of the plan]``."""

    def build():
        import tensorflow as tf


        p = _plan(engine)

        @tf.function(autograph=False, input_signature=[engine.spec_image()])
        def run(x):
            return [m[0] for m in incremental.base_maps(p, x[None])]

        return run

    return engine.cached("occlusion_base_maps", build)


def _incremental_fn(engine: Engine, geo: Geometry):
    """Compiled ``(x, fill, indices, bases, cls) -> p_cls (B,)``: as :func:`_occlusion_fn`,
    with convolutions and poolings evaluated only on the window the patch changed
    (:mod:`vizcore.incremental`; the patch positions are encoded in ``indices``). One
    trace per window geometry."""

    def build():
        import tensorflow as tf


        p = _plan(engine)
        base_specs = [tf.TensorSpec([*st.out_hw, st.out_c], tf.float32)
                      for st in p.steps]
        index_specs = [tf.TensorSpec([None, None], tf.int32)] * (len(p.steps) + 1)
        probabilities = engine.outputs_probabilities

        @tf.function(
            autograph=False,
            input_signature=[engine.spec_image(), engine.spec_image(), index_specs, base_specs,
                             tf.TensorSpec([], tf.int32)],
        )
        def run(x, fill, indices, bases, cls):
            out = incremental.forward(p, geo, x, fill, indices, bases)
            probs = out if probabilities else tf.nn.softmax(out, axis=-1)
            return probs[:, cls]

        return run

    return engine.cached(("occlusion_incremental", geo.key), build)


def occlusion_sensitivity(
    engine: Engine,
    x: np.ndarray,
    target: int = -1,
    patch: int | None = None,
    stride: int | None = None,
    fill: str | np.ndarray = "gray",
    batch_size: int = 1024,
    progress: Progress = None,
    incremental_passes: bool = True,
) -> OcclusionResult:
    """Occlusion sensitivity map (Zeiler and Fergus 2014, arXiv:1311.2901).

    Args:
        engine: The model's :class:`~vizcore.engine.Engine`.
        x: One image, (H, W, C) float32 in the model's input range.
        target: Class index; -1 = the predicted class.
        patch: Side of the square patch in pixels; None/0 = :func:`auto_patch`.
        stride: Step between positions in pixels; None/0 = :func:`auto_stride`.
        fill: One of :data:`FILLS` (or an (H, W, C) array in model range).
        batch_size: Occluded images per forward pass (capped at 32 images of 224x224x3).
        progress: Optional callback receiving the completed fraction in [0, 1].
        incremental_passes: Evaluate each convolution only where the patch changed its input
            (:mod:`vizcore.incremental`) when the model is a chain of layers; the map is
            the same up to float rounding. False runs plain batched passes.

    Cost: 1 + ny * nx forward passes (one per patch position), batched; no backward pass.
    For a 28x28 image, patch 4 and stride 1 that is 626 passes. With incremental passes the
    early convolutions cost a fraction of that (about half the time for the default CNN).
    """

    t0 = time.perf_counter()
    x = np.asarray(x, np.float32)
    (ph, pw), s, ys, xs = resolve_geometry(x.shape, patch, stride)
    fill_name = "custom" if isinstance(fill, np.ndarray) else str(fill)
    fimg = fill_image(engine, x, fill, max(ph, pw))
    base = engine.probs_fn()(x[None]).numpy()[0]
    tgt = int(np.argmax(base)) if target is None or target < 0 else int(target)
    if not 0 <= tgt < engine.num_classes:
        raise ValueError(f"target {tgt} is outside 0..{engine.num_classes - 1}")
    origins = np.stack(np.meshgrid(ys, xs, indexing="ij"), axis=-1).reshape(-1, 2)
    origins = origins.astype(np.int32)
    bs = cap_batch(engine, batch_size)
    size = np.array([ph, pw], np.int32)
    cls = np.int32(tgt)
    n = len(origins)
    out = np.empty(n, np.float32)
    p = _plan(engine) if incremental_passes else None
    geo = incremental.geometry(p, origins, (ph, pw)) if p is not None else None
    windowed = bool(geo is not None and geo.cropped)
    if windowed:
        run, bases = _incremental_fn(engine, geo), _base_maps_fn(engine)(x)

        def batch(i: int):
            idx = incremental.gather_indices(p, geo, origins, (ph, pw), slice(i, i + bs))
            return run(x, fimg, idx, bases, cls)
    else:
        run = _occlusion_fn(engine)

        def batch(i: int):
            return run(x, fimg, origins[i : i + bs], size, cls)

    for i in range(0, n, bs):
        out[i : i + bs] = batch(i).numpy()
        if progress is not None:
            progress(min(1.0, (i + bs) / n))
    grid = out.reshape(len(ys), len(xs))
    prob = spread(grid, ys, xs, (ph, pw), x.shape[:2])
    drop = (float(base[tgt]) - prob).astype(np.float32)
    return OcclusionResult(drop, prob, grid, ys, xs, float(base[tgt]), tgt, (ph, pw), s,
                           fill_name, n + 1, time.perf_counter() - t0, windowed)


def spread(grid: np.ndarray, ys: np.ndarray, xs: np.ndarray, patch: tuple[int, int],
           shape: tuple[int, int]) -> np.ndarray:
    """Per-pixel mean of the ``grid`` values of every patch position covering the pixel.

    Separable: a box sum along rows, then along columns (O(ny*nx + H*W) work, no Python loop
    over positions)."""
    h, w = shape
    ph, pw = patch
    # row membership: R[y, i] = 1 when patch row i covers pixel row y; same for columns
    rr = (np.arange(h)[:, None] >= ys[None]) & (np.arange(h)[:, None] < ys[None] + ph)
    cc = (np.arange(w)[:, None] >= xs[None]) & (np.arange(w)[:, None] < xs[None] + pw)
    r, c = rr.astype(np.float64), cc.astype(np.float64)
    total = r @ grid.astype(np.float64) @ c.T
    count = r.sum(axis=1)[:, None] * c.sum(axis=1)[None, :]
    return (total / np.maximum(count, 1)).astype(np.float32)


def occlusion_map(
    info,
    x: np.ndarray,
    patch: int | None = None,
    stride: int | None = None,
    fill: str | np.ndarray = "gray",
    target: int | None = None,
    batch_size: int = 1024,
    progress: Progress = None,
    incremental_passes: bool = True,
) -> OcclusionResult:
    """Occlusion sensitivity of one image for a :class:`~vizcore.models.ModelInfo`.

    Zeiler and Fergus (2014), "Visualizing and Understanding Convolutional Networks",
    arXiv:1311.2901. See :func:`occlusion_sensitivity` for the arguments (``target`` None =
    the predicted class). Cost: 1 + (number of patch positions) forward passes, batched.
    """
    x = np.asarray(x, np.float32)
    engine = get_engine(info)
    if x.shape != engine.input_shape:
        raise ValueError(f"expected one image of shape {engine.input_shape}, got {x.shape}")
    return occlusion_sensitivity(engine, x, -1 if target is None else int(target), patch,
                                 stride, fill, batch_size, progress, incremental_passes)


def occlusion_loop(info, x: np.ndarray, patch: int, stride: int, fill: str = "gray",
                   target: int | None = None) -> np.ndarray:
    """Reference implementation: one occluded copy and one ``info.forward`` call per patch
    position (no batching). Returns the (ny, nx) grid of target probabilities. For tests and the
    benchmark's baseline only."""
    x = np.asarray(x, np.float32)
    engine = get_engine(info)
    (ph, pw), _, ys, xs = resolve_geometry(x.shape, patch, stride)
    fimg = fill_image(engine, x, fill, max(ph, pw))
    tgt = int(np.argmax(info.forward(x[None])[0])) if target is None else int(target)
    grid = np.empty((len(ys), len(xs)), np.float32)
    for i, y0 in enumerate(ys):
        for j, x0 in enumerate(xs):
            img = x.copy()
            img[y0 : y0 + ph, x0 : x0 + pw] = fimg[y0 : y0 + ph, x0 : x0 + pw]
            grid[i, j] = info.forward(img[None])[0, tgt]
    return grid


# --------------------------------------------------------------------------- hand-made occlusion


def mask_from_canvas(rgba: np.ndarray, shape: tuple[int, ...], threshold: float = 0.5
                     ) -> np.ndarray:
    """A drawing layer (h, w, 4) uint8 RGBA (e.g. a canvas over the image) -> (H, W) bool mask
    of the input pixels it covers: a pixel is covered when at least ``threshold`` of its area is
    painted (alpha > 0)."""
    from PIL import Image

    a = np.asarray(rgba)
    if a.ndim != 3 or a.shape[-1] != 4:
        raise ValueError(f"expected an RGBA drawing (h, w, 4), got shape {a.shape}")
    painted = ((a[..., 3] > 0) * 255).astype(np.uint8)
    h, w = shape[:2]
    small = np.asarray(Image.fromarray(painted).resize((w, h), Image.BOX), np.float32) / 255.0
    return small >= threshold


def apply_mask(engine: Engine, x: np.ndarray, mask: np.ndarray, fill: str | np.ndarray = "gray",
               patch: int = 4) -> np.ndarray:
    """``x`` with the pixels where ``mask`` (H, W) is True replaced by the fill image."""
    x = np.asarray(x, np.float32)
    m = np.asarray(mask, bool)
    if m.shape != x.shape[:2]:
        raise ValueError(f"mask shape {m.shape} does not match the image {x.shape[:2]}")
    return np.where(m[..., None], fill_image(engine, x, fill, patch), x).astype(np.float32)


@dataclass
class OcclusionComparison:
    """The original and a hand-occluded image side by side.

    Attributes:
        occluded: (H, W, C) model range.
        mask: (H, W) bool, True where covered.
        probs: (K,) probabilities of the original.
        probs_occluded: (K,) probabilities of the occluded image.
        target: Class the explanations explain (the original's prediction unless chosen).
        heat: (H, W) [0, 1] explanation of the original (None without a method).
        heat_occluded: (H, W) [0, 1] explanation of the occluded image.
        method: The explanation's registry key.
    """

    occluded: np.ndarray
    mask: np.ndarray
    probs: np.ndarray
    probs_occluded: np.ndarray
    target: int
    heat: np.ndarray | None
    heat_occluded: np.ndarray | None
    method: str | None

    @property
    def covered(self) -> float:
        """Share of the image's pixels covered."""
        return float(self.mask.mean())

    @property
    def target_drop(self) -> float:
        """Drop of the target's probability caused by the occlusion."""
        return float(self.probs[self.target] - self.probs_occluded[self.target])


def compare_occlusion(info, x: np.ndarray, mask: np.ndarray, fill: str = "gray",
                      method: str | None = "gradcam", target: int | None = None,
                      **params) -> OcclusionComparison:
    """Predictions and one explanation of ``x`` and of ``x`` with ``mask`` covered.

    Cost: 1 forward pass for both images, plus the explanation method's cost twice.

    Args:
        info: The ModelInfo.
        x: (H, W, C) model range.
        mask: (H, W) bool, True = covered.
        fill: One of :data:`FILLS`.
        method: A registry key of :mod:`vizcore.explain` or None for no explanation.
        target: Class to explain in both images; None = the original's predicted class, so the
            two maps show how the evidence for the same class moved.
        **params: Parameters of the explanation method.
    """
    from vizcore.explain.base import explain

    engine = get_engine(info)
    x = np.asarray(x, np.float32)
    occ = apply_mask(engine, x, mask, fill)
    probs = info.forward(np.stack([x, occ]))
    tgt = int(np.argmax(probs[0])) if target is None else int(target)
    heat = heat_occ = None
    if method:
        heat = explain(info, x, method, target=tgt, **params).heatmap
        heat_occ = explain(info, occ, method, target=tgt, **params).heatmap
    return OcclusionComparison(occ, np.asarray(mask, bool), probs[0], probs[1], tgt, heat,
                               heat_occ, method)
