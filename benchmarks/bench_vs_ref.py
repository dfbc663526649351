"""Every attribution method, timed in this tree and in another git revision, in the same run.

Run from the repository root::

    python benchmarks/bench_vs_ref.py                 # against REF (the last main before the
                                                      # method files / engine refactor)
    python benchmarks/bench_vs_ref.py --ref HEAD~3    # any revision
    python benchmarks/bench_vs_ref.py --quick

The revision is checked out into a temporary ``git worktree``. Two worker processes (one per
tree, the same Python and packages) each load the shipped 28x28 CNN, the GAP CNN and VGG16
(random weights, 224x224), warm every method once, then time it on request. The parent asks
them in turns, A B A B, so a machine that slows down slows both alike, and prints each method's
median in both trees and the ratio (this tree / REF; above 1.05 is flagged as slower).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: main just before the refactor into one file per method and the model engine.
REF = "3e9c214bb74b48ec27224b431b51958fe16d44dd"

#: Small parameters for the heavy methods on VGG16 (the ratio matters, not the absolute time).
VGG_METHODS = {"gradcam": {}, "saliency": {}, "smoothgrad": {"n": 16, "batch_size": 16},
               "faster_score_cam": {}, "lrp_epsilon": {}, "guided_backprop": {}}

WORKER = r"""
import json, sys, time
import numpy as np
import keras
from vizcore.architectures import build_gap_cnn
from vizcore.explain import REGISTRY, explain
from vizcore.models import MODELS_DIR, ModelInfo, load_vgg16

quick = sys.argv[1] == "1"
vgg_methods = json.loads(sys.argv[2])
names = [f"c{i}" for i in range(10)]
cnn = ModelInfo("b", "b", keras.saving.load_model(MODELS_DIR / "vgg_small.keras", compile=False),
                "0..1", names)
keras.utils.set_random_seed(0)
gap = ModelInfo("g", "g", build_gap_cnn(), "0..1", names)
x = np.random.RandomState(0).rand(28, 28, 1).astype(np.float32)
jobs = {}
for key, spec in REGISTRY.items():
    m = cnn if spec.applies_to(cnn)[0] else gap
    jobs["cnn:" + key] = (m, x, key, {"n": 16} if key == "smoothgrad" else {})
vgg = load_vgg16("random")
xv = vgg.preprocess(np.random.RandomState(0).randint(0, 256, (224, 224, 3)).astype(np.uint8))
for key, params in vgg_methods.items():
    if quick and key in ("faster_score_cam", "smoothgrad"):
        continue
    jobs["vgg16:" + key] = (vgg, xv, key, params)
for m, xx, key, params in jobs.values():
    explain(m, xx, key, target=0, **params)
print(json.dumps(sorted(jobs)), flush=True)
for line in sys.stdin:
    job, reps = line.split()
    m, xx, key, params = jobs[job]
    out = []
    for _ in range(int(reps)):
        t0 = time.perf_counter()
        explain(m, xx, key, target=0, **params)
        out.append(time.perf_counter() - t0)
    print(json.dumps(out), flush=True)
"""


def start(tree: Path, quick: bool) -> tuple[subprocess.Popen, list[str]]:
    env = dict(os.environ, PYTHONPATH=str(tree), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen([sys.executable, "-c", WORKER, "1" if quick else "0",
                             json.dumps(VGG_METHODS)], cwd=tree, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    return proc, json.loads(proc.stdout.readline())


def ask(proc: subprocess.Popen, job: str, reps: int) -> list[float]:
    proc.stdin.write(f"{job} {reps}\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", default=REF, help="git revision to compare against")
    ap.add_argument("--quick", action="store_true", help="fewer rounds, skip the slowest")
    ap.add_argument("--rounds", type=int, default=0, help="A/B rounds (default 5, quick 3)")
    ap.add_argument("--only", default="", help="comma-separated jobs to time, e.g. "
                    "cnn:gradcam,vgg16:saliency (default: all)")
    args = ap.parse_args()
    rounds = args.rounds or (3 if args.quick else 5)
    tmp = Path(tempfile.mkdtemp(prefix="vizcore-ref-"))
    ref_tree = tmp / "ref"
    try:
        subprocess.run(["git", "worktree", "add", "--detach", str(ref_tree), args.ref],
                       cwd=ROOT, check=True, capture_output=True, text=True)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        print(f"cannot check out {args.ref!r} (a shallow clone?): {detail}")
        shutil.rmtree(tmp, ignore_errors=True)
        return 0
    try:
        (ours, jobs_a), (ref, jobs_b) = start(ROOT, args.quick), start(ref_tree, args.quick)
        jobs = [j for j in jobs_a if j in set(jobs_b)]
        if args.only:
            jobs = [j for j in jobs if j in set(args.only.split(","))]
        times: dict = {j: {"this": [], "ref": []} for j in jobs}
        for _ in range(rounds):
            for j in jobs:
                reps = 1 if j.startswith("vgg16:") else 3
                times[j]["this"] += ask(ours, j, reps)
                times[j]["ref"] += ask(ref, j, reps)
        for p in (ours, ref):
            p.stdin.close()
            p.wait(timeout=60)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(ref_tree)], cwd=ROOT,
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n== every method, this tree vs {args.ref[:12]}, medians of {rounds} A/B rounds")
    print(f"{'model:method':30s} {'this ms':>9s} {'ref ms':>9s} {'ratio':>7s}")
    worst = 0.0
    for j in jobs:
        a, b = statistics.median(times[j]["this"]), statistics.median(times[j]["ref"])
        worst = max(worst, a / b)
        flag = "  slower" if a / b > 1.05 else ""
        print(f"{j:30s} {a * 1e3:9.2f} {b * 1e3:9.2f} {a / b:7.2f}{flag}")
    only = sorted(set(jobs_a) ^ set(jobs_b))
    if only:
        print("in one tree only:", ", ".join(only))
    print(f"worst ratio {worst:.2f} (this / ref; 1.05 is the limit)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
