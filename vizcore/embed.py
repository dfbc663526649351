"""The dataset seen through the network: PCA, t-SNE and UMAP maps of pixels and of layer features.

Pipeline: a class-balanced, seeded sample of images -> features (raw pixels, or any layer's
activations; the penultimate layer by default) -> a 2-D projection -> quality numbers
(trustworthiness, k-NN accuracy in 2-D versus in the original space) and nearest neighbours in
feature space.

Methods and papers:

* PCA: Pearson 1901, Hotelling 1933 (scikit-learn's randomized SVD, Halko et al. 2011,
  arXiv:0909.4061).
* t-SNE: van der Maaten and Hinton 2008 (JMLR 9), Barnes-Hut gradients (van der Maaten 2014,
  arXiv:1301.3342) for small samples and FFT-accelerated interpolation (FIt-SNE, Linderman et al.
  2019, arXiv:1712.09005) for large ones, both via openTSNE (Policar, Strazar and Zupan 2024,
  J. Stat. Software 109(3); bioRxiv 731877). openTSNE was chosen over scikit-learn's TSNE by
  ``benchmarks/bench_embed.py``.
* UMAP: McInnes, Healy and Melville 2018, arXiv:1802.03426 (umap-learn).
* Trustworthiness: Venna and Kaski 2001 (ICANN), as in ``sklearn.manifold.trustworthiness``.

Nothing here prints or touches Streamlit; long steps report progress through an optional
``progress(fraction, message)`` callback, always called from the caller's thread.
"""

from __future__ import annotations

