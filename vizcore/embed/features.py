"""Feature spaces of a dataset sample: raw pixels or any layer's activations, with predictions.

A class-balanced, seeded sample of images (:func:`sample_indices`) goes through one batched pass of
a cached tapped model (:func:`extract_features`), which reads every requested layer and the
model's output at once. Feature vectors longer than :data:`MAX_DIMS` are shortened by spatial
average pooling (conv maps) or a seeded sparse random projection (Achlioptas 2003). The default
space is :func:`penultimate_layer`, the layer feeding the classifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vizcore.embed._progress import Progress, report
from vizcore.engine import MAX_BATCH_VALUES  # the one memory budget per forward batch

#: Pseudo-layer name for the raw pixels (in the model's input range).
PIXELS = "pixels"
#: Sample sizes offered by the page.
MIN_SAMPLE, MAX_SAMPLE, DEFAULT_SAMPLE = 300, 10_000, 2_000
#: Feature vectors longer than this are reduced (spatial average pooling or a random projection).
MAX_DIMS = 4096


def sample_indices(dataset, n: int, seed: int = 0, *, lo: int = MIN_SAMPLE,
                   hi: int = MAX_SAMPLE) -> np.ndarray:
    """Sorted dataset indices of a class-balanced, seeded sample (``Dataset.balanced_sample``).

    Args:
        dataset: A :class:`vizcore.data.Dataset`.
        n: Requested size, between ``lo`` and ``hi``; a smaller dataset is taken whole.
        seed: Sampling seed (same seed, same sample).

    Raises:
        ValueError: ``n`` outside ``[lo, hi]``.
    """
    if not lo <= n <= hi:
        raise ValueError(f"sample size must be between {lo:,} and {hi:,}, not {n:,}")
    if n >= len(dataset):
        return np.arange(len(dataset))
    return dataset.balanced_sample(int(n), seed)


def output_layer(model) -> str:
    """Name of the layer that produces the model's (class score) output."""
    from vizcore.graph import graph_of

    return graph_of(model).output_node().name


def penultimate_layer(model) -> str:
    """The layer feeding the classifier: the input of the last weighted layer.

    Weight-free layers at the end (Softmax, Activation) are skipped to find the classifier, and
    Dropout layers in front of it are skipped too (they are the identity at inference), so this
    is ``fc2`` for the VGG-style model, ``gap`` for the GAP model and ``fc2`` for VGG16 (and the
    global pooling after a nested MobileNetV2 in a transfer model).
    """
    from vizcore.graph import PASS_THROUGH, graph_of

    g = graph_of(model)
    node = g.output_node()
    while not getattr(node.layer, "weights", None) and len(node.parents) == 1:
        node = g.node(node.parents[0])
    if len(node.parents) != 1:
        return PIXELS
    prev = g.node(g.skip_back(node.parents[0], PASS_THROUGH))
    return PIXELS if prev.kind == "InputLayer" else prev.name


def feature_layers(model) -> list[str]:
    """Feature spaces a user can pick: ``"pixels"`` then every layer but inputs and Dropout."""
    from vizcore.graph import PASS_THROUGH, graph_of

    return [PIXELS] + [n.name for n in graph_of(model).nodes
                       if n.kind != "InputLayer" and n.kind not in PASS_THROUGH]


# --------------------------------------------------------------------------- features


@dataclass
class FeatureSet:
    """Features of a sample of images, one row per image, plus the model's predictions.

    Attributes:
        values: Layer name (or ``"pixels"``) -> float32 (N, D) feature vectors.
        shapes: Layer name -> per-image output shape of the layer, before flattening.
        reductions: Layer name -> how a too-long vector was shortened ("" when it was not).
        probs: (N, K) class probabilities.
    """

    values: dict[str, np.ndarray]
    shapes: dict[str, tuple]
    reductions: dict[str, str]
    probs: np.ndarray

    @property
    def predictions(self) -> np.ndarray:
        return self.probs.argmax(axis=1)

    @property
    def confidence(self) -> np.ndarray:
        return self.probs.max(axis=1)


def model_images(info, images: np.ndarray) -> np.ndarray:
    """Dataset images (N, h, w, c) uint8 fitted to the model's input size and channels.

    Dataset images are bright-on-black already, so they are never inverted.
    """
    from vizcore.data import fit_image

    h, w, c = info.input_shape
    images = np.asarray(images)
    if images.shape[1:] == (h, w, c):
        return images
    return np.stack([fit_image(im, (h, w), c, invert=False) for im in images])


