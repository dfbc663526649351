"""The Explain page's pieces: parameter forms, the class picker, runs of several methods, the map
cells, and the faithfulness and sanity checks (computed under a progress bar)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from ui import cache, figures, widgets
from ui.progress import progress
from vizcore import data, render
from vizcore.explain import REGISTRY
from vizcore.models import ModelInfo


def methods_for(info: ModelInfo) -> tuple[list[str], dict[str, str], list[str]]:
    """(keys of the methods that apply to ``info``, {key: why not} for the others, the default
    choice: up to three of Grad-CAM, SmoothGrad, LRP composite and CAM)."""
    why = {k: s.applies_to(info) for k, s in REGISTRY.items()}
    available = [k for k, (ok, _) in why.items() if ok]
    default = [k for k in ("gradcam", "smoothgrad", "lrp_composite", "cam") if k in available]
    return available, {k: r for k, (ok, r) in why.items() if not ok}, default[:3]


def param_widgets(spec, key_prefix: str, show_advanced: bool = False) -> dict:
    """One widget per parameter of a method (defaults from its paper); returns the values."""
    values = {}
    for p in spec.params:
        if p.advanced and not show_advanced:
            continue
        key = f"{key_prefix}_{spec.key}_{p.name}"
        label = p.name.replace("_", " ")
        if p.kind == "int":
            values[p.name] = st.slider(label, int(p.low or 1), int(p.high or 100), int(p.default),
                                       key=key, help=p.help)
        elif p.kind == "float":
            lo, hi = float(p.low or 0.0), float(p.high or 1.0)
            if p.log:
                values[p.name] = st.select_slider(
                    label, options=sorted({float(f"{v:.2g}") for v in np.geomspace(
                        max(lo, 1e-9), hi, 13)} | {float(p.default)}),
                    value=float(p.default), key=key, help=p.help)
            else:
                values[p.name] = st.slider(label, lo, hi, float(p.default), key=key, help=p.help)
        elif p.kind == "choice":
            values[p.name] = st.selectbox(label, list(p.choices),
                                          index=list(p.choices).index(p.default), key=key,
                                          help=p.help)
        elif p.kind == "bool":
            values[p.name] = st.checkbox(label, bool(p.default), key=key, help=p.help)
    return values


def target_picker(info: ModelInfo, probs: np.ndarray, key: str) -> int | None:
    """'Predicted class' or any class, ordered by probability; returns None for predicted."""
    order = [int(i) for i in np.argsort(-probs, kind="stable")]  # ties: lowest index first,
    # as np.argmax (the page's "predicted class") picks it
    options = [None, *order]

    def fmt(i):
        if i is None:
            return f"the predicted class ({info.class_names[order[0]]})"
        return f"{info.class_names[i]} ({probs[i]:.1%})"

    return st.selectbox("Explain which class?", options, format_func=fmt, key=key,
                        help="Ask 'where is the cat?' and 'where is the dog?' in the same image.")


def _frozen(params: dict) -> tuple:
    return tuple(sorted(params.items()))


def settings_key(keys, params: dict[str, dict]) -> tuple:
    """The methods ``keys`` and their parameters, hashable (part of a session key)."""
    return tuple((k, _frozen(params.get(k, {}))) for k in keys)


def run_method(info: ModelInfo, x: np.ndarray, key: str, target: int | None,
               layer: str | None, params: dict[str, dict]):
    """One method's explanation (shared, queued when heavy), or a message saying why it could
    not run."""
    try:
        with st.spinner(f"Computing {REGISTRY[key].name}...", show_time=True):
            return cache.explain(info.key, info, x, key, target, layer,
                                 _frozen(params.get(key, {})))
    except (ValueError, KeyError, TypeError) as exc:
        return f"{REGISTRY[key].name} could not run: {exc}"


def run_methods(info: ModelInfo, x: np.ndarray, keys: list[str], target: int | None,
                layer: str | None, params: dict[str, dict]) -> dict:
    """Explain with several methods (shared); errors become messages."""
    return {key: run_method(info, x, key, target, layer, params) for key in keys}


def show_map(info: ModelInfo, raw: np.ndarray, key: str, res, opacity: float,
             show_signed: bool) -> None:
    """One method's cell: its map over the image, the signed map, notes and downloads."""
    spec = REGISTRY[key]
    st.subheader(spec.name)
    if isinstance(res, str):
        st.error(res)
        return
    if res.stats.get("blank"):
        st.warning(f"This map is numerically zero (largest value {res.stats['peak']:.1e}): the "
                   "model gives this method no signal here (a dead or saturated network, or a "
                   "class with no evidence). It is shown blank rather than as amplified rounding "
                   "noise.", icon=":material/block:")
    st.plotly_chart(figures.heatmap_figure(res.heatmap, raw, opacity=opacity, zmin=0.0, zmax=1.0,
                                           height=300), width="stretch", key=f"xp_ov_{key}")
    if show_signed and res.signed is not None:
        st.plotly_chart(figures.heatmap_figure(res.signed, signed=True, title="signed map",
                                               height=300), width="stretch", key=f"xp_sg_{key}")
    if "score" in res.stats:
        from vizcore.explain.lrp import describe_stats

        st.caption(describe_stats(res.stats))
    st.caption(f"{spec.note} *Cost: {spec.cost}; took {res.seconds * 1000:.0f} ms"
               + (f" at layer `{res.layer}`" if res.layer else "") + ".*")
    png = render.overlay(render.upscale(raw, 224), res.heatmap, opacity)
    widgets.downloads(f"{key}_{info.class_names[res.target]}", png,
                      res.signed if res.signed is not None else res.heatmap, key=key)


