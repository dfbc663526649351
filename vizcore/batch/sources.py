"""Where a batch job's images come from: ``--data`` parsed into a :class:`Source`.

A source is cheap to describe (its spec string, ids, labels, class names) and loads its pixels
lazily, block by block, in whichever process runs the block: a Ray actor loads a dataset once and
then reads slices of it; an image folder is read file by file, and a file that is not a usable
image becomes an error row instead of the end of the job.

Specs:
    ``fashion-mnist`` (train then test, 70,000 images), ``fashion-mnist:train``,
    ``fashion-mnist:test``, ``digits`` (scikit-learn's 1,797), ``mnist[:train|test]``, a folder
    of images (one sub-folder per class, or flat), or a ``.npz`` with ``images`` (or ``x``),
    optionally ``labels`` (or ``y``) and ``class_names``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vizcore.embed.cli import IMAGE_SUFFIXES

#: Dataset specs and the splits they accept; the first split listed is the default.
NAMED = {"fashion-mnist": ("all", "train", "test"), "mnist": ("test", "train"),
         "digits": ("all",)}


class SourceError(ValueError):
    """``--data`` cannot be used; the message names the cause and the fix."""


@dataclass
class Source:
    """A dataset or an image folder, described without its pixels.

    Attributes:
        spec: The ``--data`` string as given (resolved to an absolute path for files).
        kind: ``"dataset"``, ``"folder"`` or ``"npz"``.
        ids: One id per image: the index in the dataset, or the file path relative to the
            folder.
        labels: (N,) int64, -1 where unknown.
        class_names: Names of the label classes (may be empty).
        dark_background: True for bright-on-black images (Fashion-MNIST, MNIST, digits): there
            the object is the non-background pixels, so a map's mass outside the object can be
            measured.
        description: Where the images came from, for the manifest.
    """

    spec: str
    kind: str
    ids: list
    labels: np.ndarray
    class_names: list[str]
    dark_background: bool
    description: str
    _pixels: np.ndarray | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    def to_dict(self) -> dict:
        """What the manifest records about the source."""
        return {"spec": self.spec, "kind": self.kind, "images": len(self),
                "classes": self.class_names, "description": self.description}

    def pixels(self) -> np.ndarray | None:
        """Every image of a dataset or ``.npz`` (uint8 (N, H, W, C)), loaded once; None for a
        folder."""
        if self.kind == "folder":
            return None
        with self._lock:
            if self._pixels is None:
                self._pixels = _load_arrays(self.spec, self.kind)[0][: len(self.ids)]
            return self._pixels

    def __getstate__(self) -> dict:
        """Shipped to Ray actors: a named dataset is read again there (every node can), the
        pixels of a user's ``.npz`` travel with it (its file may not be on every node)."""
        state = dict(self.__dict__)
        state.pop("_lock")
        if self.kind == "dataset":
            state["_pixels"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _lock=threading.Lock())

    def load(self, positions: np.ndarray, info) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """The images at ``positions`` fitted to ``info``'s model input.

        Returns:
            ``(images uint8 (n, h, w, c) of the readable ones, their positions, errors)`` where
            ``errors`` holds one message per unreadable position (``"<id>: <reason>"``) and the
            readable positions keep their order.
        """
        from vizcore.data import ImageError, fit_image
        from vizcore.embed.features import model_images

        positions = np.asarray(positions, np.int64)
        if self.kind != "folder":
            return model_images(info, self.pixels()[positions]), positions, []
        from vizcore.data import load_image

        h, w, channels = info.input_shape
        root = Path(self.spec)
        images, ok, errors = [], [], []
        for pos in positions:
            rel = self.ids[int(pos)]
            try:
                img = load_image(root / rel)
                images.append(fit_image(img, (h, w), channels, invert=None))
                ok.append(pos)
            except (ImageError, OSError, ValueError) as exc:
                errors.append(f"{rel}: {exc}")
        if not images:
            return np.zeros((0, h, w, channels), np.uint8), np.zeros(0, np.int64), errors
        return np.stack(images), np.asarray(ok, np.int64), errors


def _split(spec: str) -> tuple[str, str | None]:
    name, _, split = spec.partition(":")
    return name.lower().replace("_", "-"), split or None


