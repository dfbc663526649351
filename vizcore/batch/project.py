"""2-D maps of a whole dataset: fit t-SNE / UMAP on a sample, place every other point with the
fitted model's ``transform``, and measure the map on points it was not fitted on.

t-SNE: openTSNE (Policar, Strazar and Zupan 2024) with the app's settings (PCA to 50
dimensions, perplexity 30, early exaggeration 12 for a quarter of the iterations, FFT gradients
from 5,000 points); new points are placed by openTSNE's ``transform``: each starts at the
weighted mean of its neighbours in the fitted map and is optimised against the fixed map.
UMAP (McInnes, Healy and Melville 2018, arXiv:1802.03426): ``fit`` on the sample, ``transform``
for the rest.
"""

from __future__ import annotations

import time

import numpy as np

from vizcore.embed.projection import BH_BELOW, FFT_INTS_PER_INTERVAL, FFT_MIN_INTERVALS, import_umap

#: Points placed per ``transform`` call (progress, and memory for a million points).
CHUNK = 10_000
PCA_DIMS = 50
TSNE_ITERATIONS = 500
PERPLEXITY = 30.0
K = 10
#: Optimisation steps of each placed point (openTSNE's default is 250). New points start at the
#: median of their 25 nearest fitted neighbours; on Fashion-MNIST (fc2, 10,000 fitted, 60,000
#: placed) 50 steps took 16 s and gave a held-out 10-NN accuracy of 0.925 against 0.923 inside
#: the fitted sample.
TSNE_PLACE_ITERATIONS = 50


def _threads() -> int:
    import os

    return max(1, os.cpu_count() or 1)


def fit_tsne(Xs: np.ndarray, seed: int):
    """A fitted openTSNE embedding of the sample (keeps its affinities, for ``transform``)."""
    from openTSNE import TSNE, affinity

    n = len(Xs)
    perplexity = float(min(PERPLEXITY, max(1.0, (n - 1) / 3.0)))
    gradient = "bh" if n < BH_BELOW else "fft"
    extra = ({"ints_in_interval": FFT_INTS_PER_INTERVAL, "min_num_intervals": FFT_MIN_INTERVALS}
             if gradient == "fft" else {})
    jobs = _threads()
    aff = affinity.PerplexityBasedNN(Xs, perplexity=perplexity, n_jobs=jobs,
                                     random_state=seed, verbose=False)
    tsne = TSNE(2, perplexity=perplexity, initialization="pca", random_state=seed,
                negative_gradient_method=gradient, n_jobs=jobs, verbose=False)
    emb = tsne.prepare_initial(Xs, affinities=aff)
    ee = TSNE_ITERATIONS // 4
    emb = emb.optimize(ee, exaggeration=12, momentum=0.5, n_jobs=jobs, **extra)
    return emb.optimize(TSNE_ITERATIONS - ee, momentum=0.8, n_jobs=jobs, **extra)


def fit_umap(Xs: np.ndarray, seed: int):
    import warnings

    umap = import_umap()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return umap.UMAP(n_neighbors=15, min_dist=0.1, n_components=2,
                         random_state=seed).fit(Xs)


def _place(model, X: np.ndarray) -> np.ndarray:
    import warnings

    from openTSNE import TSNEEmbedding

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if isinstance(model, TSNEEmbedding):
            return np.asarray(model.transform(X, n_iter=TSNE_PLACE_ITERATIONS), np.float32)
        return np.asarray(model.transform(X), np.float32)


def fit_and_place(X: np.ndarray, labels: np.ndarray, projections, fit_sample: int,
                  heldout: int, seed: int, log=lambda s: None) -> tuple[dict, dict]:
    """Coordinates of every point for each projection, and a summary.

    Args:
        X: (N, D) features. labels: (N,) ints (-1 unknown).
        projections: ``"tsne"`` and/or ``"umap"``.
        fit_sample: Points each projection is fitted on (a seeded random sample).
        heldout: Points of the rest the quality numbers are measured on (if N <= fit_sample
            nothing is held out and the numbers are in-sample, as the summary says).
        seed: Seed of the samples and the projections.

    Returns:
        ``({name: (N, 2)}, summary)``; the summary has ``in_fit`` and ``held_out`` (N,) bool
        arrays, the sample sizes and per projection its seconds and quality numbers.
    """
    from sklearn.decomposition import PCA

    from vizcore.embed.quality import quality

    n = len(X)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    fit_idx = np.sort(order[: min(fit_sample, n)])
    rest = np.sort(order[min(fit_sample, n):])
    held = np.sort(rng.permutation(rest)[: min(heldout, len(rest))])
    in_fit = np.zeros(n, bool)
    in_fit[fit_idx] = True
    held_out = np.zeros(n, bool)
    held_out[held] = True
    t0 = time.perf_counter()
    dims = min(PCA_DIMS, X.shape[1], max(1, len(fit_idx) - 1))
    pca = PCA(dims, svd_solver="randomized", random_state=seed).fit(X[fit_idx])
    Xp = np.concatenate([pca.transform(X[i: i + 50_000]) for i in range(0, n, 50_000)]).astype(
        np.float32)
    summary: dict = {"images": n, "fit_sample": len(fit_idx), "heldout": len(held),
                     "pca_dims": dims, "pca_seconds": round(time.perf_counter() - t0, 2),
                     "projections": {}, "in_fit": in_fit, "held_out": held_out}
    coords = {}
    known = labels >= 0
    for name in projections:
        t0 = time.perf_counter()
        log(f"{name}: fitting on {len(fit_idx):,} points...")
        model = fit_tsne(Xp[fit_idx], seed) if name == "tsne" else fit_umap(Xp[fit_idx], seed)
        fitted = time.perf_counter() - t0
        Y = np.zeros((n, 2), np.float32)
        Y[fit_idx] = np.asarray(model if name == "tsne" else model.embedding_, np.float32)
        for i in range(0, len(rest), CHUNK):
            part = rest[i: i + CHUNK]
            Y[part] = _place(model, Xp[part])
            log(f"{name}: placed {min(i + CHUNK, len(rest)):,} / {len(rest):,} other points")
        placed = time.perf_counter() - t0 - fitted
        coords[name] = Y
        entry = {"fit_seconds": round(fitted, 2), "transform_seconds": round(placed, 2)}
        for where, idx in (("heldout", held), ("fit", fit_idx)):
            idx = idx[known[idx]]
            if len(idx) > 2 * K:
                q = quality(X[idx], Y[idx], labels[idx], k=K, seed=seed)
                entry[f"quality_{where}"] = {"trustworthiness": round(q.trustworthiness, 4),
                                             "knn_2d": round(q.knn_2d, 4),
                                             "knn_original": round(q.knn_original, 4),
                                             "k": q.k, "points": q.n_queries}
        summary["projections"][name] = entry
    return coords, summary
