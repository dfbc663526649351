"""Benchmark: activation maximization (vizcore.actmax) against tf-keras-vis called directly, and
the top-k dataset-patch pass (vizcore.patches).

    .venv/bin/python benchmarks/bench_actmax.py [--cnn-steps 200] [--vgg-steps 50] [--no-vgg16]
    .venv/bin/python benchmarks/bench_actmax.py --quick   # 50 / 10 steps (about 1.5 minutes)

Same settings on both sides: the same seed image, RMSprop (rho 0.999), TotalVariation2D + Norm
(p=1), Jitter + Rotate2D, no per-step projection (tf-keras-vis's semantics). Ours also records
a frame every 5 steps and the activation at every step. "cold" includes tracing the compiled
step (once per layer and batch shape per process), "warm" is a second call.

Targets: ours within 1.1x of tf-keras-vis or faster; the patch pass over 10,000 Fashion-MNIST
images under 10 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def tkv_direct(info, layer: str, unit: int, params, seed: np.ndarray) -> tuple[float, float]:
    """tf-keras-vis as its docs show it: (build seconds, run seconds)."""
    import keras
    from tf_keras_vis.activation_maximization import ActivationMaximization
    from tf_keras_vis.activation_maximization.input_modifiers import Jitter, Rotate2D
    from tf_keras_vis.activation_maximization.regularizers import Norm, TotalVariation2D
    from tf_keras_vis.utils.model_modifiers import ExtractIntermediateLayer, ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    from vizcore import actmax

    t0 = time.perf_counter()
    if layer == info.model.layers[-1].name:
        am = ActivationMaximization(info.model, model_modifier=ReplaceToLinear(), clone=True)
    else:
        am = ActivationMaximization(info.model, model_modifier=ExtractIntermediateLayer(layer),
                                    clone=False)
    build = time.perf_counter() - t0
    lo, hi = actmax.input_range(info)
    t0 = time.perf_counter()
    am(CategoricalScore(unit), seed_input=seed, input_range=(lo, hi),
       input_modifiers=[Jitter(params.jitter), Rotate2D(params.rotate)],
       regularizers=[TotalVariation2D(params.tv_weight), Norm(params.norm_weight, params.norm_p)],
       steps=params.steps, optimizer=keras.optimizers.RMSprop(params.learning_rate, rho=0.999))
    return build, time.perf_counter() - t0


def ours(info, layer: str, unit: int, params) -> tuple[float, float, float]:
    """(cold seconds, warm seconds, activation gain) of vizcore.actmax.maximize."""
    from vizcore import actmax

    t0 = time.perf_counter()
    actmax.maximize(info, layer, [unit], params)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = actmax.maximize(info, layer, [unit], replace(params, seed=params.seed + 1))
    warm = time.perf_counter() - t0
    return cold, warm, float(res.final_value[0] - res.start_value[0])


def bench_am(info, layer: str, unit: int, steps: int, label: str) -> None:
    from vizcore import actmax

    params = replace(actmax.default_params(info), steps=steps, project=False, frame_every=5,
                     scale=0.0, jitter=max(1, actmax.default_params(info).jitter),
                     rotate=max(1.0, actmax.default_params(info).rotate))
    seed = actmax.start_image(info, 1, params)
    cold, warm, gain = ours(info, layer, unit, params)
    build, ref = tkv_direct(info, layer, unit, params, seed)
    print(f"{label}: {steps} steps, {layer}[{unit}]")
    print(f"  tf-keras-vis direct : {ref:8.2f} s  (+{build:.2f} s to build the visualizer)")
    print(f"  vizcore cold        : {cold:8.2f} s  ratio {cold / ref:5.2f}x  (includes tracing)")
    print(f"  vizcore warm        : {warm:8.2f} s  ratio {warm / ref:5.2f}x  "
          f"(target <= 1.10x: {'OK' if warm / ref <= 1.1 else 'MISSED'})")
    print(f"  activation gain     : {gain:+.4g}")


def bench_patches(info, layer: str) -> None:
    from vizcore import data, patches

    ds = data.load_fashion_mnist("test")
    images = ds.images[:10_000]
    t0 = time.perf_counter()
    peaks = patches.layer_peaks(info, layer, images, f"bench:{len(images)}")
    cold = time.perf_counter() - t0
    patches.clear_cache(info.model)
    t0 = time.perf_counter()
    peaks = patches.layer_peaks(info, layer, images, f"bench2:{len(images)}")
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for c in range(16):
        patches.top_patches(info, peaks, images, c, 9)
    per_channel = (time.perf_counter() - t0) / 16
    print(f"Patch pass: {len(images):,} images ({ds.source.split(' from ')[0]}) through {layer}")
    print(f"  first pass (with tracing) : {cold:6.2f} s")
    print(f"  pass (fresh cache)        : {warm:6.2f} s  (target < 10 s: "
          f"{'OK' if warm < 10 else 'MISSED'})")
    print(f"  top-9 for another channel : {per_channel * 1000:6.1f} ms (cached pass)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="fewer steps: 50 on the default CNN, 10 on VGG16")
    ap.add_argument("--cnn-steps", type=int, default=None, help="default 200, 50 with --quick")
    ap.add_argument("--vgg-steps", type=int, default=None, help="default 50, 10 with --quick")
    ap.add_argument("--no-vgg16", action="store_true")
    args = ap.parse_args()
    cnn_steps = args.cnn_steps or (50 if args.quick else 200)
    vgg_steps = args.vgg_steps or (10 if args.quick else 50)

    from vizcore.models import load_builtin, load_vgg16

    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    cnn = load_builtin("fashion_vgg")
    bench_patches(cnn, "block3_conv1")
    print()
    bench_am(cnn, "predictions", 0, cnn_steps, "Default CNN, class unit (linear head)")
    bench_am(cnn, "block3_conv1", 0, cnn_steps, "Default CNN, conv filter")
    if not args.no_vgg16:
        vgg = load_vgg16("random")
        bench_am(vgg, "predictions", 1, vgg_steps,
                 "VGG16 (random weights), class unit (linear head)")


if __name__ == "__main__":
    main()
