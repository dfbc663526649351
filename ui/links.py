"""Links that reopen a view: each page keeps its state in the URL's query string.

A page declares its linkable controls as :class:`Field` s (a name in the URL, the widget's
session-state key, how to read and check a value) and calls, before drawing its widgets,
:func:`restore` (apply a link's values to the widgets' state), and after them :func:`sync`
(write the current values back to the address bar and offer the link). The model, the input
image, the hidden controls (``hide=``) and the lesson travel on every page
(:func:`restore_common`, called once by the entry point before the sidebar is drawn).

A link is applied when the query string is not the one this session last wrote: a link opened
in a new tab, pasted, or followed from the tour. A value that does not parse, or is not valid
for the current model (a class index out of range, a method that does not apply, a layer that
does not exist), is skipped with a short warning, and the control keeps its default: never an
exception. Only values that differ from a control's default are written, so links stay short.

Uploaded models and images cannot travel in a link (the file is not in the URL): the page says
so next to the link, and a link opened elsewhere shows the default model or image instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import streamlit as st

from vizcore.lessons import HIDEABLE

WRITTEN = "vz_link_written"  # the query string (a dict) this session last wrote
HIDE_KEY = "vz_hide"  # controls the link hides (a frozenset of names)
LESSON_KEY = "vz_lesson"  # the lesson the link opened (its file name without .toml)
WARNINGS = "vz_link_warnings"  # what the last applied link got wrong (shown once)
COMMON = ("model", "img", "hide", "lesson")  # parameters every page carries

# --------------------------------------------------------------------------- fields


@dataclass(frozen=True)
class Field:
    """One linkable control.

    Attributes:
        name: Its name in the URL.
        key: The widget's session-state key.
        kind: "int", "float", "bool", "str", "list" (comma-separated strings) or "opt_int"
            (an int, or absent for None: "the predicted class").
        default: The widget's default (not written to the URL).
        options: The valid values, when the widget has a fixed set (selectbox, multiselect,
            select_slider); None for a range.
        low, high: The valid range of a number.
    """

    name: str
    key: str
    kind: str
    default: Any = None
    options: tuple | None = None
    low: float | None = None
    high: float | None = None

    def parse(self, text: str) -> Any:
        """The value of ``text``; ValueError (with a reason) when it is not valid here."""
        text = text.strip()
        if self.kind == "list":
            value: Any = tuple(t for t in (s.strip() for s in text.split(",")) if t)
            bad = [v for v in value if self.options is not None and v not in self.options]
            if bad:
                raise ValueError(f"{', '.join(bad)} not available here")
            return list(value)
        if self.kind == "bool":
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError("not 0 or 1")
        if self.kind in ("int", "opt_int"):
            if self.kind == "opt_int" and text.lower() in ("", "none", "predicted"):
                return None
            value = int(text)
        elif self.kind == "float":
            value = float(text)
            if not math.isfinite(value):
                raise ValueError("not a finite number")
        else:
            value = text
        if self.options is not None:
            if self.kind == "float":  # select_slider options: match within rounding
                near = [o for o in self.options if abs(float(o) - value) <= 1e-9 * max(1, abs(o))]
                if not near:
                    raise ValueError("not one of the choices")
                return near[0]
            if value not in self.options:
                raise ValueError("not one of the choices")
        if self.low is not None and value < self.low or self.high is not None and value > self.high:
            raise ValueError(f"outside {self.low:g}..{self.high:g}")
        return value

    def format(self, value: Any) -> str | None:
        """``value`` as it goes in the URL (None: not written)."""
        if value is None:
            return None
        if self.kind == "list":
            return ",".join(str(v) for v in value)
        if self.kind == "bool":
            return "1" if value else "0"
        if self.kind == "float":
            return f"{float(value):.6g}"
        return str(value)


def int_field(name: str, key: str, default: int, low: int, high: int) -> Field:
    return Field(name, key, "int", default, low=low, high=high)


def float_field(name: str, key: str, default: float, low: float, high: float) -> Field:
    return Field(name, key, "float", default, low=low, high=high)


def choice_field(name: str, key: str, default: Any, options: Iterable) -> Field:
    options = tuple(options)
    kind = "int" if options and all(isinstance(o, int) for o in options) else "str"
    return Field(name, key, kind, default, options=options)


def flag_field(name: str, key: str, default: bool) -> Field:
    return Field(name, key, "bool", default)


def list_field(name: str, key: str, default: Sequence[str], options: Iterable[str]) -> Field:
    return Field(name, key, "list", list(default), options=tuple(options))


def class_field(name: str, key: str, num_classes: int) -> Field:
    """A class picker whose None means "the predicted class"."""
    return Field(name, key, "opt_int", None, options=tuple(range(num_classes)))


# --------------------------------------------------------------------------- reading a link


def _query() -> dict[str, str]:
    return {k: st.query_params.get(k) for k in st.query_params}


def incoming() -> dict[str, str] | None:
    """The query string when it is a link to apply (not what this session wrote), else None."""
    q = _query()
    if q == st.session_state.get(WRITTEN):
        return None
    return q


def _warn(name: str, text: str, why: str) -> None:
    st.session_state.setdefault(WARNINGS, []).append(
        f"`{name}={text}` ({why}): using the default")


def restore(fields: Sequence[Field], known: Sequence[Field] | bool = True) -> None:
    """Apply a link's values to these fields' widgets (before the widgets are drawn), and
    report the link's parameters the page does not know.

    A page whose fields depend on earlier choices (the units of the chosen layer) restores in
    several calls: ``known=False`` in the first ones, and the page's whole list in the last.
    """
    q = incoming()
    if not q:
        return
    for f in fields:
        if f.name not in q:
            continue
        try:
            value = f.parse(q[f.name])
        except (ValueError, TypeError) as exc:
            _warn(f.name, q[f.name], str(exc) or "not valid")
            continue
        st.session_state[f.key] = value
    if known is False:
        return
    names = {f.name for f in (fields if known is True else known)}
    unknown = set(q) - names - set(COMMON)
    for name in sorted(unknown):
        _warn(name, q[name], "not a setting of this page")
    show_warnings()


def show_warnings() -> None:
    """Show (once) what the last link got wrong."""
    problems = st.session_state.pop(WARNINGS, None)
    if problems:
        st.warning("Some of this link's settings could not be used: " + "; ".join(problems)
                   + ".", icon=":material/link_off:")


def restore_common(model_options: Sequence[str], set_model: Callable[[str], None],
                   set_image: Callable[[str], str | None]) -> None:
    """Apply a link's model, image, hidden controls and lesson (before the sidebar is drawn).

    ``set_image(text)`` applies an ``img=`` value and returns None, or the reason it cannot.
    """
    q = incoming()
    if not q:
        return
    if "lesson" in q:
        from vizcore import lessons

        try:
            lesson = lessons.load(q["lesson"])
        except lessons.LessonError as exc:
            _warn("lesson", q["lesson"], str(exc))
        else:  # the link's own model and image (below) win over the lesson's
            apply_lesson(lesson, model_options, set_model, set_image)
    if "hide" in q:
        names = {t.strip() for t in q["hide"].split(",") if t.strip()}
        bad = sorted(names - set(HIDEABLE))
        if bad:
            _warn("hide", ",".join(bad), "no such control; hideable: " + ", ".join(HIDEABLE))
        st.session_state[HIDE_KEY] = frozenset(names & set(HIDEABLE))
    if "model" in q:
        if q["model"] in model_options:
            set_model(q["model"])
        else:
            _warn("model", q["model"], "no such model on this server")
    if "img" in q:
        why = set_image(q["img"])
        if why:
            _warn("img", q["img"], why)


def apply_lesson(lesson, model_options: Sequence[str], set_model: Callable[[str], None],
                 set_image: Callable[[str], str | None]) -> None:
    """Make ``lesson`` the session's: its hidden controls, its model and its first image."""
    st.session_state[LESSON_KEY] = lesson.name
    st.session_state[HIDE_KEY] = frozenset(lesson.hide)
    if lesson.model in model_options:
        set_model(lesson.model)
    set_image(lesson.images[0])


