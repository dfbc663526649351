"""Time occlusion sensitivity against a plain per-patch loop and against raw forward passes.

Run from the repository root::

    python benchmarks/bench_occlusion.py            # 28x28 and VGG16 (minutes on a CPU)
    python benchmarks/bench_occlusion.py --quick    # one repeat of each
    python benchmarks/bench_occlusion.py --skip-vgg # only the 28x28 model

Part 1, the default 28x28 CNN (assets/models/vgg_small.keras): the map with patch 4 and stride 1
(625 positions), batched, at several batch sizes, next to the same map from plain batched passes
(``incremental_passes=False``: every layer on whole images), a plain loop (one occluded copy and
one ``info.forward`` call per position) and 625 bare forward passes at the best batch size.
Target: <= 100 ms for the map.

Part 2, VGG16 (``keras.applications.VGG16(weights=None)``) at 224x224: patch 32, stride 16
(13 x 13 = 169 positions) against 169 bare forward passes at the best batch size of
{8, 16, 32}, plain batched passes and the plain loop. Target: occlusion / forward passes <= 1.1.

Timings are medians of interleaved runs (so changing machine load hits all alike), after a
warm-up run that builds and traces the compiled functions.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks.timing import interleaved  # noqa: E402


def forward_fn(info):
    """Bare forward passes of a prepared batch through the same compiled probability function
    the occlusion code uses (so the comparison is only the occlusion overhead)."""
    from vizcore.explain import get_engine

    run = get_engine(info).probs_fn()

    def forward(xs: np.ndarray, bs: int) -> None:
        for i in range(0, len(xs), bs):
            run(xs[i : i + bs]).numpy()

    return forward


def part(info, x, patch: int, stride: int, sizes: list[int], repeats: int, loop_repeats: int,
         target_ms: float | None, target_ratio: float | None, title: str,
         warmup: int = 1) -> None:
    from vizcore.occlusion import occlusion_loop, occlusion_map, resolve_geometry

    (_, _), _, ys, xs = resolve_geometry(x.shape, patch, stride)
    n = len(ys) * len(xs)
    print(f"\n== {title}: patch {patch}, stride {stride}: {n} positions ==")
    batch = np.repeat(x[None], n, axis=0)
    fwd = forward_fn(info)
    fns = {f"forward x{n}, batch {b}": (lambda b=b: fwd(batch, b)) for b in sizes}
    fns.update({f"occlusion, batch {b}": (lambda b=b: occlusion_map(info, x, patch, stride,
                                                                      batch_size=b))
                for b in sizes})
    fns.update({f"plain batched, batch {b}": (lambda b=b: occlusion_map(
        info, x, patch, stride, batch_size=b, incremental_passes=False)) for b in sizes})
    # trace the compiled functions once (batch dimensions are None: no retracing after this)
    fwd(batch[:1], 1)
    occlusion_map(info, x, patch, max(x.shape[:2]), batch_size=1)
    occlusion_map(info, x, patch, stride, batch_size=1)  # traces the incremental geometry
    t = interleaved(fns, repeats, warmup=warmup)
    best_fwd = min(v for k, v in t.items() if k.startswith("forward"))
    best_occ = min(v for k, v in t.items() if k.startswith("occlusion"))
    best_plain = min(v for k, v in t.items() if k.startswith("plain"))
    loop = interleaved({"loop": lambda: occlusion_loop(info, x, patch, stride)}, loop_repeats,
                       warmup=0)["loop"]
    for k, v in t.items():
        print(f"  {k:<28} {v * 1000:9.1f} ms")
    print(f"  {'plain per-patch loop':<28} {loop * 1000:9.1f} ms")
    verdict = "OK" if target_ms and best_occ * 1000 <= target_ms else "MISSED"
    print(f"  best occlusion map             {best_occ * 1000:9.1f} ms"
          + (f"   (target <= {target_ms:.0f} ms: {verdict})" if target_ms else ""))
    ratio = best_occ / best_fwd
    print(f"  occlusion / {n} forward passes at the best batch size = {ratio:.2f}"
          + (f"   (target <= {target_ratio}: {'OK' if ratio <= target_ratio else 'MISSED'})"
             if target_ratio else ""))
    print(f"  speed-up over the plain loop = {loop / best_occ:.1f}x; over plain batched passes "
          f"= {best_plain / best_occ:.1f}x (incremental windows)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one repeat of each timing")
    ap.add_argument("--skip-vgg", action="store_true", help="only the 28x28 model")
    ap.add_argument("--skip-small", action="store_true", help="only VGG16")
    args = ap.parse_args()

    import keras
    import tensorflow as tf

    from vizcore import data
    from vizcore.architectures import build_vgg_small
    from vizcore.models import MODELS_DIR, ModelInfo, load_builtin, load_vgg16

    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU(s), load average "
          f"{os.getloadavg()[0]:.1f}")
    if (MODELS_DIR / "vgg_small.keras").is_file():
        info, what = load_builtin("fashion_vgg"), "shipped weights"
    else:
        keras.utils.set_random_seed(0)
        info = ModelInfo("bench", "bench", build_vgg_small(), "0..1", list(data.FASHION_CLASSES))
        what = "random weights"
    x = info.preprocess(data.load_dataset("fashion_mnist").images[0])
    if not args.skip_small:
        part(info, x, 4, 1, [256, 625], 3 if args.quick else 9, 1 if args.quick else 3,
             100.0, None, f"default CNN 28x28 ({what})")

    if args.skip_vgg:
        return
    vgg = load_vgg16("random")
    raw = np.asarray(data.load_dataset("photos").images[0])
    img = data.fit_image(raw, (224, 224), 3)
    xv = vgg.preprocess(img)
    part(vgg, xv, 32, 16, [16, 32] if args.quick else [8, 16, 32], 1 if args.quick else 3, 1,
         None, 1.1, "VGG16 224x224 (random weights)", warmup=0)


if __name__ == "__main__":
    main()