def _pool_factor(h: int, w: int, c: int, max_dims: int) -> int:
    """Smallest spatial average-pooling factor that brings h*w*c to at most ``max_dims``."""
    f = 1
    while -(-h // f) * -(-w // f) * c > max_dims and (f < h or f < w):
        f += 1
    return f


class _Reducer:
    """Shortens one layer's per-image output to at most ``max_dims`` values, batch by batch."""

    def __init__(self, shape: tuple, max_dims: int, seed: int = 0):
        self.shape = tuple(int(s) for s in shape)
        self.factor, self.projection, self.label = 1, None, ""
        size = int(np.prod(self.shape))
        if size <= max_dims:
            return
        if len(self.shape) == 3:
            h, w, c = self.shape
            self.factor = _pool_factor(h, w, c, max_dims)
            ph, pw = -(-h // self.factor), -(-w // self.factor)
            self.label = (f"{h}x{w}x{c} averaged over {self.factor}x{self.factor} windows "
                          f"to {ph}x{pw}x{c} = {ph * pw * c:,} values")
        else:
            from sklearn.random_projection import SparseRandomProjection

            self.projection = SparseRandomProjection(max_dims, random_state=seed)
            self.projection.fit(np.zeros((1, size), np.float32))
            self.label = (f"{size:,} values reduced to {max_dims:,} by a sparse random "
                          "projection (Achlioptas 2003; distances kept within a few per cent)")

    def __call__(self, out: np.ndarray) -> np.ndarray:
        if self.factor > 1:
            import tensorflow as tf

            out = tf.nn.avg_pool2d(out, self.factor, self.factor, "SAME").numpy()
        out = out.reshape(len(out), -1)
        if self.projection is not None:
            out = self.projection.transform(out)
        return np.asarray(out, np.float32)


def extract_features(info, images: np.ndarray, layers: Sequence[str] = (None,), *,
                     batch_size: int = 256, max_dims: int = MAX_DIMS,
                     progress: Progress = None) -> FeatureSet:
    """Pixels and/or layer activations of many images, with the model's predictions.

    One batched pass through a cached tapped model (``vizcore.features.tapped_model``) reads all
    requested layers and the output at once; the shared model is not changed.

    Cost: one forward pass per image, in batches of ``batch_size`` (capped at
    :data:`MAX_BATCH_VALUES` input values); memory N x D float32 per layer, D <= ``max_dims``.

    Args:
        info: The :class:`~vizcore.models.ModelInfo`.
        images: uint8 (N, h, w, c) raw images (fitted to the model's input size if needed).
        layers: Layer names, ``"pixels"``, or None for :func:`penultimate_layer`.
        batch_size: Images per forward batch.
        max_dims: Longer feature vectors are shortened: conv maps (h, w, c) by spatial average
            pooling, flat vectors by a seeded sparse random projection.
        progress: Optional ``progress(fraction, message)``.

    Returns:
        A :class:`FeatureSet` whose ``values`` are keyed by the resolved layer names.
    """
    from vizcore import features as vz_features

    model = info.model
    names = [penultimate_layer(model) if lyr is None else lyr for lyr in layers]
    known = set(feature_layers(model))
    for name in names:
        if name not in known:
            raise KeyError(f"no layer named {name!r}; choose one of {sorted(known)}")
    out_name = output_layer(model)
    taps = list(dict.fromkeys([n for n in names if n != PIXELS] + [out_name]))
    fn = vz_features.tapped_model(model, taps)
    shapes = {n: tuple(info.input_shape) if n == PIXELS else
              tuple(int(d) for d in info.graph.output_shape(n)[1:]) for n in names}
    reducers = {n: _Reducer(shapes[n], max_dims) for n in dict.fromkeys(names)}
    per_image = int(np.prod(info.input_shape))
    bs = int(max(1, min(batch_size, MAX_BATCH_VALUES // per_image)))
    parts: dict[str, list] = {n: [] for n in reducers}
    probs = []
    n_images = len(images)
    report(progress, 0.0, f"Reading {', '.join(reducers)} for {n_images:,} images...")
    for i in range(0, n_images, bs):
        raw = model_images(info, images[i: i + bs])
        x = info.preprocess(raw).astype(np.float32)
        outs = fn(x)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        got = dict(zip(taps, (o.numpy() for o in outs)))
        for n, reduce in reducers.items():
            parts[n].append(reduce(x if n == PIXELS else got[n]))
        p = got[out_name].reshape(len(x), -1).astype(np.float32)
        if not info.outputs_probabilities:
            p = np.exp(p - p.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
        probs.append(p)
        done = min(i + bs, n_images)
        report(progress, done / max(n_images, 1), f"Features: {done:,} / {n_images:,} images")
    values = {n: np.concatenate(v) if v else np.zeros((0, 0), np.float32)
              for n, v in parts.items()}
    return FeatureSet(values, shapes, {n: r.label for n, r in reducers.items()},
                      np.concatenate(probs) if probs else np.zeros((0, info.num_classes)))