def hidden(name: str) -> bool:
    """True when the link (or the lesson) hides the control ``name`` (see :data:`HIDEABLE`)."""
    assert name in HIDEABLE, name
    return name in st.session_state.get(HIDE_KEY, frozenset())


# --------------------------------------------------------------------------- writing a link


@dataclass
class Link:
    """The query string of the current view and what cannot travel in it."""

    params: dict[str, str] = field(default_factory=dict)
    cannot_travel: list[str] = field(default_factory=list)

    def query(self) -> str:
        return urlencode(self.params)


def values(fields: Sequence[Field]) -> dict[str, str]:
    """The fields' current non-default values, formatted for the URL."""
    out = {}
    for f in fields:
        if f.key not in st.session_state:
            continue
        value = st.session_state[f.key]
        if value == f.default or (f.kind == "list" and list(value) == list(f.default or [])):
            continue
        text = f.format(value)
        if text is not None:
            out[f.name] = text
    return out


def sync(fields: Sequence[Field] = (), common: dict[str, str] | None = None,
         cannot_travel: Sequence[str] = (), button: bool = True) -> Link:
    """Write the view's state to the address bar and draw the "Copy link" button.

    Args:
        fields: The page's linkable controls (their current values are read from the state).
        common: The model / image / hide / lesson parameters (:func:`ui.state.common_link`).
        cannot_travel: What the link cannot carry (an uploaded model, an uploaded image).
        button: Draw the button (not from a fragment: it cannot draw in the sidebar).
    """
    params = dict(common or {})
    params.update(values(fields))
    if _query() != params:
        st.query_params.from_dict(params)
    st.session_state[WRITTEN] = dict(params)
    link = Link(params, list(cannot_travel))
    if button:
        copy_button(link)
    return link


def page_url(query: str) -> str:
    """The full address of the current page with ``query`` (relative when the browser did not
    say where it is)."""
    base = st.context.url or ""
    return f"{base}?{query}" if query else base


def address_of(page: str, params: dict[str, str]) -> str:
    """The full address of another page (``"explain"``) with ``params``."""
    base = (st.context.url or "").rstrip("/")
    root = base.rsplit("/", 1)[0] if "/" in base.split("://", 1)[-1] else base
    query = urlencode(params)
    return f"{root}/{page}" + (f"?{query}" if query else "")


def copy_button(link: Link, container=None) -> None:
    """A "Copy link" popover: the address with a copy icon, and what does not travel in it."""
    container = container or st.sidebar
    with container.popover("Copy link", icon=":material/link:", width="stretch"):
        st.caption("This address reopens the page as it is now (press the copy icon):")
        st.code(page_url(link.query()), language=None, wrap_lines=True)
        for what in link.cannot_travel:
            st.caption(f":material/info: {what} cannot travel in a link: whoever opens it sees "
                       "the default instead.")
