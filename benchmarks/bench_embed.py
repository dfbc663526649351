"""Time the Embeddings pipeline: features, PCA, t-SNE (openTSNE) next to scikit-learn's TSNE, UMAP.

Run from the repository root::

    python benchmarks/bench_embed.py            # 1,000 / 5,000 / 10,000 points (~10-20 min)
    python benchmarks/bench_embed.py --quick    # 1,000 points only

On Fashion-MNIST test images and the shipped VGG-style CNN (penultimate layer ``fc2``), for each
size: feature extraction (fc2 + pixels in one batched pass), PCA, our t-SNE (openTSNE, the page's
settings: 500 iterations, perplexity 30, every core, Barnes-Hut gradients (theta 0.8) below
5,000 points and FFT gradients from there on) and scikit-learn's TSNE (every core too:
``n_jobs=-1`` for its neighbour search, OpenMP for its gradient) with the same iterations,
perplexity and PCA-50 input in the same run, UMAP (after its one-off numba compilation, which is
timed separately), and the quality numbers of each map.

Targets: t-SNE of 10,000 points at least 2x faster than scikit-learn's TSNE; the page's default
(2,000 images: features + t-SNE of fc2 + t-SNE of pixels + quality numbers) ready within 15 s.
The machine is shared: the load average is printed next to the figures.
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


def timed(fn, *args, **kwargs):
    """(fn(*args, **kwargs), wall seconds)."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def load() -> str:
    return "load average " + ", ".join(f"{v:.1f}" for v in os.getloadavg())


def sklearn_tsne(X: np.ndarray, iterations: int, perplexity: float, seed: int) -> np.ndarray:
    import warnings

    from sklearn.manifold import TSNE

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TSNE(2, perplexity=perplexity, max_iter=iterations, init="pca",
                    learning_rate="auto", random_state=seed, n_jobs=-1).fit_transform(X)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1,000 points only")
    ap.add_argument("--sizes", type=int, nargs="*", default=None)
    ap.add_argument("--no-umap", action="store_true")
    ap.add_argument("--no-sklearn", action="store_true")
    ap.add_argument("--repeats", type=int, default=None,
                    help="t-SNE runs of ours and scikit-learn's, alternated, per size (median "
                         "reported; default 3, 1 with --quick)")
    args = ap.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    sizes = args.sizes or ([1000] if args.quick else [1000, 5000, 10000])

    from vizcore import embed
    from vizcore.data import load_dataset
    from vizcore.models import load_builtin

    info = load_builtin("fashion_vgg")
    ds = load_dataset("fashion_mnist")
    layer = embed.penultimate_layer(info.model)
    print(f"{info.label}, layer {layer}; {ds.source}; {load()}")
    embed.extract_features(info, ds.images[:64], [layer, embed.PIXELS])  # compile the tap
    iters, perp = embed.DEFAULTS["tsne"]["iterations"], embed.DEFAULTS["tsne"]["perplexity"]

    if not args.no_umap:
        _, cold = timed(embed.warm_umap, background=False)
        print(f"UMAP one-off numba compilation (warm_umap): {cold:.1f} s\n")

    rows = []
    for n in sizes:
        idx = embed.sample_indices(ds, n, seed=0, hi=max(n, embed.MAX_SAMPLE))
        labels = ds.labels[idx]
        fs, t_feat = timed(embed.extract_features, info, ds.images[idx], [layer, embed.PIXELS])
        X = fs.values[layer]
        Xr = embed.pca_reduce(X, 50)
        res = {"features": t_feat}
        pca, res["PCA"] = timed(embed.project, X, "pca")
        # ours and scikit-learn's alternate, so a change in machine load hits both alike
        t_ours, t_sk = [], []
        for _ in range(repeats):
            ours, t = timed(embed.project, X, "tsne", snapshot_every=0)
            t_ours.append(t)
            if not args.no_sklearn:
                sk, t = timed(sklearn_tsne, Xr, iters, perp, 0)
                t_sk.append(t)
        res["t-SNE (openTSNE)"] = float(np.median(t_ours))
        q_ours = embed.quality(X, ours.coords, labels)
        line_q = f"ours: trust {q_ours.trustworthiness:.3f}, 10-NN {q_ours.knn_2d:.3f}"
        if t_sk:
            res["t-SNE (sklearn)"] = float(np.median(t_sk))
            q_sk = embed.quality(X, sk, labels)
            line_q += f"; sklearn: trust {q_sk.trustworthiness:.3f}, 10-NN {q_sk.knn_2d:.3f}"
        if not args.no_umap:
            um, res["UMAP (warm)"] = timed(embed.project, X, "umap")
            q_um = embed.quality(X, um.coords, labels)
            line_q += f"; UMAP: trust {q_um.trustworthiness:.3f}, 10-NN {q_um.knn_2d:.3f}"
        _, res["quality numbers"] = timed(embed.quality, X, ours.coords, labels)
        print(f"n = {n:,} ({load()})")
        for k, v in res.items():
            print(f"  {k:<20} {v:8.2f} s")
        if "t-SNE (sklearn)" in res:
            ratio = res["t-SNE (sklearn)"] / res["t-SNE (openTSNE)"]
            print(f"  sklearn / ours     {ratio:8.2f} x   (gradient {ours.params['gradient']}"
                  f", {iters} iterations, perplexity {perp:g}; median of {repeats}: ours "
                  + ", ".join(f"{v:.1f}" for v in t_ours) + " s, sklearn "
                  + ", ".join(f"{v:.1f}" for v in t_sk) + " s)")
        print(f"  quality: {line_q}; in {X.shape[1]}-D: 10-NN {q_ours.knn_original:.3f}")
        rows.append((n, res))

    # the page's default: 2,000 images, fc2 and pixels, t-SNE of both, quality of both
    def page_default():
        idx = embed.sample_indices(ds, embed.DEFAULT_SAMPLE, 0)
        fs = embed.extract_features(info, ds.images[idx], [layer, embed.PIXELS])
        for space in (layer, embed.PIXELS):
            p = embed.project(fs.values[space], "tsne")
            embed.quality(fs.values[space], p.coords, ds.labels[idx])

    _, t_page = timed(page_default)
    print(f"\npage default (2,000 images, t-SNE of fc2 and of pixels, quality): {t_page:.1f} s "
          f"(target <= 15 s) [{load()}]")
    for n, res in rows:
        if n == 10_000 and "t-SNE (sklearn)" in res:
            ratio = res["t-SNE (sklearn)"] / res["t-SNE (openTSNE)"]
            print(f"t-SNE of 10,000 points: ours {res['t-SNE (openTSNE)']:.1f} s, sklearn "
                  f"{res['t-SNE (sklearn)']:.1f} s: {ratio:.1f}x (target >= 2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