import argparse
import io
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Pseudo-layer name for the raw pixels (in the model's input range).
PIXELS = "pixels"
#: Projection methods: key -> display name.
METHODS = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
#: Parameters per method and their defaults (unknown parameters raise TypeError). t-SNE's
#: ``theta`` is Barnes-Hut's accuracy (0 = exact; openTSNE and scikit-learn default to 0.5):
#: cells that look smaller than theta from a point are merged. On 2,000 Fashion-MNIST images,
#: 0.8 ran about 25 % faster than 0.5 with the same trustworthiness (0.997 for fc2, 0.991 for
#: pixels) and 10-NN accuracy (91 %, 75 %); van der Maaten (2014) reports little loss of quality
#: up to about this value.
DEFAULTS: dict[str, dict] = {
    "pca": {},
    "tsne": {"perplexity": 30.0, "iterations": 500, "snapshot_every": 20, "gradient": "auto",
             "n_jobs": 0, "pca_dims": 50, "theta": 0.8},
    "umap": {"n_neighbors": 15, "min_dist": 0.1, "pca_dims": 50},
}
#: Sample sizes offered by the page.
MIN_SAMPLE, MAX_SAMPLE, DEFAULT_SAMPLE = 300, 10_000, 2_000
#: Feature vectors longer than this are reduced (spatial average pooling or a random projection).
MAX_DIMS = 4096
#: At most this many input values per forward batch (32 images of 224x224x3).
MAX_BATCH_VALUES = 32 * 224 * 224 * 3
#: Below this many points t-SNE uses Barnes-Hut gradients, from it on FFT interpolation.
#: Measured on this 2-core machine (benchmarks/bench_embed.py, 500 iterations, two threads):
#: 4.1 s (Barnes-Hut) / 8.9 s (FFT) at 2,000 points, 14.3 / 13.0 s at 5,000, 32 / 15 s at 10,000.
BH_BELOW = 5_000
#: FFT gradients: interpolation intervals per unit of embedding length (openTSNE's
#: ``ints_in_interval``; its default is 1). The FFT grid grows with the square of the map's
#: extent, so the later iterations dominate; with 2 the 10,000-point map took 15 s instead of
#: 40 s, with the same trustworthiness (0.998) and 10-NN accuracy (0.914 vs 0.912).
FFT_INTS_PER_INTERVAL = 2
#: FFT gradients: at least this many intervals per axis (openTSNE's ``min_num_intervals``).
FFT_MIN_INTERVALS = 50
#: Up to this many points t-SNE's neighbours are found exactly (blocked matrix products); above
#: it openTSNE's approximate search (Annoy). Exact was faster and better here: 10,000 points,
#: 90 neighbours, 50 dimensions: 2.4 s against Annoy's 5.0 s (both including the affinities).
EXACT_KNN_UP_TO = 30_000


def exact_knn(X: np.ndarray, k: int, max_block_values: int = 1 << 25
              ) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours of every row of ``X`` (itself excluded), by Euclidean
    distance: (indices (N, k) int64, distances (N, k) float64), nearest first.

    Squared distances come from ``|a|^2 - 2 a.b + |b|^2`` in blocks of rows, so memory stays
    near ``max_block_values`` float32 values whatever N is."""
    X = np.asarray(X, np.float32)
    n = len(X)
    k = int(min(k, n - 1))
    sq = np.einsum("ij,ij->i", X, X)
    idx = np.empty((n, k), np.int64)
    dist = np.empty((n, k), np.float64)
    block = max(1, int(max_block_values // max(n, 1)))
    for s in range(0, n, block):
        rows = np.arange(s, min(n, s + block))
        d = sq[rows, None] - 2.0 * (X[rows] @ X.T) + sq[None, :]
        d[np.arange(len(rows)), rows] = np.inf
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
        pd = np.take_along_axis(d, part, axis=1)
        order = np.argsort(pd, axis=1, kind="stable")
        idx[rows] = np.take_along_axis(part, order, axis=1)
        dist[rows] = np.sqrt(np.maximum(np.take_along_axis(pd, order, axis=1), 0.0))
    return idx, dist


def tsne_threads(n_jobs: int = 0) -> int:
    """Threads for a t-SNE run: ``n_jobs`` when positive, else every core (0 = automatic)."""
    import os

    if n_jobs > 0:
        return int(n_jobs)
    return max(1, os.cpu_count() or 1)

Progress = Callable[[float, str], None] | None


def _report(progress: Progress, fraction: float, message: str) -> None:
    if progress is not None:
        progress(float(min(max(fraction, 0.0), 1.0)), message)


def _scaled(progress: Progress, lo: float, hi: float) -> Progress:
    """A callback mapping [0, 1] of a sub-step onto [lo, hi] of the whole."""
    if progress is None:
        return None
    return lambda f, m: progress(lo + (hi - lo) * f, m)


# --------------------------------------------------------------------------- sampling, layers


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
    _report(progress, 0.0, f"Reading {', '.join(reducers)} for {n_images:,} images...")
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
        _report(progress, done / max(n_images, 1), f"Features: {done:,} / {n_images:,} images")
    values = {n: np.concatenate(v) if v else np.zeros((0, 0), np.float32)
              for n, v in parts.items()}
    return FeatureSet(values, shapes, {n: r.label for n, r in reducers.items()},
                      np.concatenate(probs) if probs else np.zeros((0, info.num_classes)))


# --------------------------------------------------------------------------- projections


@dataclass
class Projection:
    """A 2-D map of N points.

    Attributes:
        coords: (N, 2) float32.
        method: Key of :data:`METHODS`.
        params: The parameters used (defaults filled in).
        seconds: Wall time of the projection.
        snapshots: (S, N, 2) float32 positions during t-SNE's optimisation (the first is the
            initialisation), or None.
        snapshot_iters: The iteration of each snapshot.
        exaggeration_iters: t-SNE's early-exaggeration iterations (0 for other methods).
        explained_variance: PCA only: the share of variance of the two components.
        input_dims: Dimensions fed to the method (after the PCA pre-reduction for t-SNE/UMAP).
    """

    coords: np.ndarray
    method: str
    params: dict
    seconds: float
    snapshots: np.ndarray | None = None
    snapshot_iters: list[int] = field(default_factory=list)
    exaggeration_iters: int = 0
    explained_variance: tuple[float, float] | None = None
    input_dims: int = 0


def method_params(method: str, params: Mapping | None = None) -> dict:
    """The defaults of ``method`` updated with ``params``.

    Raises:
        KeyError: unknown method. TypeError: unknown parameter.
    """
    if method not in METHODS:
        raise KeyError(f"unknown projection {method!r}; choose one of {list(METHODS)}")
    out = dict(DEFAULTS[method])
    for k, v in (params or {}).items():
        if k not in out:
            raise TypeError(f"{METHODS[method]} has no parameter {k!r}; it takes {sorted(out)}")
        out[k] = v
    return out


def pca_reduce(X: np.ndarray, dims: int = 50, seed: int = 0) -> np.ndarray:
    """PCA to ``dims`` dimensions when X is wider (the usual first step before t-SNE/UMAP)."""
    X = np.asarray(X, np.float32)
    if X.shape[1] <= dims or len(X) <= dims:
        return X
    from sklearn.decomposition import PCA

    return PCA(dims, svd_solver="randomized", random_state=seed).fit_transform(X).astype(
        np.float32)


def project(X: np.ndarray, method: str = "tsne", *, seed: int = 0, progress: Progress = None,
            **params) -> Projection:
    """Project feature vectors (N, D) to 2-D with PCA, t-SNE or UMAP.

    PCA (Pearson 1901; randomized SVD, Halko et al. 2011, arXiv:0909.4061): cost O(N D) per
    component. t-SNE (van der Maaten and Hinton 2008) via openTSNE (Policar et al. 2024):
    exact neighbours up to :data:`EXACT_KNN_UP_TO` points (approximate ones, Annoy, above), then
    ``iterations`` gradient steps, a quarter of them with early exaggeration 12; Barnes-Hut
    gradients O(N log N) below :data:`BH_BELOW` points, FFT interpolation (Linderman et al.
    2019, arXiv:1712.09005) O(N) from there on, with :data:`FFT_INTS_PER_INTERVAL`; every core
    unless ``n_jobs`` says otherwise. UMAP (McInnes et al. 2018, arXiv:1802.03426):
    nearest-neighbour graph + SGD layout; its numba code is compiled on the first call in a
    process (30-40 s, see :func:`warm_umap`). t-SNE and UMAP first reduce the
    data to ``pca_dims`` dimensions with PCA.

    Args:
        X: float32 (N, D) features.
        method: ``"pca"``, ``"tsne"`` or ``"umap"``.
        seed: Random seed (same seed and data, same map).
        progress: Optional ``progress(fraction, message)``.
        **params: See :data:`DEFAULTS`. t-SNE: ``perplexity`` (clipped to (N-1)/3),
            ``iterations`` (total, including early exaggeration), ``snapshot_every`` (record the
            positions every k iterations for the convergence animation; 0 = none),
            ``gradient`` ("auto", "bh", "fft"), ``n_jobs`` (0 = automatic), ``theta``
            (Barnes-Hut accuracy). UMAP: ``n_neighbors``, ``min_dist``.

    Returns:
        A :class:`Projection`.
    """
    p = method_params(method, params)
    X = np.asarray(X, np.float32)
    if X.ndim != 2 or len(X) < 5:
        raise ValueError(f"need at least 5 feature vectors (N, D), got shape {X.shape}")
    t0 = time.perf_counter()
    if method == "pca":
        from sklearn.decomposition import PCA

        _report(progress, 0.0, "PCA...")
        n_comp = min(2, X.shape[1])
        pca = PCA(n_comp, svd_solver="randomized" if min(X.shape) > 200 else "full",
                  random_state=seed)
        coords = pca.fit_transform(X)
        if n_comp < 2:
            coords = np.hstack([coords, np.zeros_like(coords)])
        ev = tuple(float(v) for v in pca.explained_variance_ratio_) + (0.0,) * (2 - n_comp)
        _report(progress, 1.0, "PCA done")
        return Projection(coords.astype(np.float32), method, p, time.perf_counter() - t0,
                          explained_variance=ev, input_dims=X.shape[1])
    _report(progress, 0.0, f"PCA to {p['pca_dims']} dimensions...")
    Xr = pca_reduce(X, int(p["pca_dims"]), seed)
    if method == "tsne":
        proj = _tsne(Xr, p, seed, _scaled(progress, 0.03, 1.0))
    else:
        proj = _umap(Xr, p, seed, _scaled(progress, 0.03, 1.0))
    proj.seconds = time.perf_counter() - t0
    proj.input_dims = Xr.shape[1]
    return proj


def _tsne(X: np.ndarray, p: dict, seed: int, progress: Progress) -> Projection:
    from openTSNE import TSNE

    n = len(X)
    total = max(int(p["iterations"]), 4)
    ee = max(1, total // 4)
    perplexity = float(min(float(p["perplexity"]), max(1.0, (n - 1) / 3.0)))
    gradient = p["gradient"]
    if gradient == "auto":
        gradient = "bh" if n < BH_BELOW else "fft"
    every = int(p["snapshot_every"] or 0)
    tick = every if every > 0 else 25
    snaps: list[np.ndarray] = []
    iters: list[int] = []
    state = {"base": 0}

    def callback(iteration: int, error: float, embedding) -> bool:
        it = state["base"] + iteration
        if every > 0:
            snaps.append(np.array(embedding, np.float32))
            iters.append(it)
        _report(progress, 0.15 + 0.85 * it / total,
                f"t-SNE iteration {it} / {total}" + (" (early exaggeration)" if it <= ee else ""))
        return False

    jobs = tsne_threads(int(p["n_jobs"]))
    extra = ({"ints_in_interval": FFT_INTS_PER_INTERVAL, "min_num_intervals": FFT_MIN_INTERVALS}
             if gradient == "fft" else {})
    _report(progress, 0.0, f"t-SNE: finding {int(3 * perplexity)} neighbours of each point...")
    tsne = TSNE(2, perplexity=perplexity, initialization="pca", random_state=seed,
                negative_gradient_method=gradient, n_jobs=jobs, theta=float(p["theta"]),
                verbose=False)
    affinities = None
    if n <= EXACT_KNN_UP_TO:
        from openTSNE.affinity import PerplexityBasedNN
        from openTSNE.nearest_neighbors import PrecomputedNeighbors

        idx, dist = exact_knn(X, min(n - 1, int(3 * perplexity)))
        affinities = PerplexityBasedNN(perplexity=perplexity, n_jobs=jobs, random_state=seed,
                                       knn_index=PrecomputedNeighbors(idx, dist))
    emb = tsne.prepare_initial(X, affinities=affinities)
    if every > 0:
        snaps.append(np.array(emb, np.float32))
        iters.append(0)
    _report(progress, 0.15, "t-SNE: optimising...")
    emb = emb.optimize(ee, exaggeration=12, momentum=0.5, inplace=True, callbacks=[callback],
                       callbacks_every_iters=tick, n_jobs=jobs, **extra)
    state["base"] = ee
    emb = emb.optimize(total - ee, momentum=0.8, inplace=True, callbacks=[callback],
                       callbacks_every_iters=tick, n_jobs=jobs, **extra)
    coords = np.array(emb, np.float32)
    if every > 0 and iters[-1] != total:
        snaps.append(coords.copy())
        iters.append(total)
    _report(progress, 1.0, "t-SNE done")
    out_p = dict(p, perplexity=perplexity, gradient=gradient, n_jobs=jobs)
    return Projection(coords, "tsne", out_p, 0.0, np.stack(snaps) if snaps else None, iters, ee)


# --------------------------------------------------------------------------- UMAP and warm-up

_UMAP_LOCK = threading.Lock()
_UMAP_WARM = threading.Event()
_UMAP_THREAD: list[threading.Thread] = []


def umap_ready() -> bool:
    """True once UMAP's numba code has been compiled in this process."""
    return _UMAP_WARM.is_set()


