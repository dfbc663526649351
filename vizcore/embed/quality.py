"""How faithful a 2-D map is, and neighbours in feature space.

* Trustworthiness: Venna and Kaski 2001 (ICANN), as in ``sklearn.manifold.trustworthiness``,
  averaged over a seeded subset of query points so that memory stays O(chunk x N).
* Leave-one-out k-NN accuracy of the true labels, in 2-D and in the original space (a majority
  vote of the k neighbours).
* Exact k nearest neighbours of every point in blocks of rows (:func:`exact_knn`, also t-SNE's
  neighbour search) and of one point (:func:`nearest_neighbours`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
