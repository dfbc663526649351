"""``python -m vizcore embed``: a 2-D embedding of a dataset or an image folder, written as CSV.

:func:`add_embed_arguments` declares the options, :func:`embed_command` runs features ->
projection -> quality numbers and writes the table; :func:`folder_images` loads an image folder
(a sub-folder's name is its images' class).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vizcore.embed.features import extract_features, penultimate_layer
from vizcore.embed.projection import METHODS, project
from vizcore.embed.quality import quality
from vizcore.embed.tables import csv_bytes, embedding_frame

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def add_embed_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``python -m vizcore embed`` (see :func:`embed_command`)."""
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--dataset", default="fashion_mnist",
                     help="dataset key: fashion_mnist, mnist or digits (default fashion_mnist)")
    src.add_argument("--folder", type=Path, default=None,
                     help="embed every image under this folder instead (a sub-folder name is "
                          "taken as the image's class)")
    parser.add_argument("--model", default="fashion_vgg",
                        help="fashion_vgg, fashion_gap, vgg16, vgg16-random or a .keras/.h5 file")
    parser.add_argument("--layer", default=None,
                        help="layer name or 'pixels' (default: the penultimate layer)")
    parser.add_argument("--method", choices=list(METHODS), default="tsne")
    parser.add_argument("--n", type=int, default=None,
                        help="balanced sample size (default: every image)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--perplexity", type=float, default=30.0, help="t-SNE perplexity")
    parser.add_argument("--iterations", type=int, default=750, help="t-SNE iterations")
    parser.add_argument("--n-neighbors", type=int, default=15, help="UMAP neighbours")
    parser.add_argument("--min-dist", type=float, default=0.1, help="UMAP minimum distance")
    parser.add_argument("--k", type=int, default=10, help="neighbours for the quality numbers")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--out", type=Path, required=True, help="CSV file to write")
    return parser


def _cli_model(spec: str):
    from vizcore import models

    if spec in models.BUILTIN:
        return models.load_builtin(spec)
    if spec in ("vgg16", "vgg16-random"):
        return models.load_vgg16("auto" if spec == "vgg16" else "random")
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"--model {spec!r} is neither a built-in model "
                                f"({', '.join(models.BUILTIN)}, vgg16, vgg16-random) nor a file")
    return models.load_user_model(path.read_bytes(), path.name)


def folder_images(folder: Path, size: tuple[int, int], channels: int
                  ) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """Every image under ``folder`` fitted to a model input: (files, images, labels, classes).

    Images directly in sub-folders get that sub-folder's name as class; others get label -1.
    Unreadable files are skipped. Raises FileNotFoundError when no image is found.
    """
    from vizcore.data import ImageError, fit_image, load_image

    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    classes = sorted({p.parent.name for p in files if p.parent != Path(folder)})
    names, images, labels = [], [], []
    for p in files:
        try:
            img = load_image(p)
        except ImageError:
            continue
        images.append(fit_image(img, size, channels, invert=None))
        names.append(str(p.relative_to(folder)))
        labels.append(classes.index(p.parent.name) if p.parent != Path(folder) else -1)
    if not images:
        raise FileNotFoundError(f"no readable image ({', '.join(sorted(IMAGE_SUFFIXES))}) "
                                f"under {folder}")
    return names, np.stack(images), np.asarray(labels, np.int64), classes


def embed_command(args: argparse.Namespace, log: Callable[[str], None] | None = None) -> int:
    """``python -m vizcore embed``: write a 2-D embedding of a dataset or an image folder as CSV.

    Columns: ``index`` (dataset) or ``file`` (folder), ``label``, ``label_name``, ``predicted``,
    ``predicted_name``, ``confidence``, ``x``, ``y``. Progress and the quality numbers go to
    ``log`` (stderr by default). Returns the process exit code.
    """
    import sys

    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    info = _cli_model(args.model)
    h, w, c = info.input_shape
    if args.folder is not None:
        ids, images, labels, label_names = folder_images(args.folder, (h, w), c)
        id_name = "file"
        if args.n is not None and args.n < len(ids):
            pick = np.sort(np.random.default_rng(args.seed).choice(len(ids), args.n, False))
            ids, images, labels = [ids[i] for i in pick], images[pick], labels[pick]
    else:
        from vizcore.data import load_dataset

        ds = load_dataset(args.dataset)
        idx = (np.arange(len(ds)) if args.n is None or args.n >= len(ds)
               else ds.balanced_sample(args.n, args.seed))
        ids, images, labels, label_names = idx.tolist(), ds.images[idx], ds.labels[idx], \
            ds.class_names
        id_name = "index"
    layer = args.layer or penultimate_layer(info.model)
    log(f"{len(ids):,} images, model {info.label}, layer {layer}, {METHODS[args.method]}")
    last = {"t": 0.0}

    def progress(f: float, msg: str) -> None:
        if time.perf_counter() - last["t"] > 2.0 or f >= 1.0:
            last["t"] = time.perf_counter()
            log(f"  {f:4.0%}  {msg}")

    fs = extract_features(info, images, [layer], batch_size=args.batch_size, progress=progress)
    X = fs.values[layer]
    if fs.reductions[layer]:
        log(f"  features: {fs.reductions[layer]}")
    params = {"pca": {},
              "tsne": {"perplexity": args.perplexity, "iterations": args.iterations,
                       "snapshot_every": 0},
              "umap": {"n_neighbors": args.n_neighbors, "min_dist": args.min_dist}}[args.method]
    proj = project(X, args.method, seed=args.seed, progress=progress, **params)
    log(f"  {METHODS[args.method]} of {len(X):,} x {X.shape[1]:,} features: {proj.seconds:.1f} s")
    known = labels >= 0
    if known.sum() > 2 * args.k:
        q = quality(X[known], proj.coords[known], labels[known], k=args.k)
        log(f"  trustworthiness {q.trustworthiness:.3f}; {q.k}-NN accuracy {q.knn_2d:.3f} in 2-D "
            f"vs {q.knn_original:.3f} in the original space")
    frame = embedding_frame(ids, labels, label_names, fs.probs, info.class_names,
                            {"": proj.coords}, id_name=id_name)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(csv_bytes(frame))
    log(f"wrote {len(frame):,} rows to {args.out}")
    return 0
