"""Explain a prediction: attribution methods side by side, faithfulness scores, sanity check."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ui import explain_widgets as ew
from ui import state, widgets
from vizcore import data, render
from vizcore.explain import REGISTRY, metrics
from vizcore.explain.lrp import describe_stats

st.title("Explain a prediction")
widgets.note(
    "An attribution map colours the pixels that most influenced the score of one class: red = "
    "strong influence, blue = little. Methods disagree because they ask different questions "
    "(what would change the score, what the last layer looked at, where the score 'flows' back). "
    "A map is a hypothesis about the model, not proof: the faithfulness scores and the sanity "
    "check below test how much each map really depends on the model.")

info = state.current_model()
inp = state.current_input(info)
probs = info.forward(inp.x[None])[0]
pred = int(np.argmax(probs))

available = {k: s for k, s in REGISTRY.items() if s.applies_to(info)[0]}
unavailable = {k: s.applies_to(info)[1] for k, s in REGISTRY.items() if k not in available}
default = [k for k in ("gradcam", "smoothgrad", "lrp_composite", "cam") if k in available][:3]

top = st.columns([2, 2, 1])
with top[0]:
    chosen = st.multiselect("Methods", list(available), default=default,
                            format_func=lambda k: REGISTRY[k].name, key="xp_methods")
    if unavailable:
        st.caption("Not available for this model: " + "; ".join(
            f"**{REGISTRY[k].name}**: {why}" for k, why in unavailable.items()))
with top[1]:
    target = ew.target_picker(info, probs, "xp_target")
    convs = info.cam_layers()
    default_layer = info.cam_layer()
    layer = st.selectbox("Layer for the CAM family", convs,
                         index=convs.index(default_layer) if default_layer in convs else 0,
                         key=f"xp_layer_{info.key}", help="The output of the last conv block by "
                         "default (nested base models included): the most class-specific maps, "
                         "at the coarsest resolution.") if convs else None
with top[2]:
    opacity = st.slider("Heatmap opacity", 0.0, 1.0, 0.5, 0.05, key="xp_opacity")
    show_signed = st.toggle("Signed maps", True, key="xp_signed",
                            help="Red pushes the score up, blue pushes it down.")

params: dict[str, dict] = {}
with st.expander("Method parameters (defaults from each paper)"):
    advanced = st.toggle("Show advanced parameters", False, key="xp_adv")
    pcols = st.columns(max(1, min(3, len(chosen))))
    for i, key in enumerate(chosen):
        with pcols[i % len(pcols)]:
            st.markdown(f"**{REGISTRY[key].name}**")
            params[key] = ew.param_widgets(REGISTRY[key], "xp", advanced)
            if not REGISTRY[key].params:
                st.caption("No parameters.")

tgt = pred if target is None else int(target)
c1, c2 = st.columns([1, 2])
c1.image(render.upscale(inp.raw, 224), caption=inp.title, width=220)
c2.plotly_chart(widgets.topk_figure(info, probs, 5, inp.label, "Top-5 probabilities"),
                width="stretch", key="xp_topk")
c2.markdown(f"Explaining **{info.class_names[tgt]}** ({probs[tgt]:.1%}).")

if not chosen:
    st.warning("Pick at least one method above.")
    st.stop()

results = ew.run_methods(info, inp.x, chosen, target, layer, params)

st.header("Maps")
ncols = 3 if len(chosen) > 2 else len(chosen)
for row in range(0, len(chosen), ncols):
    cols = st.columns(ncols)
    for col, key in zip(cols, chosen[row : row + ncols]):
        spec, res = REGISTRY[key], results[key]
        with col:
            st.subheader(spec.name)
            if isinstance(res, str):
                st.error(res)
                continue
            if res.stats.get("blank"):
                st.warning(f"This map is numerically zero (largest value "
                           f"{res.stats['peak']:.1e}): the model gives this method no signal "
                           "here (a dead or saturated network, or a class with no evidence). "
                           "It is shown blank rather than as amplified rounding noise.",
                           icon=":material/block:")
            st.plotly_chart(ew.overlay_figure(inp.raw, res.heatmap, opacity), width="stretch",
                            key=f"xp_ov_{key}")
            if show_signed and res.signed is not None:
                st.plotly_chart(ew.signed_figure(res.signed, "signed map"), width="stretch",
                                key=f"xp_sg_{key}")
            if "score" in res.stats:
                st.caption(describe_stats(res.stats))
            st.caption(f"{spec.note} *Cost: {spec.cost}; took {res.seconds * 1000:.0f} ms"
                       + (f" at layer `{res.layer}`" if res.layer else "") + ".*")
            png = render.overlay(render.upscale(inp.raw, 224), res.heatmap, opacity)
            widgets.downloads(f"{key}_{info.class_names[res.target]}", png,
                              res.signed if res.signed is not None else res.heatmap, key=key)

# --------------------------------------------------------------------------- faithfulness
st.header("How faithful is each map?")
st.markdown(
    "**Deletion** removes the pixels a map ranks highest first and follows the class "
    "probability: a faithful map makes it fall fast (low area under the curve). **Insertion** "
    "adds them to a blurred image: a faithful map makes it rise fast (high area). (Petsiuk et al. "
    "2018, RISE.)")
ok = {k: r for k, r in results.items() if not isinstance(r, str)}
fc1, fc2 = st.columns([1, 3])
steps = fc1.slider("Steps per curve", 10, 100, 40, key="xp_steps")
if fc1.button("Score these maps", key="xp_faith", type="primary"):
    bar = st.progress(0.0, text="Deletion and insertion curves...")
    curves = {}
    for i, (key, res) in enumerate(ok.items()):
        curves[key] = metrics.deletion_insertion(info, inp.x, res, steps=steps, target=tgt)
        bar.progress((i + 1) / len(ok), text=f"{REGISTRY[key].name} done")
    bar.empty()
    st.session_state["xp_curves"] = (info.key, inp.title, tgt, curves)
saved = st.session_state.get("xp_curves")
if saved and saved[:3] == (info.key, inp.title, tgt):
    curves = saved[3]
    table = pd.DataFrame([{"method": REGISTRY[k].name, "deletion AUC (lower is better)":
                           c.deletion_auc, "insertion AUC (higher is better)": c.insertion_auc,
                           "insertion - deletion": c.insertion_auc - c.deletion_auc}
                          for k, c in curves.items()]).sort_values("insertion - deletion",
                                                                   ascending=False)
    fc2.dataframe(table, hide_index=True, width="stretch")
    fig = go.Figure()
    for k, c in curves.items():
        fig.add_trace(go.Scatter(x=c.fractions, y=c.deletion, name=f"{REGISTRY[k].name} deletion"))
        fig.add_trace(go.Scatter(x=c.fractions, y=c.insertion, line=dict(dash="dot"),
                                 name=f"{REGISTRY[k].name} insertion"))
    fig.update_layout(xaxis_title="fraction of pixels removed / inserted",
                      yaxis_title=f"p({info.class_names[tgt]})", height=340,
                      margin=dict(l=10, r=10, t=10, b=40))
    st.plotly_chart(fig, width="stretch", key="xp_curves_fig")

with st.expander("Score the methods over a sample of the dataset"):
    ds_name = "fashion_mnist" if info.class_names == data.FASHION_CLASSES else "photos"
    n = st.slider("Images", 20, 500, 200, 20, key="xp_ds_n")
    if st.button(f"Run over {n} images", key="xp_ds_run"):
        ds = state.load_dataset(ds_name)
        idx = ds.balanced_sample(n, seed=0)
        raws = np.stack([data.fit_image(ds.images[i], info.input_shape[:2],
                                              info.input_shape[2], invert=False) for i in idx])
        bar = st.progress(0.0, text=f"Scoring {len(chosen)} methods on {len(idx)} images...")
        summary = metrics.dataset_faithfulness(
            info, info.preprocess(raws), list(ok), steps=20,
            params={k: params.get(k, {}) for k in ok},
            progress=lambda f: bar.progress(min(f, 1.0)))
        bar.empty()
        st.dataframe(pd.DataFrame([{"method": REGISTRY[k].name, **v} for k, v in
                                   summary.items()]), hide_index=True, width="stretch")

# --------------------------------------------------------------------------- sanity check
st.header("Sanity check: does the map depend on the model?")
st.markdown(
    "Adebayo et al. (2018) randomise the network's weights layer by layer, from the output "
    "down. A method that explains the *model* should produce very different maps once the "
    "weights are random; a map that barely changes is showing the image (edges), not what the "
    "network learned.")
if st.button("Run the randomisation check", key="xp_sanity"):
    bar = st.progress(0.0, text="Randomising layers from the top...")
    res = metrics.randomisation_check(info, inp.x, list(ok), target=tgt,
                                      params={k: params.get(k, {}) for k in ok},
                                      progress=lambda f: bar.progress(min(f, 1.0)))
    bar.empty()
    st.session_state["xp_sanity_res"] = (info.key, inp.title, tgt, res)
saved = st.session_state.get("xp_sanity_res")
if saved and saved[:3] == (info.key, inp.title, tgt):
    res = saved[3]
    steps_ = ["original", *res.layers]
    for key in res.methods:
        st.markdown(f"**{REGISTRY[key].name}**: maps as more layers are randomised "
                    "(left: original model)")
        tiles = np.stack([res.maps[(s, key)] for s in steps_])
        st.image(render.upscale(render.grid(tiles, cols=len(tiles), cmap="jet",
                                             normalize_each=True), 96), width="stretch")
    fig = go.Figure()
    for key in res.methods:
        fig.add_trace(go.Scatter(x=res.layers, y=[res.spearman[(lyr, key)] for lyr in res.layers],
                                 name=f"{REGISTRY[key].name} (Spearman)", mode="lines+markers"))
        fig.add_trace(go.Scatter(x=res.layers, y=[res.ssim[(lyr, key)] for lyr in res.layers],
                                 name=f"{REGISTRY[key].name} (SSIM)", mode="lines+markers",
                                 line=dict(dash="dot")))
    fig.update_layout(xaxis_title="randomised down to layer", yaxis_title="similarity to "
                      "the original map", yaxis_range=[-0.2, 1.05], height=360,
                      margin=dict(l=10, r=10, t=10, b=40))
    st.plotly_chart(fig, width="stretch", key="xp_sanity_fig")
    if res.skipped:
        st.caption("Skipped: " + "; ".join(f"{k}: {v}" for k, v in res.skipped.items()))
