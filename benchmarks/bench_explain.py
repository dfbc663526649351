"""Time every attribution method warm, next to tf-keras-vis, and against raw forward passes.

Run from the repository root::

    python benchmarks/bench_explain.py            # full (VGG16 Score-CAM takes minutes)
    python benchmarks/bench_explain.py --quick    # a couple of minutes

Part 1, the default 28x28 CNN (shipped weights from assets/models/vgg_small.keras when present,
else random): every registered method, median of warm runs, next to tf-keras-vis used as its
documentation shows (visualizer built once with ``ReplaceToLinear``, then called), with the
ratio. Targets: <= 20 ms per image for single-pass gradient/CAM methods, >= 10x faster than
tf-keras-vis.

Part 2, VGG16 (random weights) at 224x224: Grad-CAM / one forward pass (target <= 1.3);
SmoothGrad(N) / N forward+backward passes and Score-CAM / its forward passes, both at the best
batch size (target <= 1.2).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks.timing import interleaved  # noqa: E402


def quiet_tkv():
    """Silence Keras progress bars of tf-keras-vis's model.predict (Score-CAM)."""
    import keras

    keras.utils.disable_interactive_logging()


def tkv_callers(info, x, target, layer, smooth_n):
    """tf-keras-vis equivalents: {method: zero-arg callable}, visualizers built once."""
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
    from tf_keras_vis.layercam import Layercam
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.scorecam import Scorecam
    from tf_keras_vis.utils.model_modifiers import GuidedBackpropagation, ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    m, score, seed = info.model, CategoricalScore([target]), x[None]
    sal = Saliency(m, model_modifier=ReplaceToLinear(), clone=True)
    guided = Saliency(m, model_modifier=[ReplaceToLinear(), GuidedBackpropagation()], clone=True)
    gc = Gradcam(m, model_modifier=ReplaceToLinear(), clone=True)
    gpp = GradcamPlusPlus(m, model_modifier=ReplaceToLinear(), clone=True)
    lc = Layercam(m, model_modifier=ReplaceToLinear(), clone=True)
    sc = Scorecam(m, model_modifier=ReplaceToLinear(), clone=True)
    return {
        "saliency": lambda: sal(score, seed),
        "smoothgrad": lambda: sal(score, seed, smooth_samples=smooth_n, smooth_noise=0.15),
        "guided_backprop": lambda: guided(score, seed),
        "gradcam": lambda: gc(score, seed, penultimate_layer=layer),
        "gradcam_plus_plus": lambda: gpp(score, seed, penultimate_layer=layer),
        "layercam": lambda: lc(score, seed, penultimate_layer=layer),
        "score_cam": lambda: sc(score, seed, penultimate_layer=layer, batch_size=32),
        "faster_score_cam": lambda: sc(
            score, seed, penultimate_layer=layer, max_N=10, batch_size=32
        ),
    }


def default_cnn(quick: bool) -> None:
    import keras

    from vizcore.architectures import build_gap_cnn, build_vgg_small
    from vizcore.explain import REGISTRY, explain
    from vizcore.models import MODELS_DIR, ModelInfo

    names = [f"c{i}" for i in range(10)]
    path = MODELS_DIR / "vgg_small.keras"
    if path.is_file():
        model, what = keras.saving.load_model(path, compile=False), "shipped weights"
    else:
        keras.utils.set_random_seed(0)
        model, what = build_vgg_small(), "random weights"
    info = ModelInfo("bench", "bench", model, "0..1", names)
    keras.utils.set_random_seed(0)
    gap = ModelInfo("bench_gap", "bench_gap", build_gap_cnn(), "0..1", names)
    x = np.random.RandomState(0).rand(28, 28, 1).astype(np.float32)
    target = int(np.argmax(info.forward(x[None])[0]))
    layer = info.conv_layers()[-1]
    reps = 5 if quick else 11
    smooth_n = 50
    theirs = tkv_callers(info, x, target, layer, smooth_n)
    print(f"\n== Default CNN 28x28 ({what}), last conv layer {layer}; median of {reps} warm runs")
    print(f"{'method':22s} {'ours ms':>9s} {'tf-keras-vis ms':>16s} {'speed-up':>9s}  note")
    for key, spec in REGISTRY.items():
        m = info if spec.applies_to(info)[0] else gap
        fns = {"ours": lambda m=m, key=key: explain(m, x, key, target=target)}
        if key in theirs:
            fns["theirs"] = theirs[key]
        r = 3 if key in ("score_cam", "smoothgrad") and quick else reps
        t = interleaved(fns, r)
        ours = t["ours"]
        line = f"{key:22s} {ours * 1e3:9.2f}"
        if key in theirs:
            line += f" {t['theirs'] * 1e3:16.2f} {t['theirs'] / ours:8.1f}x"
        else:
            line += f" {'-':>16s} {'-':>9s}"
        note = spec.cost + ("; on the GAP CNN" if m is gap else "")
        print(f"{line}  {note}")


