"""Reading a batch job's output folder (no Ray, no TensorFlow): rows, maps, features, points and
summaries, for the results page, a notebook or a test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vizcore.batch.work import KINDS


class ResultsError(ValueError):
    """A folder that is not (or not yet) a batch output; the message says what is there."""


def read_rows(folder: Path):
    """Every written block's rows, in block order, as one DataFrame (``error`` "" = fine)."""
    import pandas as pd
    import pyarrow.parquet as pq

    parts = sorted(Path(folder).glob("part-*.parquet"))
    if not parts:
        return pd.DataFrame({"position": [], "id": [], "label": [], "error": []})
    frame = pd.concat([pq.read_table(p).to_pandas() for p in parts], ignore_index=True)
    frame["error"] = frame["error"].fillna("")
    return frame


def read_features(folder: Path, rows) -> np.ndarray:
    """(N, D) float32 features of ``rows`` (each row's block shard and ``feature_row``)."""
    out = []
    for block, g in rows.groupby("block", sort=True):
        arr = np.load(Path(folder) / f"part-{int(block):05d}.features.npy", mmap_mode="r")
        out.append(np.asarray(arr[g["feature_row"].to_numpy(int)], np.float32))
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


@dataclass
class Results:
    """One output folder: the jobs found there, their manifests and rows.

    Attributes:
        folder: The ``--out`` folder.
        manifests: ``{kind: manifest}`` of the jobs present.
        rows: ``{kind: DataFrame}`` of their rows.
        summaries: ``{kind: summary.json}`` where written.
        points: The embed job's points (DataFrame) or None.
    """

    folder: Path
    manifests: dict = field(default_factory=dict)
    rows: dict = field(default_factory=dict)
    summaries: dict = field(default_factory=dict)
    points: object = None

    def has(self, kind: str) -> bool:
        return kind in self.manifests

    @property
    def class_names(self) -> list[str]:
        for m in self.manifests.values():
            if m["source"].get("classes"):
                return list(m["source"]["classes"])
        return []

    @property
    def images(self):
        """One row per image (position, id, label, predicted, confidence) from whichever job
        holds them."""
        for kind in KINDS:
            if kind in self.rows:
                r = self.rows[kind]
                r = r[r["error"] == ""]
                return r.drop_duplicates("position")[
                    ["position", "id", "label", "predicted", "confidence"]].reset_index(
                    drop=True)
        raise ResultsError("no job output here")

    def map_of(self, position: int, method: str) -> np.ndarray | None:
        """The explain job's map (H, W) float32 of one image and method, or None."""
        rows = self.rows.get("explain")
        if rows is None:
            return None
        hit = rows[(rows["position"] == position) & (rows["method"] == method)]
        if hit.empty:
            return None
        r = hit.iloc[0]
        maps = np.load(self.folder / "explain" / f"part-{int(r['block']):05d}.maps.npy",
                       mmap_mode="r")
        return np.asarray(maps[int(r["map_row"])], np.float32)


def find_jobs(folder: Path) -> dict[str, Path]:
    """``{kind: job folder}`` of the jobs under ``folder`` (itself a job folder, or ``--out``)."""
    folder = Path(folder)
    if (folder / "manifest.json").is_file():
        kind = json.loads((folder / "manifest.json").read_text()).get("kind")
        return {kind: folder} if kind in KINDS else {}
    return {k: folder / k for k in KINDS if (folder / k / "manifest.json").is_file()}


def open_results(folder: str | Path) -> Results:
    """Read every job in an output folder.

    Raises:
        ResultsError: no such folder, or no manifest in it or its explain/score/embed
            sub-folders.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ResultsError(f"{folder} is not a folder")
    jobs = find_jobs(folder)
    if not jobs:
        raise ResultsError(
            f"{folder} holds no batch output (a manifest.json, or explain/, score/ or embed/ "
            "sub-folders with one). Make one with `python -m vizcore batch explain ... --out "
            f"{folder}`, or run a small job on this page.")
    res = Results(folder.parent if (folder / "manifest.json").is_file() else folder)
    for kind, path in jobs.items():
        res.manifests[kind] = json.loads((path / "manifest.json").read_text())
        res.rows[kind] = read_rows(path)
        if (path / "summary.json").is_file():
            res.summaries[kind] = json.loads((path / "summary.json").read_text())
        if kind == "embed" and (path / "points.parquet").is_file():
            import pandas as pd

            res.points = pd.read_parquet(path / "points.parquet")
    return res
