"""The end of a job, once every block is written: the skipped images, the score summary (method
ranking, per class, the sanity check on a sample) and the embedding (projections fitted on a
sample, every other point placed by ``transform``, quality on a held-out set).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from vizcore.batch.runner import write_json


def finish(job, folder: Path, manifest: dict, model, source, log) -> dict:
    """Manifest entries to add; writes ``summary.json`` (and ``points.parquet`` for embed)."""
    from vizcore.batch.results import read_rows

    rows = read_rows(folder)
    bad = rows[rows["error"] != ""]
    out = {"skipped": [{"id": i, "reason": r.split(": ", 1)[-1]}
                       for i, r in zip(bad["id"], bad["error"])],
           "images_ok": int(rows.loc[rows["error"] == "", "position"].nunique())}
    if len(bad):
        log(f"skipped {len(bad)} unreadable image(s); listed in {folder / 'manifest.json'}")
    if job.kind == "score":
        summary = score_summary(rows[rows["error"] == ""], source.class_names)
        if job.sanity_sample > 0:
            summary["sanity"] = sanity(job, model, source, log)
        write_json(folder / "summary.json", summary)
        out["summary"] = {"insertion": summary["insertion"], "ranking": summary["ranking"]}
    elif job.kind == "embed":
        out["summary"] = embed_points(job, folder, rows[rows["error"] == ""], log)
        write_json(folder / "summary.json", out["summary"])
    return out


def score_summary(rows, class_names) -> dict:
    """The ranking table (mean and 95% interval per method), the insertion start that separates
    the methods, and the per-class means of both AUCs."""
    from vizcore.batch import analysis

    ins = analysis.insertion_column(rows)
    table = analysis.ranking(rows)
    return {
        "insertion": ins,
        "separation": {c: round(analysis.separation(rows, c), 4)
                       for c in ("insertion_auc_blur", "insertion_auc_grey") if c in rows},
        "ranking": table.round(4).to_dict(orient="records"),
        "per_class": {col: analysis.per_class(rows, col, class_names).round(4).to_dict()
                      for col in ("deletion_auc", ins)},
    }


def sanity(job, model, source, log) -> dict:
    """Cascading model randomisation (Adebayo et al. 2018) on a seeded sample of images: the
    mean Spearman correlation of each method's map with the original, per randomised layer."""
    from vizcore.explain.metrics import randomisation_check

    info = model.load()
    rng = np.random.default_rng(job.seed)
    pick = np.sort(rng.choice(len(source), min(job.sanity_sample, len(source)), replace=False))
    raw, pos, _ = source.load(pick, info)
    x = info.preprocess(raw).astype(np.float32)
    log(f"sanity check on {len(x)} image(s)...")
    per: dict[tuple, list] = {}
    layers: list[str] = []
    t0 = time.perf_counter()
    for img in x:
        res = randomisation_check(info, img, job.methods, seed=job.seed, params=job.params)
        layers = res.layers
        for key, rho in res.spearman.items():
            per.setdefault(key, []).append(rho)
    return {"images": [int(p) for p in pos], "layers": layers,
            "spearman": {m: [round(float(np.nanmean(per.get((lyr, m), [np.nan]))), 4)
                             for lyr in layers] for m in job.methods},
            "seconds": round(time.perf_counter() - t0, 2)}


def embed_points(job, folder: Path, rows, log) -> dict:
    """Fit each projection on a sample, place every other point with ``transform``, measure
    trustworthiness and k-NN accuracy on a held-out set; writes ``points.parquet``."""
    from vizcore.batch.project import fit_and_place
    from vizcore.batch.results import read_features

    X = read_features(folder, rows)
    labels = rows["label"].to_numpy()
    coords, summary = fit_and_place(X, labels, job.projections, job.fit_sample, job.heldout,
                                    job.seed, log)
    frame = rows[["position", "id", "label", "predicted", "confidence"]].reset_index(drop=True)
    for name, xy in coords.items():
        frame[f"{name}_x"], frame[f"{name}_y"] = xy[:, 0], xy[:, 1]
    frame["in_fit"] = summary.pop("in_fit")
    frame["held_out"] = summary.pop("held_out")
    frame.to_parquet(folder / "points.parquet", index=False)
    return summary
