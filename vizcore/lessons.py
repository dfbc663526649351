"""Lesson presets: a teacher's path through the app, written as a small TOML file, no code.

A lesson lives in ``assets/lessons/<name>.toml`` (or any folder in ``VIZCORE_LESSONS``,
separated by ``:``)::

    title = "What does a CNN see?"
    summary = "One or two sentences for the tour's first screen."
    model = "fashion_vgg"                     # a shipped model key
    images = ["fashion_mnist:3", "fashion_mnist:12"]   # dataset:index, the first is the default
    steps = ["model", "filters", "feature_maps", "unit", "patches", "occlusion",
             "attribution", "embedding", "fooling"]   # from STEPS, in the order to show them
    hide = ["upload", "params"]               # controls the students do not need (links.HIDEABLE)
    methods = ["saliency", "smoothgrad", "gradcam"]   # the attribution step's methods

    [unit]                                    # optional: the unit the unit/patches steps show
    layer = "conv2_2"
    index = 5

    [text.attribution]                        # optional: replace a step's words
    question = "Which part of the shoe matters most?"

The tour (``ui.tour``) shows the steps; ``python -m vizcore warm --lesson NAME`` precomputes
what they show. :func:`load` checks every field and names the problem in plain words.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LESSONS_DIR = ROOT / "assets" / "lessons"

#: The tour's steps, in the course notes' order, with their titles.
STEPS = {
    "model": "The model and its layers",
    "filters": "First-layer filters",
    "feature_maps": "Feature maps of your image",
    "unit": "What a unit wants to see",
    "patches": "The images that excite it",
    "occlusion": "Occlusion by hand",
    "attribution": "Saliency, SmoothGrad, Grad-CAM",
    "faithfulness": "Is the map faithful?",
    "sanity": "The sanity check",
    "embedding": "The embedding of the last hidden layer",
    "fooling": "Fooling the model",
}
#: Controls a lesson or a link (``hide=``) can hide from students: name -> what it hides.
HIDEABLE = {
    "sidebar": "the model picker in the sidebar",
    "upload": "uploading a model or an image",
    "methods": "the method picker (Explain)",
    "params": "the attribution methods' parameters (Explain)",
    "checks": "the faithfulness and sanity checks (Explain)",
    "editor": "the occlusion editor",
}
TEXT_FIELDS = ("intro", "question", "answer")
DEFAULT_METHODS = ("saliency", "smoothgrad", "gradcam")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class LessonError(ValueError):
    """A lesson that cannot be found or read (the message says which field and why)."""


@dataclass(frozen=True)
class Lesson:
    """One lesson (see the module's docstring for the file format)."""

    name: str
    title: str
    summary: str = ""
    model: str = "fashion_vgg"
    images: tuple[str, ...] = ("fashion_mnist:0",)
    steps: tuple[str, ...] = tuple(STEPS)
    hide: tuple[str, ...] = ()
    methods: tuple[str, ...] = DEFAULT_METHODS
    unit_layer: str | None = None
    unit_index: int = 0
    text: dict = field(default_factory=dict)  # {step: {intro|question|answer: str}}
    path: Path | None = None

    def words(self, step: str, part: str, default: str) -> str:
        """The lesson's own words for ``part`` of ``step``, else ``default``."""
        return self.text.get(step, {}).get(part, default)


def search_dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("VIZCORE_LESSONS", "").split(":") if p]
    return [*extra, LESSONS_DIR]


def available() -> dict[str, Path]:
    """Lesson name -> file, over :func:`search_dirs` (earlier folders win)."""
    found: dict[str, Path] = {}
    for d in reversed(search_dirs()):
        if d.is_dir():
            found.update({p.stem: p for p in sorted(d.glob("*.toml")) if _NAME.match(p.stem)})
    return dict(sorted(found.items()))


def parse_image(text: str) -> tuple[str, int]:
    """``"fashion_mnist:3"`` -> ("fashion_mnist", 3); LessonError when malformed."""
    from vizcore import data

    name, _, index = str(text).partition(":")
    if name not in data.DATASET_LABELS or not index.strip().isdigit():
        raise LessonError(f"image {text!r} is not 'dataset:index' with a dataset among "
                          f"{', '.join(data.DATASET_LABELS)}")
    return name, int(index)


def _strings(raw: dict, key: str, default: tuple) -> tuple[str, ...]:
    value = raw.get(key, list(default))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LessonError(f"'{key}' must be a list of strings")
    return tuple(value)


def from_dict(name: str, raw: dict, path: Path | None = None) -> Lesson:
    """A :class:`Lesson` from a parsed file; LessonError naming the first bad field."""
    from vizcore import models
    from vizcore.explain import REGISTRY

    known = {"title", "summary", "model", "images", "steps", "hide", "methods", "unit", "text"}
    if unknown := sorted(set(raw) - known):
        raise LessonError(f"unknown field(s) {', '.join(unknown)}; a lesson has "
                          f"{', '.join(sorted(known))}")
    title = raw.get("title")
    if not isinstance(title, str) or not title.strip():
        raise LessonError("'title' is missing")
    model = raw.get("model", "fashion_vgg")
    if model not in (*models.BUILTIN, "vgg16", "vgg16-random"):
        raise LessonError(f"model {model!r} is not a shipped model "
                          f"({', '.join([*models.BUILTIN, 'vgg16', 'vgg16-random'])})")
    images = _strings(raw, "images", ("fashion_mnist:0",))
    if not images:
        raise LessonError("'images' is empty")
    for img in images:
        parse_image(img)
    steps = _strings(raw, "steps", tuple(STEPS))
    if bad := [s for s in steps if s not in STEPS]:
        raise LessonError(f"unknown step(s) {', '.join(bad)}; steps: {', '.join(STEPS)}")
    if not steps:
        raise LessonError("'steps' is empty")
    hide = _strings(raw, "hide", ())
    if bad := [h for h in hide if h not in HIDEABLE]:
        raise LessonError(f"cannot hide {', '.join(bad)}; hideable: {', '.join(HIDEABLE)}")
    methods = _strings(raw, "methods", DEFAULT_METHODS)
    if bad := [m for m in methods if m not in REGISTRY]:
        raise LessonError(f"unknown method(s) {', '.join(bad)}; methods: {', '.join(REGISTRY)}")
    unit = raw.get("unit", {})
    if not isinstance(unit, dict) or set(unit) - {"layer", "index"}:
        raise LessonError("[unit] takes 'layer' and 'index'")
    index = unit.get("index", 0)
    if not isinstance(index, int) or index < 0:
        raise LessonError("[unit] index must be a whole number >= 0")
    text = raw.get("text", {})
    for step, parts in text.items():
        if step not in STEPS or not isinstance(parts, dict) or set(parts) - set(TEXT_FIELDS):
            raise LessonError(f"[text.{step}] must name a step and set "
                              f"{', '.join(TEXT_FIELDS)}")
    return Lesson(name, title.strip(), str(raw.get("summary", "")).strip(), model, images,
                  steps, hide, methods, unit.get("layer"), index, dict(text), path)


def load(name: str) -> Lesson:
    """The lesson called ``name`` (a file in :func:`search_dirs`), or LessonError."""
    if not _NAME.match(str(name)):
        raise LessonError(f"{name!r} is not a lesson name (letters, digits, '-' and '_')")
    path = available().get(name)
    if path is None:
        raise LessonError(f"no lesson {name!r}; lessons: {', '.join(available()) or 'none'}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LessonError(f"{path.name} cannot be read: {exc}") from exc
    return from_dict(name, raw, path)
