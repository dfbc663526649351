"""Explain a prediction: attribution methods side by side, faithfulness scores, sanity check."""

import streamlit as st

from ui import explain_widgets as ew
from ui import figures, jobs, links, state, widgets
from vizcore.explain import REGISTRY

st.title("Explain a prediction")
widgets.note(
    "An attribution map colours the pixels that most influenced the score of one class: red = "
    "strong influence, blue = little. Methods disagree because they ask different questions "
    "(what would change the score, what the last layer looked at, where the score 'flows' back). "
    "A map is a hypothesis about the model, not proof: the faithfulness scores and the sanity "
    "check below test how much each map really depends on the model.")

info = state.current_model()
inp = state.current_input(info)
probs, pred = state.predict(info, inp)
available, unavailable, default = ew.methods_for(info)
convs, default_layer = info.cam_layers(), info.cam_layer()
fields = ew.link_fields(info, available, default, convs, default_layer)
links.restore(fields)  # a link's settings, before the widgets are drawn

top = st.columns([2, 2, 1])
with top[0]:
    if links.hidden("methods"):
        chosen = [k for k in st.session_state.get("xp_methods", default) if k in available]
        st.markdown("**Methods:** " + ", ".join(REGISTRY[k].name for k in chosen))
    else:
        chosen = st.multiselect("Methods", available, default=default,
                                format_func=lambda k: REGISTRY[k].name, key="xp_methods")
    if unavailable and not links.hidden("methods"):
        st.caption("Not available for this model: " + "; ".join(
            f"**{REGISTRY[k].name}**: {why}" for k, why in unavailable.items()))
with top[1]:
    target = ew.target_picker(info, probs, "xp_target")
    layer = st.selectbox("Layer for the CAM family", convs,
                         index=convs.index(default_layer) if default_layer in convs else 0,
                         key=f"xp_layer_{info.key}", help="The output of the last conv block by "
                         "default (nested base models included): the most class-specific maps, "
                         "at the coarsest resolution.") if convs else None
with top[2]:
    opacity = st.slider("Heatmap opacity", 0.0, 1.0, 0.5, 0.05, key="xp_opacity")
    show_signed = st.toggle("Signed maps", True, key="xp_signed",
                            help="Red pushes the score up, blue pushes it down.")

params: dict[str, dict] = ew.param_values(chosen, "xp")  # the link's, when hidden
if not links.hidden("params"):
    with st.expander("Method parameters (defaults from each paper)"):
        advanced = st.toggle("Show advanced parameters", False, key="xp_adv")
        pcols = st.columns(max(1, min(3, len(chosen))))
        for i, key in enumerate(chosen):
            with pcols[i % len(pcols)]:
                st.markdown(f"**{REGISTRY[key].name}**")
                params[key] = ew.param_widgets(REGISTRY[key], "xp", advanced)
                if not REGISTRY[key].params:
                    st.caption("No parameters.")
link = state.sync_link(fields)

tgt = pred if target is None else int(target)
c1, c2 = st.columns([1, 2])
c1.image(figures.png(inp.raw, 224), caption=inp.title, width=220)
c2.plotly_chart(figures.topk_figure(probs, info.class_names, 5, inp.label, "Top-5 probabilities"),
                width="stretch", key="xp_topk")
c2.markdown(f"Explaining **{info.class_names[tgt]}** ({probs[tgt]:.1%}).")

if not chosen:
    st.warning("Pick at least one method above.")
    st.stop()

st.header("Maps")  # each map is shown as soon as it is computed
results: dict = {}
ncols = 3 if len(chosen) > 2 else len(chosen)
for row in range(0, len(chosen), ncols):
    for col, key in zip(st.columns(ncols), chosen[row : row + ncols]):
        with col:
            results[key] = ew.run_method(info, inp.x, key, target, layer, params)
            ew.show_map(info, inp.raw, key, results[key], opacity, show_signed)

report_slot = st.empty()  # the report button, drawn at the end with what the page computed
curves = sanity = None
if links.hidden("checks"):
    ew.report_button(report_slot, info, inp, probs, tgt, results, params, layer, link)
    st.stop()

# --------------------------------------------------------------------------- faithfulness
st.header("How faithful is each map?")
st.markdown(
    "**Deletion** removes the pixels a map ranks highest first and follows the class "
    "probability: a faithful map makes it fall fast (low area under the curve). **Insertion** "
    "adds them to a blurred image: a faithful map makes it rise fast (high area). (Petsiuk et al. "
    "2018, RISE.)")
ok = {k: r for k, r in results.items() if not isinstance(r, str)}
settings = ew.settings_key(list(ok), params)
maps_key = (info.key, inp.digest, tgt, layer, settings)  # what the maps depend on
fc1, fc2 = st.columns([1, 3])
steps = fc1.slider("Steps per curve", 10, 100, 40, key="xp_steps")
with fc1:
    curves = jobs.gated_result("Score these maps", "xp_faith", (maps_key, steps),
                               lambda: ew.faithfulness(info, inp.x, ok, steps, tgt),
                               type="primary")
if curves is not None:
    fc2.dataframe(ew.faithfulness_table(curves), hide_index=True, width="stretch")
    st.plotly_chart(figures.faithfulness_figure({REGISTRY[k].name: c for k, c in curves.items()},
                                                info.class_names[tgt]),
                    width="stretch", key="xp_curves_fig")

with st.expander("Score the methods over a sample of the dataset"):
    n = st.slider("Images", 20, 500, 200, 20, key="xp_ds_n")
    table = jobs.gated_result(f"Run over {n} images", "xp_ds_run", (info.key, settings, n),
                              lambda: ew.dataset_scores(info, n, list(ok), params))
    if table is not None:
        st.dataframe(table, hide_index=True, width="stretch")

# --------------------------------------------------------------------------- sanity check
st.header("Sanity check: does the map depend on the model?")
st.markdown(
    "Adebayo et al. (2018) randomise the network's weights layer by layer, from the output "
    "down. A method that explains the *model* should produce very different maps once the "
    "weights are random; a map that barely changes is showing the image (edges), not what the "
    "network learned.")
sanity = jobs.gated_result("Run the randomisation check", "xp_sanity", maps_key,
                           lambda: ew.randomisation(info, inp.x, list(ok), tgt, params))
if sanity is not None:
    ew.show_randomisation(sanity)
ew.report_button(report_slot, info, inp, probs, tgt, results, params, layer, link, curves, sanity)
