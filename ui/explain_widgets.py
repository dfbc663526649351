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
                values[p.name] = st.select_slider(label, options=log_options(p),
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


def param_values(keys, key_prefix: str) -> dict[str, dict]:
    """The methods' parameters as set (by a link) without their widgets: the stored value or
    the paper's default, advanced ones included only when set."""
    out = {}
    for k in keys:
        vals = {}
        for p in REGISTRY[k].params:
            key = f"{key_prefix}_{k}_{p.name}"
            if key in st.session_state or not p.advanced:
                vals[p.name] = st.session_state.get(key, p.default)
        out[k] = vals
    return out


def log_options(p) -> list[float]:
    """The choices of a log-scale float parameter's slider."""
    lo, hi = float(p.low or 0.0), float(p.high or 1.0)
    return sorted({float(f"{v:.2g}") for v in np.geomspace(max(lo, 1e-9), hi, 13)}
                  | {float(p.default)})


def link_fields(info: ModelInfo, available: list[str], default: list[str],
                convs: list[str], default_layer: str | None) -> list:
    """The Explain page's controls as link fields: methods, class, layer, display, every
    method's parameters (``<method>.<param>``) and the faithfulness steps."""
    from ui import links

    fields = [links.list_field("methods", "xp_methods", default, available),
              links.class_field("class", "xp_target", info.num_classes),
              links.float_field("opacity", "xp_opacity", 0.5, 0.0, 1.0),
              links.flag_field("signed", "xp_signed", True),
              links.flag_field("advanced", "xp_adv", False),
              links.int_field("steps", "xp_steps", 40, 10, 100)]
    if convs:
        fields.append(links.choice_field("layer", f"xp_layer_{info.key}", default_layer, convs))
    for m in available:
        for p in REGISTRY[m].params:
            name, key = f"{m}.{p.name}", f"xp_{m}_{p.name}"
            if p.kind == "int":
                fields.append(links.int_field(name, key, int(p.default), int(p.low or 1),
                                              int(p.high or 100)))
            elif p.kind == "float" and p.log:
                fields.append(links.Field(name, key, "float", float(p.default),
                                          options=tuple(log_options(p))))
            elif p.kind == "float":
                fields.append(links.float_field(name, key, float(p.default), float(p.low or 0),
                                                float(p.high or 1)))
            elif p.kind == "choice":
                fields.append(links.choice_field(name, key, p.default, p.choices))
            elif p.kind == "bool":
                fields.append(links.flag_field(name, key, bool(p.default)))
    return fields


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
    widgets.downloads(f"{key}_{info.class_names[res.target]}",
                      lambda: render.overlay(render.upscale(raw, 224), res.heatmap, opacity),
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


# --------------------------------------------------------------------------- the report


def report_html(info: ModelInfo, inp, probs: np.ndarray, target: int, results: dict,
                params: dict, layer: str | None, url: str, curves=None, sanity=None) -> str:
    """The page as a self-contained HTML report (:func:`vizcore.report.explain_report`).

    Faithfulness and the sanity check are computed here when the page has not run them and
    the model is small (a 28x28 model: about a second); on a big model the report says they
    were not run. Runs without Streamlit (a download's deferred callable)."""
    from vizcore import models, report
    from vizcore.explain import metrics

    ok = {k: r for k, r in results.items() if not isinstance(r, str)}
    small = min(info.input_shape[:2]) <= 64
    missing = []
    if curves is None and ok and small:
        curves = {k: metrics.deletion_insertion(info, inp.x, r, steps=40, target=target)
                  for k, r in ok.items()}
    if sanity is None and ok and small:
        sanity = metrics.randomisation_check(info, inp.x, list(ok), target=target,
                                             params={k: params.get(k, {}) for k in ok})
    if not small and (curves is None or sanity is None):
        missing.append("On this model the faithfulness scores and the sanity check take a "
                       "while: run them on the page first and download the report again to "
                       "include them.")
    settings = {"explained class": f"{info.class_names[target]} ({target})",
                "CAM layer": layer or "-"}
    for k in ok:
        settings[REGISTRY[k].name] = ", ".join(f"{n}={v}" for n, v in params.get(k, {}).items()
                                               ) or "defaults"
    return report.explain_report(
        title=f"Why {info.class_names[int(np.argmax(probs))]}? An explained prediction",
        model_label=info.label, card_rows=models.card_rows(info.card), image=inp.raw,
        image_title=inp.title, probs=probs, class_names=info.class_names,
        true_label=inp.label, target=target, maps=ok,
        names={k: REGISTRY[k].name for k in REGISTRY},
        notes={k: REGISTRY[k].note for k in REGISTRY}, curves=curves, sanity=sanity,
        settings=settings, link=url, missing=missing)


def report_button(slot, info: ModelInfo, inp, probs, target: int, results: dict, params: dict,
                  layer: str | None, link, curves=None, sanity=None, key: str = "xp_report"
                  ) -> None:
    """"Download report": the HTML file is made when the button is pressed. ``link`` is the
    view's :class:`ui.links.Link`, or the address itself."""
    from ui import links

    url = link if isinstance(link, str) else links.page_url(link.query())
    slot.download_button(
        "Download report (HTML)", lambda: report_html(info, inp, probs, target, results, params,
                                                      layer, url, curves, sanity),
        f"vizcore_report_{info.class_names[target]}.html".replace("/", "-").replace(" ", "_"),
        "text/html", key=key, on_click="ignore", icon=":material/description:",
        help="One self-contained HTML file (images embedded, opens offline): the input, the "
             "top-5, every map with its note, the faithfulness table, the sanity check, the "
             "model card, the settings and the link that reopens this view.")
