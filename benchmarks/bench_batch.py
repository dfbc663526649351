"""Time dataset-wide batch jobs on Ray against the same passes in one process.

Run from the repository root::

    python benchmarks/bench_batch.py            # full sizes (~8 min)
    python benchmarks/bench_batch.py --quick    # small sizes (~3 min)
    python benchmarks/bench_batch.py gradcam embed   # some sections only

Sections and targets:

* ``gradcam``: Grad-CAM (and each image's top-5) over the 10,000 Fashion-MNIST test images with
  the shipped CNN. Baseline: the same batched passes (``engine.probabilities`` +
  ``explain_batch``, batch 256) in this process, timed in the same run. Target: the Ray job, from
  the moment its actors are ready, within 1.5x of the baseline. Ray's start-up (``ray.init``)
  and the actors' start-up (TensorFlow import, model load, first traces) are reported apart.
* ``vgg16``: the same for VGG16 at 224x224 (random weights) on 256 images (batches of 32).
* ``cluster``: 2,000 images on a 2-node cluster simulated by ``ray.cluster_utils.Cluster``
  (1 CPU each): the work lands on both nodes and the rows and maps equal the 1-node run's.
* ``embed``: ``batch embed`` of all 70,000 Fashion-MNIST images (train + test), t-SNE fitted on
  10,000 and the 60,000 others placed by openTSNE's transform. Targets: at most 90 s; held-out
  10-NN accuracy in 2-D within 2 points of a full t-SNE (the app's) of a 10,000 sample.
* ``score``: ``batch score`` of 1,000 images x 5 methods: the time and the ranking table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from vizcore.batch import Job, ModelRef, open_results, open_source, run  # noqa: E402
from vizcore.batch.cli import ranking_text  # noqa: E402

SECTIONS = ("gradcam", "vgg16", "cluster", "embed", "score")


def baseline(model: str, data: str, n: int, batch: int, repeats: int = 3) -> float:
    """Seconds of the job's passes (probabilities + Grad-CAM, batched) in this process: the
    median of ``repeats`` runs (it varies by about 10 % from run to run here)."""
    from vizcore.engine import get_engine
    from vizcore.explain import explain_batch

    info = ModelRef.parse(model).load()
    src = open_source(data, n)
    raw, _, _ = src.load(np.arange(len(src)), info)
    x = info.preprocess(raw).astype(np.float32)
    eng = get_engine(info)
    eng.probabilities(x[:2], batch)
    explain_batch(info, x[:2], "gradcam", batch_size=batch)  # trace outside the timing
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(0, len(x), 1024):
            eng.probabilities(x[i: i + 1024], batch)
            explain_batch(info, x[i: i + 1024], "gradcam", batch_size=batch)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def ray_job(job: Job, n: int, out: Path, **kw) -> dict:
    t0 = time.perf_counter()
    res = run(job, open_source(job.data, n), out, executor="ray", **kw)
    wall = time.perf_counter() - t0
    t = res.manifest["timings"]
    return {"wall": wall, "ray_start": t.get("ray_start", 0.0), "after_ready": t["after_ready"],
            "actors_start": t.get("actors_start", float("nan")), "nodes": res.manifest["nodes"],
            "manifest": res.manifest}


def gradcam_section(model: str, n: int, batch: int, label: str) -> None:
    print(f"\n--- Grad-CAM + top-5, {label}: {n:,} images", flush=True)
    base = baseline(model, "fashion-mnist:test", n, batch, 1 if model.startswith("vgg16") else 3)
    with tempfile.TemporaryDirectory() as tmp:
        job = Job("explain", model, "fashion-mnist:test", limit=n, methods=["gradcam"],
                  batch_size=batch)
        r = ray_job(job, n, Path(tmp))
    ratio = r["after_ready"] / base
    print(f"in one process (same passes, batch {batch}, median): {base:6.2f} s  "
          f"{n / base:8,.0f} img/s")
    print(f"Ray, 2 actors, from actors ready:        {r['after_ready']:6.2f} s  "
          f"{n / r['after_ready']:8,.0f} img/s   ratio {ratio:.2f} (target <= 1.5: "
          f"{'met' if ratio <= 1.5 else 'MISSED'})")
    print(f"Ray start-up {r['ray_start']:.1f} s, actors start-up (TensorFlow, model, traces) "
          f"{r['actors_start']:.1f} s, whole job {r['wall']:.1f} s "
          f"(ratio with the actors' start-up {(r['wall'] - r['ray_start']) / base:.2f})")


def cluster_section(n: int) -> None:
    import ray
    from ray.cluster_utils import Cluster

    print(f"\n--- 2-node simulated cluster: Grad-CAM + saliency on {n:,} images", flush=True)
    job = Job("explain", "fashion_vgg", "fashion-mnist:test", limit=n,
              methods=["gradcam", "saliency"], block_size=max(16, n // 8 // 16 * 16))
    with tempfile.TemporaryDirectory() as tmp:
        one = ray_job(job, n, Path(tmp) / "one", workers=1)
        cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 1, "object_store_memory": 300 << 20, "include_dashboard": False})
        cluster.add_node(num_cpus=1, object_store_memory=300 << 20)
        try:
            two = ray_job(job, n, Path(tmp) / "two", workers=2, address=cluster.address)
        finally:
            if ray.is_initialized():
                ray.shutdown()
            cluster.shutdown()
        a, b = open_results(Path(tmp) / "one"), open_results(Path(tmp) / "two")
        ra = a.rows["explain"].sort_values(["position", "method"]).reset_index(drop=True)
        rb = b.rows["explain"].sort_values(["position", "method"]).reset_index(drop=True)
        same_rows = ra[["position", "method", "predicted", "target"]].equals(
            rb[["position", "method", "predicted", "target"]])
        diffs = {m: max(float(np.abs(a.map_of(p, m) - b.map_of(p, m)).max())
                        for p in range(0, n, max(1, n // 50))) for m in ("gradcam", "saliency")}
    print(f"1 node:  {one['after_ready']:.2f} s after ready; images per node {one['nodes']}")
    print(f"2 nodes: {two['after_ready']:.2f} s after ready; images per node {two['nodes']}")
    print(f"same rows (position, method, prediction, target): {same_rows}; largest map "
          f"difference on 50 images: " + ", ".join(f"{m} {d:.4f}" for m, d in diffs.items())
          + " (both 1 TensorFlow thread per actor)")


def embed_section(n_fit: int, limit: int | None) -> None:
    from vizcore.embed import project, quality

    data = "fashion-mnist"
    print(f"\n--- batch embed of {'all' if limit is None else limit} Fashion-MNIST images "
          f"(t-SNE fitted on {n_fit:,})", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        job = Job("embed", "fashion_vgg", data, limit=limit, layer="fc2", projections=["tsne"],
                  fit_sample=n_fit, heldout=n_fit)
        r = ray_job(job, limit, Path(tmp))
        s = r["manifest"]["summary"]
        res = open_results(Path(tmp))
        from vizcore.batch.results import read_features

        rows = res.rows["embed"]
        X = read_features(Path(tmp) / "embed", rows)
    e = s["projections"]["tsne"]
    t = r["manifest"]["timings"]
    print(f"{s['images']:,} images in {r['wall']:.1f} s (target <= 90 s: "
          f"{'met' if r['wall'] <= 90 else 'MISSED'}): Ray start {t['ray_start']:.1f} s, "
          f"features {t['blocks']:.1f} s, PCA {s['pca_seconds']} s, "
          f"t-SNE fit {e['fit_seconds']} s, "
          f"transform of {s['images'] - s['fit_sample']:,} points {e['transform_seconds']} s")
    qh = e["quality_heldout"]
    labels = rows["label"].to_numpy()
    pick = np.random.default_rng(1).choice(len(X), n_fit, replace=False)
    full = project(X[pick], "tsne", seed=0, snapshot_every=0)
    qf = quality(X[pick], full.coords, labels[pick], k=10)
    gap = 100 * (qf.knn_2d - qh["knn_2d"])
    print(f"held-out {qh['points']:,} points: trustworthiness {qh['trustworthiness']:.3f}, "
          f"10-NN accuracy in 2-D {qh['knn_2d']:.3f}")
    print(f"full t-SNE of another {n_fit:,} sample (the app's): trustworthiness "
          f"{qf.trustworthiness:.3f}, 10-NN accuracy {qf.knn_2d:.3f}; gap {gap:+.1f} points "
          f"(target within 2: {'met' if abs(gap) <= 2 else 'MISSED'})")


def score_section(n: int) -> None:
    methods = ["gradcam", "gradcam_plus_plus", "saliency", "smoothgrad", "lrp_epsilon"]
    print(f"\n--- batch score of {n:,} images x {len(methods)} methods", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        job = Job("score", "fashion_vgg", "fashion-mnist:test", limit=n, methods=methods,
                  sanity_sample=8)
        r = ray_job(job, n, Path(tmp))
        summary = open_results(Path(tmp)).summaries["score"]
    t = r["manifest"]["timings"]
    print(f"{r['wall']:.1f} s in all: Ray start {t['ray_start']:.1f} s, blocks {t['blocks']:.1f} s "
          f"({n * len(methods) / t['blocks']:.1f} image-methods/s), summary and sanity check "
          f"{t['finish']:.1f} s")
    ins = summary["insertion"]
    print(f"insertion start chosen: {ins} (separation {summary['separation']})")
    print(ranking_text(summary))
    san = summary.get("sanity", {})
    if san:
        last = san["layers"][-1]
        print(f"sanity (mean Spearman with the original map once every layer down to {last} is "
              "random; near 0 = depends on the weights): "
              + ", ".join(f"{m} {v[-1]:.2f}" for m, v in san["spearman"].items()))


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("sections", nargs="*", help=f"some of {', '.join(SECTIONS)} (default all)")
    args = p.parse_args(argv)
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        p.error(f"unknown section(s) {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    sections = args.sections or SECTIONS
    q = args.quick
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")
    if "gradcam" in sections:
        gradcam_section("fashion_vgg", 2_000 if q else 10_000, 256, "shipped CNN, 28x28")
    if "vgg16" in sections:
        gradcam_section("vgg16-random", 64 if q else 256, 32, "VGG16 random weights, 224x224")
    if "cluster" in sections:
        cluster_section(500 if q else 2_000)
    if "embed" in sections:
        embed_section(2_000 if q else 10_000, 10_000 if q else None)
    if "score" in sections:
        score_section(200 if q else 1_000)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
