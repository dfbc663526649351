"""2-D maps of feature vectors: PCA, t-SNE and UMAP behind one :func:`project`.

Methods and papers:

* PCA: Pearson 1901, Hotelling 1933 (scikit-learn's randomized SVD, Halko et al. 2011,
  arXiv:0909.4061).
* t-SNE: van der Maaten and Hinton 2008 (JMLR 9), Barnes-Hut gradients (van der Maaten 2014,
  arXiv:1301.3342) for small samples and FFT-accelerated interpolation (FIt-SNE, Linderman et al.
  2019, arXiv:1712.09005) for large ones, both via openTSNE (Policar, Strazar and Zupan 2024,
  J. Stat. Software 109(3); bioRxiv 731877). openTSNE was chosen over scikit-learn's TSNE by
  ``benchmarks/bench_embed.py``.
* UMAP: McInnes, Healy and Melville 2018, arXiv:1802.03426 (umap-learn).

t-SNE runs on :func:`tsne_threads` threads. UMAP's numba code is compiled on its first use in a
process (30-40 s): :func:`warm_umap` does it ahead of time, :func:`umap_ready` tells whether it is
done, and a cold run reports its elapsed time from the calling thread meanwhile.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vizcore.embed._progress import Progress, report, scaled
from vizcore.embed.quality import exact_knn

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


def tsne_threads(n_jobs: int = 0) -> int:
    """Threads for a t-SNE run: ``n_jobs`` when positive, else every core (0 = automatic)."""
    if n_jobs > 0:
        return int(n_jobs)
    return max(1, os.cpu_count() or 1)


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

        report(progress, 0.0, "PCA...")
        n_comp = min(2, X.shape[1])
        pca = PCA(n_comp, svd_solver="randomized" if min(X.shape) > 200 else "full",
                  random_state=seed)
        coords = pca.fit_transform(X)
        if n_comp < 2:
            coords = np.hstack([coords, np.zeros_like(coords)])
        ev = tuple(float(v) for v in pca.explained_variance_ratio_) + (0.0,) * (2 - n_comp)
        report(progress, 1.0, "PCA done")
        return Projection(coords.astype(np.float32), method, p, time.perf_counter() - t0,
                          explained_variance=ev, input_dims=X.shape[1])
    report(progress, 0.0, f"PCA to {p['pca_dims']} dimensions...")
    Xr = pca_reduce(X, int(p["pca_dims"]), seed)
    if method == "tsne":
        proj = _tsne(Xr, p, seed, scaled(progress, 0.03, 1.0))
    else:
        proj = _umap(Xr, p, seed, scaled(progress, 0.03, 1.0))
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
        report(progress, 0.15 + 0.85 * it / total,
                f"t-SNE iteration {it} / {total}" + (" (early exaggeration)" if it <= ee else ""))
        return False

    jobs = tsne_threads(int(p["n_jobs"]))
    extra = ({"ints_in_interval": FFT_INTS_PER_INTERVAL, "min_num_intervals": FFT_MIN_INTERVALS}
             if gradient == "fft" else {})
    report(progress, 0.0, f"t-SNE: finding {int(3 * perplexity)} neighbours of each point...")
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
    report(progress, 0.15, "t-SNE: optimising...")
    emb = emb.optimize(ee, exaggeration=12, momentum=0.5, inplace=True, callbacks=[callback],
                       callbacks_every_iters=tick, n_jobs=jobs, **extra)
    state["base"] = ee
    emb = emb.optimize(total - ee, momentum=0.8, inplace=True, callbacks=[callback],
                       callbacks_every_iters=tick, n_jobs=jobs, **extra)
    coords = np.array(emb, np.float32)
    if every > 0 and iters[-1] != total:
        snaps.append(coords.copy())
        iters.append(total)
    report(progress, 1.0, "t-SNE done")
    out_p = dict(p, perplexity=perplexity, gradient=gradient, n_jobs=jobs)
    return Projection(coords, "tsne", out_p, 0.0, np.stack(snaps) if snaps else None, iters, ee)


# --------------------------------------------------------------------------- UMAP and warm-up

_UMAP_LOCK = threading.Lock()
_UMAP_WARM = threading.Event()
_UMAP_THREAD: list[threading.Thread] = []


_IMPORT_LOCK = threading.Lock()


def numba_cache_dir() -> Path:
    """Where UMAP's compiled numba code is kept between processes: ``$VIZCORE_NUMBA_CACHE``,
    else ``~/.cache/vizcore/numba``."""
    return Path(os.environ.get("VIZCORE_NUMBA_CACHE")
                or Path.home() / ".cache" / "vizcore" / "numba")


def import_umap():
    """Import ``umap`` with numba's on-disk cache on for its functions.

    umap-learn compiles about a hundred numba functions without ``cache=True``: 20-40 s of CPU
    in every new process. Importing it while ``numba.njit`` / ``numba.jit`` default to
    ``cache=True`` (and pointing numba's cache at :func:`numba_cache_dir`) stores the machine
    code on disk, so the exact-neighbour path (the app's samples up to 4,096 points) compiles
    once per machine: 19 s -> 0.4 s in the second process here. NN-descent's core
    (pynndescent, above 4,096 points) uses dynamic globals that numba cannot cache; the
    warm-up thread (:func:`warm_umap`) covers it per process.
    """
    import sys

    if "umap" in sys.modules:
        return sys.modules["umap"]
    with _IMPORT_LOCK:
        if "umap" in sys.modules:
            return sys.modules["umap"]
        import numba

        if not numba.config.CACHE_DIR:
            try:
                path = numba_cache_dir()
                path.mkdir(parents=True, exist_ok=True)
                numba.config.CACHE_DIR = str(path)
            except OSError:  # read-only home: numba falls back to __pycache__ or no cache
                pass
        njit, jit = numba.njit, numba.jit

        def cached(decorator):
            def wrapper(*args, **kwargs):
                kwargs.setdefault("cache", True)
                return decorator(*args, **kwargs)

            return wrapper

        numba.njit, numba.jit = cached(njit), cached(jit)
        try:
            import umap
        finally:
            numba.njit, numba.jit = njit, jit
        return umap


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

            umap = import_umap()

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
        umap = import_umap()

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = umap.UMAP(n_neighbors=nn, min_dist=float(p["min_dist"]), n_components=2,
                            random_state=seed).fit_transform(X)
        _UMAP_WARM.set()
        return out

    coords = _run_with_heartbeat(fit, progress, expected, label)
    report(progress, 1.0, "UMAP done")
    return Projection(np.asarray(coords, np.float32), "umap", dict(p, n_neighbors=nn), 0.0)
