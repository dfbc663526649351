"""Dataset-wide numbers over many maps: where a map's mass lies, how much methods disagree, and
method rankings with confidence intervals. Pure NumPy/pandas (the results page uses it without
Ray or TensorFlow).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: A pixel of a bright-on-black image (Fashion-MNIST, MNIST, digits) belongs to the object when
#: its brightest channel exceeds this (of 255): about 10 %, above JPEG-like noise, below the
#: faintest fabric texture.
OBJECT_LEVEL = 25
#: "Right for the wrong reason": a correct prediction whose map puts more than this share of its
#: mass outside the object.
WRONG_REASON_OUTSIDE = 0.5


def object_mask(raw: np.ndarray, level: int = OBJECT_LEVEL) -> np.ndarray:
    """(N, H, W) bool: the non-background pixels of bright-on-black uint8 images (N, H, W, C)."""
    return np.asarray(raw).max(axis=-1) > level


def outside_mass(maps: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N,) share of each map's total (non-negative) mass outside the object ``mask``; NaN for
    an all-zero map."""
    maps = np.clip(np.asarray(maps, np.float64), 0, None)
    total = maps.sum(axis=(1, 2))
    outside = (maps * ~mask).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, outside / total, np.nan)


def _ranks(maps: np.ndarray) -> np.ndarray:
    """(..., P) float ranks of each flattened map (ties broken by position, as a stable sort)."""
    flat = maps.reshape(*maps.shape[:-2], -1)
    order = np.argsort(flat, axis=-1, kind="stable")
    ranks = np.empty_like(order, dtype=np.float64)
    np.put_along_axis(ranks, order, np.arange(flat.shape[-1], dtype=np.float64)[None], axis=-1)
    return ranks


def disagreement(maps: np.ndarray) -> np.ndarray:
    """How much M methods disagree on each of N images: 1 - the mean pairwise rank correlation
    (Spearman) of their maps, (N,) in [0, 2]; 0 = the same pixel order. ``maps`` is (M, N, H, W);
    NaN for fewer than two methods."""
    maps = np.asarray(maps, np.float32)
    m = len(maps)
    if m < 2:
        return np.full(maps.shape[1] if maps.ndim == 4 else 0, np.nan)
    r = _ranks(maps)
    r -= r.mean(axis=-1, keepdims=True)
    r /= np.linalg.norm(r, axis=-1, keepdims=True) + 1e-12
    rho = [np.sum(r[i] * r[j], axis=-1) for i in range(m) for j in range(i + 1, m)]
    return 1.0 - np.mean(rho, axis=0)


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student's t interval of the mean; NaNs ignored."""
    from scipy import stats

    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if len(v) < 2:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return mean, mean - half, mean + half


def separation(frame, column: str) -> float:
    """How clearly ``column`` tells the methods apart: the spread of the method means over the
    pooled within-method standard deviation (0 when every method scores the same)."""
    groups = frame.groupby("method")[column]
    means, sds = groups.mean(), groups.std(ddof=1)
    pooled = float(np.sqrt(np.nanmean(sds.to_numpy() ** 2))) if len(sds) else 0.0
    spread = float(means.max() - means.min()) if len(means) else 0.0
    return spread / pooled if pooled > 0 else 0.0


def insertion_column(frame) -> str:
    """The insertion AUC column (blurred or grey start) that separates the methods better."""
    cols = [c for c in ("insertion_auc_grey", "insertion_auc_blur") if c in frame]
    if not cols:
        raise KeyError("no insertion AUC column")
    return max(cols, key=lambda c: separation(frame, c))


def ranking(frame, metrics: Sequence[str] | None = None):
    """Per method: the mean and 95% interval of each AUC column and the count, best first by
    ``faithfulness``: the chosen insertion AUC minus the deletion AUC, per image (high when the
    map's top pixels alone bring the class back and their removal destroys it).

    Returns a DataFrame with columns ``method``, ``n`` and ``<metric>``, ``<metric>_lo``,
    ``<metric>_hi`` for each metric (``faithfulness``, ``deletion_auc``, the insertion AUCs).
    """
    import pandas as pd

    ok = frame[frame["error"] == ""] if "error" in frame else frame
    ins = insertion_column(ok)
    ok = ok.assign(faithfulness=ok[ins] - ok["deletion_auc"])
    metrics = list(metrics or ["faithfulness", "deletion_auc", ins]
                   + [c for c in ("insertion_auc_blur", "insertion_auc_grey")
                      if c in ok and c != ins])
    rows = []
    for method, g in ok.groupby("method", sort=False):
        row = {"method": method, "n": len(g)}
        for col in metrics:
            row[col], row[f"{col}_lo"], row[f"{col}_hi"] = mean_ci(g[col])
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    return table.sort_values("faithfulness", ascending=False).reset_index(drop=True)


def per_class(frame, column: str, class_names: Sequence[str] = ()):
    """Mean of ``column`` per true class (rows) and method (columns)."""
    ok = frame[(frame["error"] == "") & (frame["label"] >= 0)]
    table = ok.pivot_table(index="label", columns="method", values=column, aggfunc="mean")
    if class_names:
        table.index = [class_names[i] if 0 <= i < len(class_names) else str(i)
                       for i in table.index]
    return table


def wrong_reason(frame, threshold: float = WRONG_REASON_OUTSIDE):
    """Rows of correct predictions whose map has more than ``threshold`` of its mass outside the
    object, most outside first (empty when the source has no object mask)."""
    if "outside" not in frame:
        return frame.iloc[:0]
    ok = frame[(frame["error"] == "") & (frame["label"] == frame["predicted"])]
    return ok[ok["outside"] > threshold].sort_values("outside", ascending=False)
