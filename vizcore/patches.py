"""Maximally activating dataset patches: which real image regions excite a conv channel most.

For a conv channel, every image of a dataset is run through the model once; an image's score is
the channel's peak over all spatial positions, and the top-k images are shown with the receptive
field of the peak unit drawn as a box and cropped (Zeiler and Fergus 2014, "Visualizing and
understanding convolutional networks", arXiv:1311.2901; Girshick, Donahue, Darrell and Malik
2014, "Rich feature hierarchies...", arXiv:1311.2524).

The receptive field (size, jump = stride in input pixels, start = centre of the first unit) is
computed analytically from the layer configs (Conv2D kernel, stride, padding, dilation; pooling;
zero padding; cropping), following Dumoulin and Visin 2016 (arXiv:1603.07285) and Araujo, Norris
and Sim 2019 (Distill, "Computing receptive fields of convolutional neural networks").

The pass keeps only each image's per-channel peak value and its position ((N, C) arrays, about
10 MB for 10,000 images and 128 channels), cached per (model, layer, dataset key), so choosing
another channel is a sort, not another pass.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Progress = Callable[[float], None] | None

#: Layers that keep the spatial grid (the receptive field passes through unchanged).
_IDENTITY = {
    "InputLayer", "BatchNormalization", "Activation", "ReLU", "LeakyReLU", "ELU", "PReLU",
    "Softmax", "Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout",
    "LayerNormalization", "Rescaling", "Normalization", "Add", "Subtract", "Multiply",
    "Average", "Maximum", "Minimum", "Concatenate", "Identity",
}
_CONV = {"Conv2D", "DepthwiseConv2D", "SeparableConv2D"}
_POOL = {"MaxPooling2D", "AveragePooling2D"}

_CACHE_MAX = 16
_LOCK = threading.RLock()


# --------------------------------------------------------------------------- receptive fields


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of the units of one layer, per axis (rows, cols).

    Attributes:
        size: Input pixels seen by one unit along each axis.
        jump: Distance in input pixels between neighbouring units (the effective stride).
        start: Input coordinate (pixel centres at 0, 1, ...) of the centre of unit (0, 0);
            may be fractional or negative when padding reaches outside the image.
    """

    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[float, float]

    def box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) input pixel bounds (inclusive start, exclusive end) of
        unit (row, col), not clipped to the image."""
        out = []
        for i, idx in enumerate((row, col)):
            centre = self.start[i] + idx * self.jump[i]
            lo = int(np.floor(centre - (self.size[i] - 1) / 2.0 + 1e-6))
            out.append((lo, lo + self.size[i]))
        return out[0][0], out[1][0], out[0][1], out[1][1]


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (list, tuple)):
        return (int(v[0]), int(v[-1]))
    return (int(v), int(v))


def _same_pad_before(n: int | None, k_eff: int, s: int) -> int:
    """TensorFlow's 'same' padding: the extra pixel goes after, so before = total // 2."""
    if n is None:
        return (k_eff - 1) // 2
    out = -(-n // s)
    total = max((out - 1) * s + k_eff - n, 0)
    return total // 2


def _layer_rf(g, name: str, memo: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if name in memo:
        return memo[name]
    node = g.node(name)
    layer, kind = node.layer, node.kind
    parents = node.parents
    if not parents:
        rf = (np.ones(2), np.ones(2), np.zeros(2))
        memo[name] = rf
        return rf
    # several inputs (Add, Concatenate): the largest field is the honest bound
    cands = [_layer_rf(g, p, memo) for p in parents]
    r, j, s = max(cands, key=lambda c: c[0].max())
    r, j, s = r.copy(), j.copy(), s.copy()
    in_shape = tuple(node.inputs[0].shape)
    cfg = layer.get_config()
    if kind in _CONV or kind in _POOL:
        if kind in _CONV:
            k, st = _pair(cfg["kernel_size"]), _pair(cfg["strides"])
            dil = _pair(cfg.get("dilation_rate", 1))
        else:
            k = _pair(cfg["pool_size"])
            st = _pair(cfg["strides"] if cfg.get("strides") is not None else cfg["pool_size"])
            dil = (1, 1)
        pad = cfg.get("padding", "valid")
        for a in range(2):
            k_eff = dil[a] * (k[a] - 1) + 1
            before = 0
            if pad == "same":
                n = in_shape[1 + a] if len(in_shape) == 4 else None
                before = _same_pad_before(None if n is None else int(n), k_eff, st[a])
            elif pad != "valid":
                raise ValueError(f"layer {layer.name!r}: padding {pad!r} is not supported")
            s[a] = s[a] + ((k_eff - 1) / 2.0 - before) * j[a]
            r[a] = r[a] + (k_eff - 1) * j[a]
            j[a] = j[a] * st[a]
    elif kind == "ZeroPadding2D":
        p = cfg["padding"]
        top, left = int(p[0][0]), int(p[1][0])
        s = s - np.array([top, left]) * j
    elif kind == "Cropping2D":
        c = cfg["cropping"]
        s = s + np.array([int(c[0][0]), int(c[1][0])]) * j
    elif kind in _IDENTITY:
        pass
    else:
        raise ValueError(f"layer {layer.name!r} ({kind}) does not keep a spatial grid whose "
                         "receptive field vizcore can compute")
    memo[name] = (r, j, s)
    return r, j, s


def receptive_field(model, layer: str) -> ReceptiveField:
    """The receptive field of ``layer``'s units, computed from the layer configs.

    Recurrence per axis, from the input (r=1, j=1, start=0): for a layer with kernel k,
    dilation d (k_eff = d(k-1)+1), stride s and left padding p,
    ``r += (k_eff-1) j``, ``start += ((k_eff-1)/2 - p) j``, ``j *= s``. Cost: one walk over
    the layers.

    Raises:
        ValueError: for layers without a spatial grid (Dense, Flatten, global pooling) or with
            unsupported configs.
    """
    from vizcore.graph import graph_of

    g = graph_of(model)
    shape = g.output_shape(layer)
    if len(shape) != 4:
        raise ValueError(f"layer {layer!r} has no spatial grid (output {shape})"
                         "; choose a conv or pooling layer")
    r, j, s = _layer_rf(g, layer, {})
    return ReceptiveField((int(r[0]), int(r[1])), (int(j[0]), int(j[1])),
                          (float(s[0]), float(s[1])))


# --------------------------------------------------------------------------- the pass


@dataclass
class LayerPeaks:
    """Per image and channel: the peak activation of a conv layer and where it is.

    Attributes:
        layer: Layer name.
        values: float32 (N, C) peak activation per image and channel.
        rows: int16 (N, C) feature-map row of the peak.
        cols: int16 (N, C) feature-map column of the peak.
        grid: (h, w) of the feature map.
        seconds: Wall time of the pass.
    """

    layer: str
    values: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    grid: tuple[int, int]
    seconds: float


def _peaks_fn(model, layer: str):
    """A compiled ``x -> (max, argmax)`` over the spatial positions of ``layer`` (built once,
    in the model's engine)."""
    from vizcore.engine import get_engine

    engine = get_engine(model)

    def build():
        import tensorflow as tf

        sub = engine.graph.tap([layer])

        @tf.function(input_signature=[engine.spec_batch()])
        def fn(x):
            a = sub(x, training=False)
            flat = tf.reshape(a, [tf.shape(a)[0], -1, a.shape[-1]])
            return tf.reduce_max(flat, axis=1), tf.argmax(flat, axis=1, output_type=tf.int32)

        return fn

    return engine.cached(("peaks_fn", layer), build)


#: Images scanned for dataset patches when the model's input is not 28x28 grayscale.
BIG_MODEL_PATCH_IMAGES = 48


def dataset_images(shape: tuple[int, int, int]) -> tuple[np.ndarray, str, str]:
    """(uint8 Fashion-MNIST test images at the input size ``shape``, their key for
    :func:`layer_peaks` and the result store, a description): all 10,000 for a 28x28 gray
    model, a balanced 48 resized for a bigger one."""
    from vizcore import data

    ds = data.load_fashion_mnist("test")
    what = ds.source
    if tuple(ds.images.shape[1:]) == tuple(shape):
        return ds.images, f"fashion_mnist:test:{len(ds)}", what
    idx = ds.balanced_sample(BIG_MODEL_PATCH_IMAGES, seed=0)
    imgs = np.stack([data.fit_image(ds.images[i], shape[:2], shape[2], invert=False)
                     for i in idx])
    return imgs, f"fashion_mnist:test:fit{len(idx)}", (
        f"{len(idx)} images of the {what}, resized to {shape[0]}x{shape[1]} (a full pass over "
        f"the test set at this size would take too long on a CPU)")


def layer_peaks(info, layer: str, images: np.ndarray, data_key: str, batch_size: int = 256,
                progress: Progress = None) -> LayerPeaks:
    """Run ``images`` through the model once and keep each channel's peak per image (cached).

    Args:
        info: :class:`vizcore.models.ModelInfo` (its model is not modified).
        layer: A layer with a spatial output (conv, pooling, activation).
        images: uint8 (N, H, W, C) at the model's input size.
        data_key: Identifies ``images`` in the cache (e.g. ``"fashion_mnist:test:10000"``).
        batch_size: Images per compiled forward pass (capped at 32 for 224x224 inputs).
        progress: Optional callback receiving the completed fraction in [0, 1].

    Cost: one forward pass per image up to ``layer``, batched; memory 8 bytes per image and
    channel for the result.
    """
    from vizcore.engine import get_engine

    model = info.model
    per = get_engine(model).cached("peaks_results", OrderedDict)
    key = (layer, data_key)
    with _LOCK:
        if key in per:
            per.move_to_end(key)
            return per[key]
    out_shape = info.graph.output_shape(layer)
    if len(out_shape) != 4:
        raise ValueError(f"layer {layer!r} has no spatial maps; choose a conv layer")
    h, w = int(out_shape[1]), int(out_shape[2])
    if np.prod(info.input_shape[:2]) >= 224 * 224:
        batch_size = min(batch_size, 32)
    fn = _peaks_fn(model, layer)
    t0 = time.perf_counter()
    vals, locs = [], []
    n = len(images)
    for i in range(0, n, batch_size):
        x = info.preprocess(images[i : i + batch_size])
        v, a = fn(x)
        vals.append(v.numpy())
        locs.append(a.numpy())
        if progress is not None:
            progress(min(1.0, (i + batch_size) / max(n, 1)))
    values = np.concatenate(vals).astype(np.float32)
    loc = np.concatenate(locs)
    peaks = LayerPeaks(layer, values, (loc // w).astype(np.int16), (loc % w).astype(np.int16),
                       (h, w), time.perf_counter() - t0)
    with _LOCK:
        per[key] = peaks
        while len(per) > _CACHE_MAX:
            per.popitem(last=False)
    return peaks


# --------------------------------------------------------------------------- top-k patches


@dataclass
class TopPatches:
    """The k images that excite one channel most, with the peak unit's receptive field.

    Attributes:
        layer: Layer name.
        channel: Channel index.
        indices: (k,) dataset indices, strongest first.
        values: (k,) peak activations.
        positions: (k, 2) feature-map (row, col) of each peak.
        boxes: (k, 4) receptive field (top, left, bottom, right) clipped to the image.
        crops: uint8 (k, r, r, C) the receptive field cut out (padded with 0 where it reaches
            outside the image, so every crop has the field's full size).
        boxed: uint8 (k, H, W, 3) the whole images with the box drawn.
        rf: The layer's :class:`ReceptiveField`.
    """

    layer: str
    channel: int
    indices: np.ndarray
    values: np.ndarray
    positions: np.ndarray
    boxes: np.ndarray
    crops: np.ndarray
    boxed: np.ndarray
    rf: ReceptiveField


def top_k_indices(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values, largest first (ties: lower index first)."""
    values = np.asarray(values)
    k = min(int(k), len(values))
    if k <= 0:
        return np.zeros(0, np.int64)
    part = np.argpartition(-values, k - 1)[:k] if k < len(values) else np.arange(len(values))
    order = np.lexsort((part, -values[part]))
    return part[order]


def draw_box(img: np.ndarray, box: tuple[int, int, int, int],
             colour=(255, 40, 40), width: int = 1) -> np.ndarray:
    """A uint8 RGB copy of ``img`` with a rectangle (top, left, bottom, right) drawn."""
    from vizcore.render import to_rgb

    out = to_rgb(np.asarray(img)).copy()
    top, left, bottom, right = box
    h, w = out.shape[:2]
    top, left = max(top, 0), max(left, 0)
    bottom, right = min(bottom, h), min(right, w)
    if bottom <= top or right <= left:
        return out
    for t in range(width):
        out[min(top + t, h - 1), left:right] = colour
        out[max(bottom - 1 - t, 0), left:right] = colour
        out[top:bottom, min(left + t, w - 1)] = colour
        out[top:bottom, max(right - 1 - t, 0)] = colour
    return out


def crop(img: np.ndarray, box: tuple[int, int, int, int], fill: int = 0) -> np.ndarray:
    """The pixels of ``box`` (may reach outside the image; padded with ``fill``)."""
    top, left, bottom, right = box
    h, w = img.shape[:2]
    out = np.full((bottom - top, right - left, img.shape[2]), fill, img.dtype)
    t0, l0 = max(top, 0), max(left, 0)
    t1, l1 = min(bottom, h), min(right, w)
    if t1 > t0 and l1 > l0:
        out[t0 - top : t1 - top, l0 - left : l1 - left] = img[t0:t1, l0:l1]
    return out


def top_patches(info, peaks: LayerPeaks, images: np.ndarray, channel: int,
                k: int = 9) -> TopPatches:
    """The top-k images for ``channel`` from a cached :func:`layer_peaks` pass (Zeiler and
    Fergus 2014, arXiv:1311.2901): each image counts once, at its strongest position.

    Cost: a partial sort of N values and k crops; no model evaluation.
    """
    if not 0 <= channel < peaks.values.shape[1]:
        raise ValueError(f"channel must be in 0..{peaks.values.shape[1] - 1}")
    rf = receptive_field(info.model, peaks.layer)
    idx = top_k_indices(peaks.values[:, channel], k)
    pos = np.stack([peaks.rows[idx, channel], peaks.cols[idx, channel]], axis=1).astype(int)
    h, w = images.shape[1:3]
    raw_boxes = [rf.box(int(r), int(c)) for r, c in pos]
    boxes = np.array([(max(t, 0), max(lf, 0), min(b, h), min(rt, w))
                      for t, lf, b, rt in raw_boxes], dtype=int).reshape(-1, 4)
    crops = np.stack([crop(images[i], bx) for i, bx in zip(idx, raw_boxes)]) if len(idx) else \
        np.zeros((0, rf.size[0], rf.size[1], images.shape[-1]), np.uint8)
    boxed = np.stack([draw_box(images[i], tuple(bx), width=max(1, h // 100))
                      for i, bx in zip(idx, boxes)]) if len(idx) else \
        np.zeros((0, h, w, 3), np.uint8)
    return TopPatches(peaks.layer, int(channel), idx, peaks.values[idx, channel], pos, boxes,
                      crops, boxed, rf)


def clear_cache(model) -> None:
    """Forget the peak passes cached for ``model`` (its compiled functions stay)."""
    from vizcore.engine import get_engine

    with _LOCK:
        get_engine(model).cached("peaks_results", OrderedDict).clear()