# --------------------------------------------------------------------------- faithfulness


def faithfulness(info: ModelInfo, x: np.ndarray, results: dict, steps: int,
                 target: int) -> dict:
    """Deletion and insertion curves of every map in ``results`` (key -> Explanation)."""
    from vizcore.explain import metrics

    curves = {}
    with progress("Deletion and insertion curves...") as bar:
        for i, (key, res) in enumerate(results.items()):
            curves[key] = metrics.deletion_insertion(info, x, res, steps=steps, target=target)
            bar((i + 1) / len(results), f"{REGISTRY[key].name} done")
    return curves


def faithfulness_table(curves: dict) -> pd.DataFrame:
    """One row per method: both areas and their difference, most faithful first."""
    return pd.DataFrame([{"method": REGISTRY[k].name, "deletion AUC (lower is better)":
                          c.deletion_auc, "insertion AUC (higher is better)": c.insertion_auc,
                          "insertion - deletion": c.insertion_auc - c.deletion_auc}
                         for k, c in curves.items()]).sort_values("insertion - deletion",
                                                                  ascending=False)


def dataset_scores(info: ModelInfo, n: int, keys: list[str],
                   params: dict[str, dict]) -> pd.DataFrame:
    """Mean faithfulness of each method over ``n`` balanced images of the dataset matching the
    model (Fashion-MNIST, else the photos), as a table."""
    from vizcore.explain import metrics

    ds = cache.load_dataset("fashion_mnist" if info.class_names == data.FASHION_CLASSES
                            else "photos")
    h, w, c = info.input_shape
    raws = np.stack([data.fit_image(ds.images[i], (h, w), c, invert=False)
                     for i in ds.balanced_sample(n, seed=0)])
    with progress(f"Scoring {len(keys)} methods on {len(raws)} images...") as bar:
        summary = metrics.dataset_faithfulness(
            info, info.preprocess(raws), list(keys), steps=20,
            params={k: params.get(k, {}) for k in keys}, progress=bar)
    return pd.DataFrame([{"method": REGISTRY[k].name, **v} for k, v in summary.items()])


# --------------------------------------------------------------------------- sanity check


def randomisation(info: ModelInfo, x: np.ndarray, keys: list[str], target: int,
                  params: dict[str, dict]):
    """Adebayo et al.'s cascading randomisation check of the methods ``keys``."""
    from vizcore.explain import metrics

    with progress("Randomising layers from the top...") as bar:
        return metrics.randomisation_check(info, x, list(keys), target=target,
                                           params={k: params.get(k, {}) for k in keys},
                                           progress=bar)


def show_randomisation(res) -> None:
    """Each method's maps as more layers are randomised, and their similarity curves."""
    for key in res.methods:
        st.markdown(f"**{REGISTRY[key].name}**: maps as more layers are randomised "
                    "(left: original model)")
        tiles = np.stack([res.maps[(s, key)] for s in ["original", *res.layers]])
        st.image(render.upscale(render.grid(tiles, cols=len(tiles), cmap="jet",
                                            normalize_each=True), 96), width="stretch")
    st.plotly_chart(figures.randomisation_figure(res, {k: REGISTRY[k].name for k in res.methods}),
                    width="stretch", key="xp_sanity_fig")
    if res.skipped:
        st.caption("Skipped: " + "; ".join(f"{k}: {v}" for k, v in res.skipped.items()))