def _load_arrays(spec: str, kind: str) -> tuple[np.ndarray, np.ndarray, list[str], str, bool]:
    """(images, labels, class names, description, dark background) of a dataset or npz."""
    from vizcore import data

    if kind == "npz":
        with np.load(spec, allow_pickle=False) as z:
            key = next((k for k in ("images", "x", "x_test", "X") if k in z.files), None)
            if key is None:
                raise SourceError(f"{spec} has no 'images' (or 'x') array; it holds "
                                  f"{', '.join(z.files) or 'nothing'}")
            images = np.asarray(z[key])
            lab = next((k for k in ("labels", "y", "y_test") if k in z.files), None)
            labels = (np.asarray(z[lab]).astype(np.int64).ravel() if lab
                      else np.full(len(images), -1, np.int64))
            names = [str(n) for n in z["class_names"]] if "class_names" in z.files else []
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise SourceError(f"{spec}: images must be (N, H, W) or (N, H, W, 1|3), "
                              f"not {images.shape}")
        if images.dtype != np.uint8:
            hi = float(images.max(initial=0))
            images = np.clip(images * (255.0 if hi <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        if len(labels) != len(images):
            raise SourceError(f"{spec}: {len(images)} images but {len(labels)} labels")
        if not names and (labels >= 0).any():
            names = [str(i) for i in range(int(labels.max()) + 1)]
        return images, labels, names, f"{len(images):,} images from {spec}", False
    name, split = _split(spec)
    split = split or NAMED[name][0]
    if name == "fashion-mnist":
        parts = (["train", "test"] if split == "all" else [split])
        sets = [data.load_fashion_mnist(s, allow_sample=(split == "test")) for s in parts]
    elif name == "mnist":
        sets = [data.load_mnist(split)]
    else:
        sets = [data.load_digits()]
    images = np.concatenate([s.images for s in sets])
    labels = np.concatenate([s.labels for s in sets]).astype(np.int64)
    return images, labels, list(sets[0].class_names), "; ".join(s.source for s in sets), True


def open_source(spec: str, limit: int | None = None) -> Source:
    """Parse ``--data``. A folder lists its files (sorted; a sub-folder name is the class);
    a dataset or ``.npz`` is read once here to count and label its images.

    Args:
        spec: See the module docstring.
        limit: Keep only the first ``limit`` images (in the source's order).

    Raises:
        SourceError: an unknown name or split, a missing path, an empty folder, a bad ``.npz``.
    """
    from vizcore.data import DataUnavailable

    path = Path(spec).expanduser()
    name, split = _split(spec)
    if name in NAMED:
        if split is not None and split not in NAMED[name]:
            raise SourceError(f"{name} has no split {split!r}; use one of "
                              f"{', '.join(NAMED[name])}")
        kind = "dataset"
    elif path.is_dir():
        return _folder(path.resolve(), limit)
    elif path.is_file() and path.suffix.lower() == ".npz":
        kind, spec = "npz", str(path.resolve())
    elif path.exists():
        raise SourceError(f"{spec} is neither an image folder nor a .npz file")
    else:
        raise SourceError(f"--data {spec!r} is not a dataset ({', '.join(NAMED)}, with "
                          f"':train' or ':test'), a folder or a .npz file")
    try:
        images, labels, names, desc, dark = _load_arrays(spec, kind)
    except DataUnavailable as exc:
        raise SourceError(str(exc)) from None
    except (OSError, ValueError) as exc:
        if isinstance(exc, SourceError):
            raise
        raise SourceError(f"cannot read {spec}: {exc}") from None
    n = len(images) if limit is None else min(limit, len(images))
    return Source(spec, kind, list(range(n)), labels[:n], names, dark, desc, images[:n])


def _folder(root: Path, limit: int | None) -> Source:
    files = sorted(p for p in root.rglob("*")
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SourceError(f"no image ({', '.join(sorted(IMAGE_SUFFIXES))}) under {root}")
    files = files[:limit] if limit is not None else files
    classes = sorted({p.parent.name for p in files if p.parent != root})
    labels = np.asarray([classes.index(p.parent.name) if p.parent != root else -1
                         for p in files], np.int64)
    return Source(str(root), "folder", [str(p.relative_to(root)) for p in files], labels,
                  classes, False, f"{len(files):,} image files under {root}")
