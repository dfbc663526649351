"""Shared widgets: the page note, downloads, the "use your own model" form, the model overview."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import streamlit as st

from ui import state
from vizcore import models, render
from vizcore.models import ModelInfo


def note(text: str) -> None:
    """The two-or-three-sentence explanation every page starts with."""
    st.info(text, icon=":material/school:")


def downloads(name: str, png: np.ndarray | Callable[[], np.ndarray] | None = None,
              array: np.ndarray | None = None, key: str = "") -> None:
    """PNG and .npy download buttons side by side.

    The files are made when the button is pressed (a deferred ``data`` callable), not on every
    rerun: encoding them each time cost a rerun more than drawing its maps, and a session kept
    every file in memory while it was open. ``png`` may be a callable that makes the image."""
    cols = st.columns(2)
    if png is not None:
        cols[0].download_button("Download PNG",
                                lambda: render.png_bytes(png() if callable(png) else png),
                                f"{name}.png",
                                "image/png", key=f"dl_png_{key or name}", on_click="ignore",
                                icon=":material/download:")
    if array is not None:
        cols[1].download_button("Download .npy", lambda: render.npy_bytes(array), f"{name}.npy",
                                "application/octet-stream", key=f"dl_npy_{key or name}",
                                on_click="ignore",
                                icon=":material/download:")


# --------------------------------------------------------------------------- your own model

_FORM_DIGEST = "vz_form_digest"  # content hash whose settings the upload form shows
_NAMES_FILE_ID = "vz_names_file_id"  # the class-names file already copied into the text area
_APPLY = "vz_upload_apply"  # the input size changed: reload the model with it


def _request_apply() -> None:
    st.session_state[_APPLY] = True


def _prefill_upload_form(digest: str | None, known) -> None:
    """Show the settings remembered for the file ``digest`` (the defaults for a new file).

    Runs when the form turns to another file and when its widgets were dropped (the user went
    to another page); on a fresh form what the user typed before picking the file is kept.
    """
    previous = st.session_state.get(_FORM_DIGEST)
    dropped = "model_scaling" not in st.session_state
    if digest == previous and not dropped:
        return
    st.session_state[_FORM_DIGEST] = digest
    if known is not None:
        scaling, names, size = known.scaling or "auto", known.class_names or (), known.size
    elif previous is None and not dropped:
        return
    else:
        scaling, names, size = "auto", (), models.DEFAULT_FLEXIBLE_SIZE
    st.session_state["model_scaling"] = scaling
    st.session_state["model_names"] = "\n".join(names)
    st.session_state["model_h"], st.session_state["model_w"] = int(size[0]), int(size[1])


def model_upload_form() -> None:
    """The "use your own model" form: the file, its input scaling, class names typed or read
    from a .txt/.json file and, for a model that accepts any input size, the size to run it at.

    Settings are remembered per file content for the session, so uploading the same file again
    (or coming back to Home) shows them. A file that cannot be used shows the cause and the fix;
    the previous model stays selected.
    """
    up = st.file_uploader("Model file", type=["keras", "h5", "hdf5"], key="model_upload",
                          help="Saved with model.save(). Loaded in Keras safe mode: Lambda "
                               "layers and custom objects are refused.")
    current = state.current_upload()
    digest = state.uploaded_digest(up) if up is not None else (
        current.digest if current is not None else None)
    known = state.upload_settings(digest)
    _prefill_upload_form(digest, known)
    locked = up is None and current is not None
    if locked:
        st.caption(f"The settings of the current model ({current.filename}). Upload its file "
                   "again to change them.")
    elif known is not None and up is not None:
        st.caption("Settings you last loaded this file with. Change them and press *Load "
                   "model* to reload it.")
    scaling = st.selectbox(
        "Input scaling the model expects", ["auto", *models.SCALINGS], key="model_scaling",
        format_func=lambda s: "auto: 0..255 if the model starts with a Rescaling layer, else "
        "0..1" if s == "auto" else f"{s}: {models.SCALINGS[s]}", disabled=locked)
    typed, from_file = st.container(), st.container()
    with from_file:  # runs first: a names file fills the text area drawn above it
        names_file = st.file_uploader("...or read the class names from a file", key=
                                      "model_names_file", type=["txt", "json"], disabled=locked,
                                      help="A .txt with one name per line, or a .json list "
                                           "(or {index: name} mapping, like Keras's "
                                           "imagenet_class_index.json).")
        if names_file is not None and st.session_state.get(_NAMES_FILE_ID) != names_file.file_id:
            try:
                names = models.parse_class_names(names_file.getvalue(), names_file.name)
            except models.ModelLoadError as exc:
                st.error(f"{exc}", icon=":material/error:")
            else:
                st.session_state["model_names"] = "\n".join(names)
                st.session_state[_NAMES_FILE_ID] = names_file.file_id
    with typed:
        names_text = st.text_area("Class names, one per line (optional)", key="model_names",
                                  height=80, disabled=locked,
                                  help="One per model output, in output order. Empty: ImageNet "
                                       "names for 1,000 outputs, else 'class 0', 'class 1', ...")
    size = None
    if known is not None and known.flexible:
        st.caption("This model accepts images of any size; vizcore runs it at the size below. "
                   "Changing it reloads the model.")
        c1, c2 = st.columns(2)
        h = c1.number_input("Input height", 8, 1024, key="model_h", disabled=locked,
                            on_change=_request_apply)
        w = c2.number_input("Input width", 8, 1024, key="model_w", disabled=locked,
                            on_change=_request_apply)
        size = (int(h), int(w))
    apply = st.session_state.pop(_APPLY, False)
    clicked = st.button("Load model", key="model_load", type="primary", disabled=up is None)
    if up is None or not (clicked or apply):
        return
    names = [n.strip() for n in names_text.splitlines() if n.strip()] or None
    try:
        new = state.add_upload(up.getvalue(), up.name, None if scaling == "auto" else scaling,
                               names, size)
    except models.ModelLoadError as exc:
        st.error(f"{exc} The previous model stays selected.", icon=":material/error:")
    except Exception as exc:  # an upload must never show a traceback
        st.error(f"vizcore could not prepare '{up.name}' ({type(exc).__name__}: "
                 f"{str(exc)[:300]}). Fix: check that the model uses only built-in Keras layers. "
                 "The previous model stays selected.", icon=":material/error:")
    else:
        shape = "x".join(str(d) for d in new.input_shape)
        state.flash(f"Loaded {new.label} ({shape}, {new.num_classes} classes); it is now "
                    "selected.")
        st.rerun()


# --------------------------------------------------------------------------- model overview


def model_facts(info: ModelInfo, scaling_guessed: bool = False) -> list[tuple[str, str]]:
    """What vizcore reads off a model's graph, as (property, value) rows.

    Args:
        info: The model.
        scaling_guessed: The input scaling was guessed ("auto"), so the user should check it.
    """
    g = info.graph
    h, w, c = info.input_shape
    size = f"{h}x{w}x{c}"
    if "input size" in info.card:
        size += " (chosen: the model accepts any size)"
    names = info.class_names
    shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
    branch = g.first_branch()
    nested = next((v for k, v in info.card.items() if k.startswith("nested models")), "")
    return [
        ("Input", size),
        ("Scaling", f"{info.scaling}: {models.SCALINGS.get(info.scaling, '')}" + (
            " (guessed: check it under *Use your own model*)" if scaling_guessed else "")),
        ("Classes", f"{info.num_classes} ({shown})"),
        ("Output", "probabilities (softmax)" if info.outputs_probabilities
         else "logits (vizcore applies the softmax)"),
        ("Parameters", f"{info.model.count_params():,}"),
        ("Layers", f"{len(g.layers())}" + (f", those of the nested {nested} included" if nested
                                           else "")),
        ("One chain", "yes" if g.is_chain() else "no" + (
            f": the first fork or merge is at '{branch}'" if branch else "")),
        ("Default CAM layer", f"'{info.cam_layer()}'" if info.cam_layer() else
         "none (no convolution)"),
    ]


def model_overview(info: ModelInfo) -> None:
    """A summary of the model and, per attribution method, the layer it will use or why it
    refuses: read off the graph, before anything heavy runs (open by default for uploads)."""
    import pandas as pd

    from vizcore.explain import method_plan

    with st.expander("What vizcore sees in this model, and which methods will run",
                     expanded=info.kind == "upload", icon=":material/fact_check:"):
        st.caption("Read off the model's graph before anything is computed. Each method either "
                   "runs, on the layer named, or refuses and says why: a refusal is a property "
                   "of the architecture, not an error.")
        upload = state.current_upload() if info.kind == "upload" else None
        facts = model_facts(info, upload is not None and upload.key == info.key
                            and upload.scaling is None)
        for row in range(0, len(facts), 4):
            for col, (name, value) in zip(st.columns(4), facts[row : row + 4]):
                col.markdown(f"**{name}**  \n{value}")
        plan = method_plan(info)
        st.dataframe(pd.DataFrame([{
            "method": r["name"], "family": r["family"],
            "runs": "runs" if r["runs"] else "refuses",
            "uses / why not": r["uses"] if r["runs"] else r["reason"]} for r in plan]),
            hide_index=True, width="stretch", height=36 + 35 * len(plan), column_config={
                "method": st.column_config.TextColumn(width="medium"),
                "family": st.column_config.TextColumn(width="small"),
                "runs": st.column_config.TextColumn(width="small"),
                "uses / why not": st.column_config.TextColumn(width="large")})
        refusals: dict[str, list[str]] = {}
        for r in plan:
            if not r["runs"]:
                refusals.setdefault(r["reason"], []).append(r["name"])
        for reason, names in refusals.items():
            verb = "refuses" if len(names) == 1 else "refuse"
            st.caption(f"**{', '.join(names)}** {verb}: {reason}")
