"""Datasets, image loading and validation.

Conventions used across vizcore:

* A *raw image* is a ``uint8`` array of shape (H, W, C) with C in {1, 3}, values 0..255.
* A *dataset* holds raw images (N, H, W, C) and integer labels (N,).
* Model-specific scaling lives in :mod:`vizcore.models` (``ModelInfo.preprocess``).

Nothing here prints or downloads silently: every loader says where it looked and raises
:class:`DataUnavailable` with the fix when nothing is found.
"""

from __future__ import annotations

import gzip
import io
import json
import struct
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
KERAS_DATASETS_DIR = Path.home() / ".keras" / "datasets"
FASHION_SAMPLE = ASSETS / "data" / "fashion_mnist_test_sample.npz"
SAMPLE_PHOTOS_DIR = ASSETS / "samples"

FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
DIGIT_CLASSES = [str(i) for i in range(10)]

FASHION_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

#: Uploads larger than this many pixels are refused before decoding (decompression bombs).
MAX_PIXELS = 40_000_000
#: Smallest side accepted for an uploaded image.
MIN_SIDE = 8
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")


class DataUnavailable(RuntimeError):
    """A dataset cannot be found or fetched; the message says what to do."""


class ImageError(ValueError):
    """An uploaded file is not a usable image; the message names the cause and the fix."""