def warm_umap(background: bool = True) -> threading.Thread | None:
    """Compile UMAP's numba code once per process (30-40 s of CPU on the first call).

    Fits UMAP to 300 random points, on both its exact and its approximate (NN-descent)
    neighbour paths. Idempotent: later calls return the running thread or None.

    Args:
        background: Run in a daemon thread and return it; else block until done.
    """
    with _UMAP_LOCK:
        if _UMAP_WARM.is_set():
            return None
        if _UMAP_THREAD and _UMAP_THREAD[0].is_alive():
            return _UMAP_THREAD[0]

        def work():
            import warnings

            import umap

            rng = np.random.default_rng(0)
            X = rng.normal(size=(300, 10)).astype(np.float32)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                umap.UMAP(n_neighbors=10, n_epochs=20, random_state=0).fit_transform(X)
                umap.UMAP(n_neighbors=10, n_epochs=20, random_state=0,
                          force_approximation_algorithm=True).fit_transform(X)
            _UMAP_WARM.set()

        if not background:
            _UMAP_THREAD.clear()
        else:
            th = threading.Thread(target=work, name="vizcore-umap-warmup", daemon=True)
            _UMAP_THREAD[:] = [th]
            th.start()
            return th
    work()
    return None


def _run_with_heartbeat(fn: Callable, progress: Progress, expected: float, label: str):
    """Run ``fn`` in a worker thread; report elapsed time from the calling thread meanwhile."""
    if progress is None:
        return fn()
    box: dict = {}

    def work():
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    th = threading.Thread(target=work, name=f"vizcore-{label}", daemon=True)
    t0 = time.perf_counter()
    th.start()
    while th.is_alive():
        th.join(0.25)
        el = time.perf_counter() - t0
        progress(0.95 * (1 - np.exp(-el / max(expected, 1.0))), f"{label}: {el:.0f} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _umap(X: np.ndarray, p: dict, seed: int, progress: Progress) -> Projection:
    import warnings

    n = len(X)
    nn = int(max(2, min(int(p["n_neighbors"]), n - 1)))
    cold = not umap_ready()
    expected = 3.0 * n / 1000 + (40.0 if cold else 0.0)
    label = ("UMAP (first use in this server: compiling its numerical code, about 30-40 s "
             "once)" if cold else "UMAP: neighbour graph and layout")

    def fit():
        import umap

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = umap.UMAP(n_neighbors=nn, min_dist=float(p["min_dist"]), n_components=2,
                            random_state=seed).fit_transform(X)
        _UMAP_WARM.set()
        return out

    coords = _run_with_heartbeat(fit, progress, expected, label)
    _report(progress, 1.0, "UMAP done")
    return Projection(np.asarray(coords, np.float32), "umap", dict(p, n_neighbors=nn), 0.0)


# --------------------------------------------------------------------------- quality


@dataclass
class Quality:
    """How faithful a 2-D map is.

    Attributes:
        trustworthiness: Venna and Kaski (2001), in [0, 1]: 1 when every 2-D neighbour is also a
            neighbour in the original space (penalises false neighbours by their rank).
        knn_2d: Leave-one-out k-NN accuracy of the true labels using the 2-D positions.
        knn_original: The same in the original feature space.
        k: Neighbours used.
        n_queries: Points averaged over (all points, or a seeded random subset).
    """

    trustworthiness: float
    knn_2d: float
    knn_original: float
    k: int
    n_queries: int


def _vote(labels: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    n_cls = int(labels.max()) + 1 if labels.size else 1
    votes = np.zeros((len(neighbours), n_cls), np.int64)
    rows = np.repeat(np.arange(len(neighbours)), neighbours.shape[1])
    np.add.at(votes, (rows, labels[neighbours].ravel()), 1)
    return votes.argmax(axis=1)


def quality(X: np.ndarray, Y: np.ndarray, labels: np.ndarray, k: int = 10,
            max_queries: int = 2000, seed: int = 0, chunk: int = 500) -> Quality:
    """Trustworthiness and k-NN accuracy of a 2-D map ``Y`` of features ``X``.

    Trustworthiness (Venna and Kaski 2001) is computed exactly as
    ``sklearn.manifold.trustworthiness`` (ranks in the original space, Euclidean) but averaged
    over at most ``max_queries`` seeded random query points, each ranked against all N points,
    so it stays O(max_queries x N x D) in time and O(chunk x N) in memory instead of O(N^2)
    memory; with N <= max_queries it equals scikit-learn's value.

    Args:
        X: (N, D) original features. Y: (N, 2) positions. labels: (N,) ints.
        k: Neighbours (trustworthiness needs k < N / 2).
        max_queries: Query points to average over.
        seed: Seed of the query subset.
        chunk: Query rows per distance block.
    """
    from sklearn.metrics.pairwise import euclidean_distances
    from sklearn.neighbors import NearestNeighbors

    X = np.asarray(X, np.float32)
    Y = np.asarray(Y, np.float64)
    labels = np.asarray(labels, np.int64)
    n = len(X)
    k = int(min(k, max(1, (n - 1) // 2)))
    if n <= max_queries:
        queries = np.arange(n)
    else:
        queries = np.sort(np.random.default_rng(seed).choice(n, max_queries, replace=False))
    nn2 = NearestNeighbors(n_neighbors=k + 1).fit(Y)
    _, ind2 = nn2.kneighbors(Y[queries])
    # drop the point itself (first unless duplicates tie with it)
    ind2 = np.array([[j for j in row if j != q][:k] for q, row in zip(queries, ind2)])
    sq = np.einsum("ij,ij->i", X, X)
    penalty = 0.0
    orig_nn = np.empty((len(queries), k), np.int64)
    for s in range(0, len(queries), chunk):
        q = queries[s: s + chunk]
        d = euclidean_distances(X[q], X, Y_norm_squared=sq[None], squared=True).astype(
            np.float64)
        d[np.arange(len(q)), q] = np.inf
        srt = np.sort(d, axis=1)
        for r in range(len(q)):
            dq = d[r, ind2[s + r]]
            ranks = np.searchsorted(srt[r], dq, side="left") + 1
            penalty += float(np.sum(np.clip(ranks - k, 0, None)))
        orig_nn[s: s + len(q)] = np.argpartition(d, k, axis=1)[:, :k]
    m = len(queries)
    trust = 1.0 - penalty * 2.0 / (m * k * (2.0 * n - 3.0 * k - 1.0))
    acc2 = float(np.mean(_vote(labels, ind2) == labels[queries]))
    acco = float(np.mean(_vote(labels, orig_nn) == labels[queries]))
    return Quality(float(trust), acc2, acco, k, m)


def nearest_neighbours(X: np.ndarray, i: int, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows to row ``i`` of ``X`` (Euclidean, itself excluded), nearest first.

    Cost: O(N D). Returns (indices (k,), distances (k,)).
    """
    X = np.asarray(X, np.float32)
    d = np.sqrt(np.maximum(((X - X[i]) ** 2).sum(axis=1), 0.0))
    d[i] = np.inf
    k = int(min(k, len(X) - 1))
    idx = np.argpartition(d, k)[:k] if k < len(X) - 1 else np.flatnonzero(np.isfinite(d))
    idx = idx[np.argsort(d[idx], kind="stable")]
    return idx, d[idx]


# --------------------------------------------------------------------------- selection, tables


def point_from_selection(selection) -> int | None:
    """The sample position of the point a user picked in a plotly scatter.

    The figures put the sample position first in each point's ``customdata``; ``selection`` is
    Streamlit's plotly selection state (``{"points": [{"customdata": [pos, ...], ...}], ...}``)
    or the whole event (``{"selection": {...}}``). Returns None when nothing usable is selected.
    """
    if not selection:
        return None
    if "selection" in selection and "points" not in selection:
        selection = selection["selection"]
    for pt in selection.get("points", []) or []:
        cd = pt.get("customdata")
        if cd is None:
            continue
        value = cd[0] if isinstance(cd, (list, tuple, np.ndarray)) else cd
        try:
            return int(value)
        except (TypeError, ValueError):
            continue
    return None


def embedding_frame(ids: Sequence, labels: np.ndarray | None, label_names: Sequence[str] | None,
                    probs: np.ndarray, class_names: Sequence[str],
                    coords: Mapping[str, np.ndarray], id_name: str = "index"):
    """A pandas DataFrame: one row per image with id, true and predicted class, and positions.

    Args:
        ids: Dataset indices or file names.
        labels: True class per image (-1 or None when unknown).
        label_names: Names for ``labels``.
        probs: (N, K) probabilities.
        class_names: The model's class names.
        coords: Column prefix -> (N, 2) positions, e.g. ``{"": tsne, "pixels_": pix}`` gives
            columns x, y, pixels_x, pixels_y.
    """
    import pandas as pd

    pred = probs.argmax(axis=1)
    cols: dict = {id_name: list(ids)}
    if labels is not None:
        labels = np.asarray(labels)
        cols["label"] = labels
        cols["label_name"] = [label_names[i] if (label_names is not None and i >= 0) else ""
                              for i in labels]
    cols["predicted"] = pred
    cols["predicted_name"] = [class_names[i] for i in pred]
    cols["confidence"] = probs.max(axis=1).round(5)
    for prefix, xy in coords.items():
        cols[f"{prefix}x"] = np.asarray(xy)[:, 0].round(5)
        cols[f"{prefix}y"] = np.asarray(xy)[:, 1].round(5)
    return pd.DataFrame(cols)


def csv_bytes(frame) -> bytes:
    """CSV text of a DataFrame as UTF-8 bytes (for downloads)."""
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return buf.getvalue().encode()


# --------------------------------------------------------------------------- command line

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def add_embed_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``python -m vizcore embed`` (see :func:`embed_command`)."""
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--dataset", default="fashion_mnist",
                     help="dataset key: fashion_mnist, mnist or digits (default fashion_mnist)")
    src.add_argument("--folder", type=Path, default=None,
                     help="embed every image under this folder instead (a sub-folder name is "
                          "taken as the image's class)")
    parser.add_argument("--model", default="fashion_vgg",
                        help="fashion_vgg, fashion_gap, vgg16, vgg16-random or a .keras/.h5 file")
    parser.add_argument("--layer", default=None,
                        help="layer name or 'pixels' (default: the penultimate layer)")
    parser.add_argument("--method", choices=list(METHODS), default="tsne")
    parser.add_argument("--n", type=int, default=None,
                        help="balanced sample size (default: every image)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--perplexity", type=float, default=30.0, help="t-SNE perplexity")
    parser.add_argument("--iterations", type=int, default=750, help="t-SNE iterations")
    parser.add_argument("--n-neighbors", type=int, default=15, help="UMAP neighbours")
    parser.add_argument("--min-dist", type=float, default=0.1, help="UMAP minimum distance")
    parser.add_argument("--k", type=int, default=10, help="neighbours for the quality numbers")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--out", type=Path, required=True, help="CSV file to write")
    return parser


def _cli_model(spec: str):
    from vizcore import models

    if spec in models.BUILTIN:
        return models.load_builtin(spec)
    if spec in ("vgg16", "vgg16-random"):
        return models.load_vgg16("auto" if spec == "vgg16" else "random")
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"--model {spec!r} is neither a built-in model "
                                f"({', '.join(models.BUILTIN)}, vgg16, vgg16-random) nor a file")
    return models.load_user_model(path.read_bytes(), path.name)


def folder_images(folder: Path, size: tuple[int, int], channels: int
                  ) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """Every image under ``folder`` fitted to a model input: (files, images, labels, classes).

    Images directly in sub-folders get that sub-folder's name as class; others get label -1.
    Unreadable files are skipped. Raises FileNotFoundError when no image is found.
    """
    from vizcore.data import ImageError, fit_image, load_image

    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    classes = sorted({p.parent.name for p in files if p.parent != Path(folder)})
    names, images, labels = [], [], []
    for p in files:
        try:
            img = load_image(p)
        except ImageError:
            continue
        images.append(fit_image(img, size, channels, invert=None))
        names.append(str(p.relative_to(folder)))
        labels.append(classes.index(p.parent.name) if p.parent != Path(folder) else -1)
    if not images:
        raise FileNotFoundError(f"no readable image ({', '.join(sorted(IMAGE_SUFFIXES))}) "
                                f"under {folder}")
    return names, np.stack(images), np.asarray(labels, np.int64), classes


def embed_command(args: argparse.Namespace, log: Callable[[str], None] | None = None) -> int:
    """``python -m vizcore embed``: write a 2-D embedding of a dataset or an image folder as CSV.

    Columns: ``index`` (dataset) or ``file`` (folder), ``label``, ``label_name``, ``predicted``,
    ``predicted_name``, ``confidence``, ``x``, ``y``. Progress and the quality numbers go to
    ``log`` (stderr by default). Returns the process exit code.
    """
    import sys

    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    info = _cli_model(args.model)
    h, w, c = info.input_shape
    if args.folder is not None:
        ids, images, labels, label_names = folder_images(args.folder, (h, w), c)
        id_name = "file"
        if args.n is not None and args.n < len(ids):
            pick = np.sort(np.random.default_rng(args.seed).choice(len(ids), args.n, False))
            ids, images, labels = [ids[i] for i in pick], images[pick], labels[pick]
    else:
        from vizcore.data import load_dataset

        ds = load_dataset(args.dataset)
        idx = (np.arange(len(ds)) if args.n is None or args.n >= len(ds)
               else ds.balanced_sample(args.n, args.seed))
        ids, images, labels, label_names = idx.tolist(), ds.images[idx], ds.labels[idx], \
            ds.class_names
        id_name = "index"
    layer = args.layer or penultimate_layer(info.model)
    log(f"{len(ids):,} images, model {info.label}, layer {layer}, {METHODS[args.method]}")
    last = {"t": 0.0}

    def progress(f: float, msg: str) -> None:
        if time.perf_counter() - last["t"] > 2.0 or f >= 1.0:
            last["t"] = time.perf_counter()
            log(f"  {f:4.0%}  {msg}")

    fs = extract_features(info, images, [layer], batch_size=args.batch_size, progress=progress)
    X = fs.values[layer]
    if fs.reductions[layer]:
        log(f"  features: {fs.reductions[layer]}")
    params = {"pca": {},
              "tsne": {"perplexity": args.perplexity, "iterations": args.iterations,
                       "snapshot_every": 0},
              "umap": {"n_neighbors": args.n_neighbors, "min_dist": args.min_dist}}[args.method]
    proj = project(X, args.method, seed=args.seed, progress=progress, **params)
    log(f"  {METHODS[args.method]} of {len(X):,} x {X.shape[1]:,} features: {proj.seconds:.1f} s")
    known = labels >= 0
    if known.sum() > 2 * args.k:
        q = quality(X[known], proj.coords[known], labels[known], k=args.k)
        log(f"  trustworthiness {q.trustworthiness:.3f}; {q.k}-NN accuracy {q.knn_2d:.3f} in 2-D "
            f"vs {q.knn_original:.3f} in the original space")
    frame = embedding_frame(ids, labels, label_names, fs.probs, info.class_names,
                            {"": proj.coords}, id_name=id_name)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(csv_bytes(frame))
    log(f"wrote {len(frame):,} rows to {args.out}")
    return 0