def vgg16(quick: bool) -> None:
    import tensorflow as tf

    from vizcore.explain import explain, get_engine
    from vizcore.models import load_vgg16

    info = load_vgg16("random")
    model = info.model
    x = info.preprocess(np.random.RandomState(0).randint(0, 256, (224, 224, 3)).astype(np.uint8))
    reps = 3 if quick else 5
    spec = tf.TensorSpec([None, 224, 224, 3], tf.float32)

    @tf.function(autograph=False, input_signature=[spec])
    def forward(b):
        return model(b, training=False)

    @tf.function(autograph=False, input_signature=[spec, tf.TensorSpec([], tf.int32)])
    def fwd_bwd(b, c):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(b)
            s = tf.reduce_sum(model(b, training=False)[:, c])
        return tape.gradient(s, b)

    target = int(np.argmax(forward(x[None]).numpy()[0]))
    heavy = 1 if quick else 2
    print(
        f"\n== VGG16 224x224 (random weights), median of {reps} interleaved warm runs "
        f"(heavy methods: {heavy})"
    )
    x1 = x[None]
    t = interleaved(
        {
            "forward": lambda: forward(x1).numpy(),
            "gradcam": lambda: explain(info, x, "gradcam", target=target),
        },
        reps + 2,
    )
    t_fwd, t_gc = t["forward"], t["gradcam"]
    print(f"one forward pass          {t_fwd * 1e3:9.1f} ms")
    print(f"Grad-CAM                  {t_gc * 1e3:9.1f} ms   ratio {t_gc / t_fwd:.2f}  (<= 1.3)")
    for key in ("saliency", "gradcam_plus_plus", "layercam", "guided_backprop", "lrp_epsilon"):
        t = interleaved(
            {
                "forward": lambda: forward(x1).numpy(),
                key: lambda k=key: explain(info, x, k, target=target),
            },
            reps,
        )
        print(f"{key:25s} {t[key] * 1e3:9.1f} ms   = {t[key] / t['forward']:.2f} forward passes")

    def per_image(fn, bs, batches=2):
        b = np.repeat(x1, bs, axis=0)
        fn(b)
        t0 = time.perf_counter()
        for _ in range(batches):
            fn(b)
        return (time.perf_counter() - t0) / (batches * bs)

    sizes = (4, 8, 16) if quick else (4, 8, 16, 32)
    c = np.int32(target)
    grad_pi = {bs: per_image(lambda b: fwd_bwd(b, c).numpy(), bs) for bs in sizes}
    fwd_pi = {bs: per_image(lambda b: forward(b).numpy(), bs) for bs in sizes}
    gbest, fbest = min(grad_pi, key=grad_pi.get), min(fwd_pi, key=fwd_pi.get)
    print(
        "fwd+bwd ms/image by batch size: "
        + ", ".join(f"{k}: {v * 1e3:.0f}" for k, v in grad_pi.items())
    )
    print(
        "forward ms/image by batch size: "
        + ", ".join(f"{k}: {v * 1e3:.0f}" for k, v in fwd_pi.items())
    )

    def passes(fn, n, bs):
        """n images through ``fn`` in batches of bs (the reference cost)."""
        b = np.repeat(x1, bs, axis=0)
        for i in range(0, n, bs):
            fn(b[: min(bs, n - i)])

    n = 16 if quick else 50
    t = interleaved(
        {
            "ref": lambda: passes(lambda b: fwd_bwd(b, c).numpy(), n, gbest),
            "ours": lambda: explain(info, x, "smoothgrad", target=target, n=n, batch_size=gbest),
        },
        heavy,
    )
    print(
        f"SmoothGrad(n={n})          {t['ours']:9.2f} s    {n} fwd+bwd passes at bs {gbest}: "
        f"{t['ref']:.2f} s   ratio {t['ours'] / t['ref']:.2f}  (<= 1.2)"
    )
    eng = get_engine(info)
    layer = info.conv_layers()[-1]
    key, kw = ("faster_score_cam", {"max_n": 64}) if quick else ("score_cam", {})
    from vizcore.explain.score_cam import score_cam_channels

    acts = eng.acts_fn(layer)(x1)[0].numpy()[0]
    k = len(score_cam_channels(acts, kw.get("max_n")))
    t = interleaved(
        {
            "ref": lambda: passes(lambda b: forward(b).numpy(), k + 1, fbest),
            "ours": lambda: explain(info, x, key, target=target, batch_size=fbest, **kw),
        },
        heavy,
        warmup=1 if quick else 0,
    )
    print(
        f"{key}({k} channels)   {t['ours']:9.2f} s    {k + 1} forward passes at bs {fbest}: "
        f"{t['ref']:.2f} s   ratio {t['ours'] / t['ref']:.2f}  (<= 1.2)"
    )

    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    score = CategoricalScore([target])
    gc = Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)
    sal = Saliency(model, model_modifier=ReplaceToLinear(), clone=True)
    t = interleaved(
        {
            "gc": lambda: gc(score, x1, penultimate_layer=layer),
            "ours_gc": lambda: explain(info, x, "gradcam", target=target),
            "sal": lambda: sal(score, x1),
            "ours_sal": lambda: explain(info, x, "saliency", target=target),
        },
        reps,
    )
    print(
        f"tf-keras-vis Gradcam      {t['gc'] * 1e3:9.1f} ms   ours {t['ours_gc'] * 1e3:.1f} ms, "
        f"{t['gc'] / t['ours_gc']:.1f}x faster"
    )
    print(
        f"tf-keras-vis Saliency     {t['sal'] * 1e3:9.1f} ms   ours {t['ours_sal'] * 1e3:.1f} ms, "
        f"{t['sal'] / t['ours_sal']:.1f}x faster"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer runs, smaller N")
    ap.add_argument("--skip-vgg16", action="store_true", help="only the 28x28 CNN")
    args = ap.parse_args()
    import tensorflow as tf

    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores")
    quiet_tkv()
    default_cnn(args.quick)
    if not args.skip_vgg16:
        vgg16(args.quick)


if __name__ == "__main__":
    main()