@dataclass
class Dataset:
    """Raw images with labels.

    Attributes:
        name: Registry key, e.g. ``"fashion_mnist"``.
        images: uint8 array (N, H, W, C).
        labels: int array (N,).
        class_names: One name per class index.
        source: Human-readable description of where the data came from.
        split: ``"train"``, ``"test"`` or ``"all"``.
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    source: str
    split: str = "test"
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def indices_of(self, cls: int | None) -> np.ndarray:
        """Indices of the images of class ``cls`` (all images when ``cls`` is None)."""
        if cls is None:
            return np.arange(len(self))
        return np.flatnonzero(self.labels == cls)

    def balanced_sample(self, n: int, seed: int = 0) -> np.ndarray:
        """Indices of a class-balanced, seeded sample of at most ``n`` images."""
        rng = np.random.default_rng(seed)
        classes = np.unique(self.labels)
        per = int(np.ceil(n / len(classes)))
        picks = [rng.permutation(self.indices_of(int(c)))[:per] for c in classes]
        idx = np.concatenate(picks)
        return np.sort(rng.permutation(idx)[:n])


# --------------------------------------------------------------------------- IDX files


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) as used by MNIST and Fashion-MNIST.

    Raises:
        ValueError: if the file is truncated or not an unsigned-byte IDX file.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    if raw[2] != 0x08:
        raise ValueError(f"{path}: only unsigned-byte IDX data is supported")
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path} is truncated: expected {int(np.prod(dims))} values, "
                         f"got {data.size}")
    return data.reshape(dims)


def _read_idx_pair(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray] | None:
    names = IDX_FILES[split]
    paths = []
    for name in names:
        candidates = [folder / name, folder / name.removesuffix(".gz")]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            return None
        paths.append(found)
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if len(images) != len(labels):
        raise ValueError(f"{folder}: {len(images)} images but {len(labels)} labels")
    return images[..., None], labels.astype(np.int64)


def _download(url: str, dest: Path, timeout: float) -> Path:
    """Download ``url`` to ``dest`` with a socket timeout; raise DataUnavailable on failure."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
            while chunk := resp.read(1 << 20):
                out.write(chunk)
    except (TimeoutError, urllib.error.URLError, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise DataUnavailable(f"could not download {url}: {exc}") from exc
    tmp.replace(dest)
    return dest


def load_fashion_mnist(
    split: str = "test",
    *,
    search_dirs: Sequence[Path] | None = None,
    allow_download: bool = True,
    timeout: float = 5.0,
    allow_sample: bool = True,
) -> Dataset:
    """Fashion-MNIST (Xiao, Rasul and Vollgraf 2017, arXiv:1708.07747).

    Looks, in order, in Debian's ``dataset-fashion-mnist`` folder, the Keras cache
    (``~/.keras/datasets/fashion-mnist``), then downloads into the Keras cache, and finally falls
    back to the balanced test sample shipped in ``assets/`` (test split only).

    Args:
        split: ``"train"`` or ``"test"``.
        search_dirs: Folders holding the four IDX files; defaults to Debian's and Keras's.
        allow_download: Try Keras's download URL (with ``timeout`` seconds per request).
        timeout: Socket timeout for the download.
        allow_sample: Fall back to the bundled sample of the test split.
    """
    if split not in IDX_FILES:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    keras_dir = KERAS_DATASETS_DIR / "fashion-mnist"
    dirs = list(search_dirs) if search_dirs is not None else [DEBIAN_FASHION_DIR, keras_dir]
    for folder in dirs:
        pair = _read_idx_pair(Path(folder), split)
        if pair is not None:
            return Dataset("fashion_mnist", pair[0], pair[1], FASHION_CLASSES,
                           f"Fashion-MNIST {split} set from {folder}", split)
    errors = []
    if allow_download:
        try:
            for name in IDX_FILES[split]:
                if not (keras_dir / name).is_file():
                    _download(FASHION_URL + name, keras_dir / name, timeout)
            pair = _read_idx_pair(keras_dir, split)
            if pair is not None:
                return Dataset("fashion_mnist", pair[0], pair[1], FASHION_CLASSES,
                               f"Fashion-MNIST {split} set downloaded to {keras_dir}", split)
        except DataUnavailable as exc:
            errors.append(str(exc))
    if allow_sample and split == "test" and FASHION_SAMPLE.is_file():
        with np.load(FASHION_SAMPLE) as z:
            return Dataset("fashion_mnist", z["images"], z["labels"].astype(np.int64),
                           FASHION_CLASSES,
                           f"bundled balanced sample of the Fashion-MNIST test set "
                           f"({len(z['labels'])} images; install the full set with "
                           f"`apt-get install dataset-fashion-mnist`)", split,
                           extra={"is_sample": True})
    raise DataUnavailable(
        f"Fashion-MNIST ({split}) not found in {', '.join(map(str, dirs))}"
        + (f" and the download failed ({'; '.join(errors)})" if errors else "")
        + ". Fix: `apt-get install dataset-fashion-mnist`, or copy the four IDX .gz files "
        f"into {keras_dir}."
    )


def load_mnist(split: str = "test", *, allow_download: bool = True, timeout: float = 5.0,
               cache_path: Path | None = None) -> Dataset:
    """MNIST (LeCun et al. 1998) from the Keras cache, or downloaded into it.

    Raises:
        DataUnavailable: offline and not cached; the message gives the file and folder to use.
    """
    path = cache_path or KERAS_DATASETS_DIR / "mnist.npz"
    if not path.is_file():
        if not allow_download:
            raise DataUnavailable(f"MNIST is not cached at {path}.")
        try:
            _download(MNIST_URL, path, timeout)
        except DataUnavailable as exc:
            raise DataUnavailable(
                f"MNIST is not available offline: {exc}. Fix: download {MNIST_URL} on a machine "
                f"with internet access and copy it to {path}, or use the 'digits' dataset."
            ) from exc
    with np.load(path) as z:
        key = "x_test" if split == "test" else "x_train"
        images, labels = z[key][..., None], z[key.replace("x_", "y_")].astype(np.int64)
    return Dataset("mnist", images, labels, DIGIT_CLASSES, f"MNIST {split} set from {path}", split)


def load_digits(size: int = 28) -> Dataset:
    """scikit-learn's 1,797 handwritten 8x8 digits (UCI), upsampled to ``size`` x ``size``.

    Ink is bright on a dark background, as in MNIST. Split is ``"all"``.
    """
    from sklearn.datasets import load_digits as _sk_digits

    d = _sk_digits()
    small = (d.images / 16.0 * 255.0).clip(0, 255).astype(np.uint8)
    if size != 8:
        small = np.stack([
            np.asarray(Image.fromarray(im).resize((size - 8, size - 8), Image.BILINEAR))
            for im in small
        ])
        # pad by 4 pixels like MNIST's centred digits inside a 28x28 frame
        small = np.pad(small, ((0, 0), (4, 4), (4, 4)))
    return Dataset("digits", small[..., None], d.target.astype(np.int64), DIGIT_CLASSES,
                   "scikit-learn handwritten digits (1,797 images, 8x8 upsampled)", "all")


def load_sample_photos(folder: Path = SAMPLE_PHOTOS_DIR) -> Dataset:
    """The public-domain photos shipped in ``assets/samples`` (see SOURCES.md there).

    Labels are indices into ``extra["names"]`` (there is no class ground truth).
    """
    meta = json.loads((folder / "samples.json").read_text())
    images = [np.asarray(Image.open(folder / m["file"]).convert("RGB")) for m in meta]
    names = [m["title"] for m in meta]
    side = 224
    arr = np.stack([np.asarray(Image.fromarray(im).resize((side, side), Image.BICUBIC))
                    for im in images])
    return Dataset("photos", arr, np.arange(len(meta)), names,
                   "public-domain sample photos shipped with vizcore", "all",
                   extra={"names": names, "full": images})


DATASETS: dict[str, Callable[[], Dataset]] = {
    "fashion_mnist": load_fashion_mnist,
    "mnist": load_mnist,
    "digits": load_digits,
    "photos": load_sample_photos,
}
DATASET_LABELS = {
    "fashion_mnist": "Fashion-MNIST (test set)",
    "mnist": "MNIST (needs download or cache)",
    "digits": "Handwritten digits (scikit-learn)",
    "photos": "Sample photos (public domain)",
}


def load_dataset(name: str) -> Dataset:
    """Load a dataset by registry key (see :data:`DATASETS`)."""
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[name]()


# --------------------------------------------------------------------------- user images


def load_image(data: bytes | str | Path | io.IOBase, *, max_pixels: int = MAX_PIXELS,
               min_side: int = MIN_SIDE) -> np.ndarray:
    """Decode an uploaded image safely into a uint8 RGB array (H, W, 3).

    The header is checked before any pixel is decoded, so a decompression bomb costs nothing.
    Grayscale, palette, RGBA (composited on white), 16-bit and CMYK images are converted; EXIF
    orientation is applied.

    Raises:
        ImageError: with the cause and the fix (not an image, corrupt, too large, too small).
    """
    if isinstance(data, (str, Path)):
        data = Path(data).read_bytes()
    elif not isinstance(data, bytes):
        data = data.read()
    if not data:
        raise ImageError("The file is empty. Choose a PNG, JPEG, WebP or BMP image.")
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
            w, h = im.size
            if fmt not in IMAGE_FORMATS:
                raise ImageError(f"{fmt} images are not supported. Save it as PNG or JPEG.")
            if w * h > max_pixels:
                raise ImageError(_too_large(max_pixels, f"{w} x {h} pixels"))
            if min(w, h) < min_side:
                raise ImageError(
                    f"The image is only {w} x {h} pixels; at least {min_side} x {min_side} is "
                    f"needed to show anything. Upload a larger image.")
            im.seek(0)
            im = ImageOps.exif_transpose(im)
            im.load()
            return _to_rgb(im)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own guard fired first
        raise ImageError(_too_large(max_pixels, "too large to decode safely")) from exc
    except UnidentifiedImageError as exc:
        raise ImageError("This file is not an image Pillow can read (PNG, JPEG, WebP, BMP). "
                         "Check that you picked the right file.") from exc
    except (OSError, SyntaxError, ValueError, struct.error) as exc:
        raise ImageError(f"The image file is corrupt or truncated ({exc}). Re-export it as PNG "
                         f"or JPEG and upload again.") from exc


def _too_large(max_pixels: int, what: str) -> str:
    side = int(max_pixels**0.5)
    return (f"The image is {what}, above the {max_pixels / 1e6:.0f}-megapixel limit (a huge or "
            f"'decompression bomb' file). Fix: resize it below {side} x {side} pixels and "
            f"upload again.")


def _to_rgb(im: Image.Image) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        span = max(arr.max() - arr.min(), 1e-9)
        im = Image.fromarray(((arr - arr.min()) / span * 255).astype(np.uint8))
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA"):
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im.convert("RGBA"))
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def fit_image(img: np.ndarray, size: tuple[int, int], channels: int, *,
              invert: bool | None = None, keep_aspect: bool = True) -> np.ndarray:
    """Convert a raw image to a model's input size and channels (still uint8).

    Args:
        img: uint8 (H, W, C) with C in {1, 3}.
        size: (height, width) of the model input.
        channels: 1 or 3.
        invert: Invert intensities (for dark-on-light photos fed to a Fashion-MNIST/MNIST model,
            which expect a bright object on black). ``None`` decides from the border: a bright
            border means a light background, so the image is inverted when ``channels == 1``.
        keep_aspect: Pad to a square (with the border colour) before resizing, instead of
            stretching.
    """
    if img.ndim == 2:
        img = img[..., None]
    if img.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got {img.dtype}")
    pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
    pil = pil.convert("L" if channels == 1 else "RGB")
    arr = np.asarray(pil)
    if keep_aspect and arr.shape[0] != arr.shape[1]:
        border = _border_values(arr)
        fill = int(np.median(border)) if channels == 1 else tuple(
            int(v) for v in np.median(border, axis=0))
        side = max(arr.shape[:2])
        pil = ImageOps.pad(pil, (side, side), color=fill)
    pil = pil.resize((size[1], size[0]), Image.LANCZOS if min(arr.shape[:2]) > size[0]
                     else Image.BILINEAR)
    out = np.asarray(pil, dtype=np.uint8)
    if channels == 1:
        out = out[..., None]
        if invert is None:
            invert = needs_inversion(out)
        if invert:
            out = 255 - out
    return out


def _border_values(arr: np.ndarray) -> np.ndarray:
    a = arr if arr.ndim == 3 else arr[..., None]
    return np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]]).reshape(-1, a.shape[-1]).squeeze()


def needs_inversion(img: np.ndarray) -> bool:
    """True when the border of a grayscale image is mostly bright (dark object on light ground)."""
    return float(np.mean(_border_values(img))) > 127.0


def canvas_to_image(rgba: np.ndarray, size: int = 28, margin: int = 2) -> np.ndarray:
    """A drawing (H, W, 3|4, bright strokes on black) -> uint8 (size, size, 1).

    The strokes' bounding box is cropped, scaled to fit ``size - 2 * margin`` pixels with its
    aspect kept, and centred, as Fashion-MNIST and MNIST images were prepared.
    """
    arr = np.asarray(rgba)
    gray = arr[..., :3].max(axis=-1).astype(np.uint8) if arr.ndim == 3 else arr.astype(np.uint8)
    ys, xs = np.nonzero(gray > 16)
    if len(ys) == 0:
        return np.zeros((size, size, 1), np.uint8)
    crop = gray[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    inner = size - 2 * margin
    scale = inner / max(crop.shape)
    new = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    small = np.asarray(Image.fromarray(crop).resize(new, Image.LANCZOS))
    out = np.zeros((size, size), np.uint8)
    y0, x0 = (size - small.shape[0]) // 2, (size - small.shape[1]) // 2
    out[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
    return out[..., None]
