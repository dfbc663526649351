"""Fooling the model: FGSM, targeted PGD, an adversarial patch and flip rates."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ui import occlusion_view as view
from ui import state, widgets
from vizcore import adversarial as adv
from vizcore import render
from vizcore.explain import explain

st.title("Fooling the model")
widgets.note(
    "A tiny, carefully chosen change to every pixel can change the model's answer although a "
    "person sees the same picture: the perturbation is shown amplified because it is too faint "
    "to see. This shows that the model's decision can rest on patterns people do not use; it "
    "does not mean the model is useless on ordinary images, and these attacks need the model's "
    "gradients.")

info = state.current_model()
inp = state.current_input(info)
h, w, c = info.input_shape
small = min(h, w) <= 64
digest = view.digest(inp.raw)
names = info.class_names
methods = view.explain_options(info)
method = st.selectbox("Explanation shown before and after", methods, key="adv_method",
                      format_func=view.method_name,
                      help="Each image is explained for its own predicted class.")


@st.cache_data(show_spinner="Attacking...", max_entries=64)
def _attack(key: str, _info, x: np.ndarray, kind: str, eps: float, target: int | None,
            steps: int, step_size: float | None) -> adv.AttackResult:
    if kind == "fgsm":
        return adv.fgsm(_info, x, eps)
    return adv.pgd(_info, x, eps, steps, step_size, target=target)


@st.cache_data(show_spinner="Explaining...", max_entries=128)
def _heat(key: str, _info, x: np.ndarray, method: str) -> np.ndarray:
    return explain(_info, x, method).heatmap


def show_attack(res: adv.AttackResult, key: str) -> None:
    """Original | perturbation amplified | adversarial, top-5 before/after, explanations."""
    x_adv = res.x_adv[0]
    raw_adv = info.deprocess(x_adv)
    before, after = int(res.pred_before[0]), int(res.pred_after[0])
    delta = res.delta[0]
    amp = 127.0 / max(1e-12, float(np.abs(delta).max()))
    cols = st.columns(3)
    with cols[0]:
        view.show_image(inp.raw, f"original: {names[before]} "
                        f"({res.probs_before[0, before]:.1%})", 260)
    with cols[1]:
        view.show_image(adv.amplify(delta), f"perturbation x{amp:.0f} (grey = no change)", 260)
    with cols[2]:
        view.show_image(raw_adv, f"adversarial: {names[after]} ({res.probs_after[0, after]:.1%})",
                        260)
    verdict = "succeeded" if res.success[0] else "did not succeed"
    top, mean = adv.grey_levels(info, delta)
    st.markdown(f"The attack **{verdict}**: {names[before]} → **{names[after]}**; largest pixel "
                f"change {top:.1f} grey levels, mean {mean:.2f}.")
    a, b = st.columns(2)
    a.plotly_chart(widgets.topk_figure(info, res.probs_before[0], 5, inp.label, "Before: top 5"),
                   width="stretch", key=f"{key}_top_before")
    b.plotly_chart(widgets.topk_figure(info, res.probs_after[0], 5, inp.label, "After: top 5"),
                   width="stretch", key=f"{key}_top_after")
    if method:
        a.image(view.heat_overlay(inp.raw, _heat(info.key, info, inp.x, method)), width=260,
                caption=f"{view.method_name(method)} of {names[before]}, before")
        b.image(view.heat_overlay(raw_adv, _heat(info.key, info, x_adv, method)), width=260,
                caption=f"{view.method_name(method)} of {names[after]}, after")
    widgets.downloads(f"{key}_{info.model.name}", render.to_rgb(raw_adv), x_adv, key=key)


# ------------------------------------------------------------------------ FGSM
st.header("FGSM: one step along the gradient's sign")
st.caption("Goodfellow, Shlens, Szegedy 2015 (arXiv:1412.6572): every pixel moves by epsilon, up "
           "or down, whichever raises the loss of the predicted class.")
eps_f = st.slider("Epsilon (grey levels out of 255)", 0, 64, 8, key="adv_fgsm_eps")
show_attack(_attack(info.key, info, inp.x, "fgsm", eps_f / 255, None, 1, None), "fgsm")

# ------------------------------------------------------------------------ PGD
st.header("Targeted attack (PGD) towards a chosen class")
st.caption("Madry et al. 2018 (arXiv:1706.06083): many small signed steps that make the chosen "
           "class more likely, each kept within epsilon of the original pixels.")
probs = info.forward(inp.x[None])[0]
order = [int(i) for i in np.argsort(probs)[::-1]]
p1, p2, p3, p4 = st.columns(4)
target = p1.selectbox("Target class", order[1:] + order[:1], key="adv_pgd_target",
                      format_func=lambda i: f"{i}: {names[i]} ({probs[i]:.1%} now)")
eps_p = p2.slider("Epsilon (grey levels)", 1, 64, 16, key="adv_pgd_eps")
steps = p3.slider("Steps", 1, 200, 40 if small else 10, key="adv_pgd_steps")
size = p4.slider("Step size (grey levels, 0 = auto)", 0.0, 16.0, 0.0, 0.5, key="adv_pgd_step",
                 help="Auto = 2.5 x epsilon / steps (Madry et al.).")
pgd_params = (eps_p / 255, target, steps, size / 255 if size else None)
if small or st.button("Run the attack", key="adv_pgd_go", type="primary"):
    st.session_state["adv_pgd_done"] = (info.key, digest, pgd_params)
if st.session_state.get("adv_pgd_done") == (info.key, digest, pgd_params):
    show_attack(_attack(info.key, info, inp.x, "pgd", *pgd_params), "pgd")
else:
    st.caption(f"{steps} forward + backward passes of a {h}x{w} model: press the button.")

# ------------------------------------------------------------------------ patch
st.header("Adversarial patch")
st.caption("Brown et al. 2017 (arXiv:1712.09665): a small square, any colours, optimised over many "
           "images so that pasting it makes the model answer the target class. Here it stays at "
           "one place; its success rate is measured on images it was not optimised on.")
q1, q2, q3, q4, q5 = st.columns(5)
p_target = q1.selectbox("Target class", list(range(info.num_classes)), index=min(
    3, info.num_classes - 1), key="adv_patch_target", format_func=lambda i: f"{i}: {names[i]}")
p_size = q2.slider("Patch size (pixels)", 2, max(3, min(h, w) // 2), max(2, round(0.43 * h)),
                   key="adv_patch_size")
p_row = q3.slider("Row", 0, h - p_size, (h - p_size) // 2, key=f"adv_patch_row_{p_size}")
p_col = q4.slider("Column", 0, w - p_size, (w - p_size) // 2, key=f"adv_patch_col_{p_size}")
p_steps = q5.slider("Steps", 10, 500, 150 if small else 30, 10, key="adv_patch_steps")
n_train, n_test = (256, 300) if small else (16, 16)
patch_key = ("patch", info.key, p_target, p_size, p_row, p_col, p_steps, n_train, n_test)
if st.button("Optimise the patch", key="adv_patch_go", type="primary"):
    st.session_state["adv_patch_done"] = patch_key
if st.session_state.get("adv_patch_done") == patch_key:
    xs, ys, ds_name = view.sample_images(info.key, info, n_train + n_test, 0)
    try:
        pr = view.cached_with_progress(
            patch_key, lambda cb: adv.adversarial_patch(
                info, xs[:n_train], xs[n_train:], p_target, p_size, (p_row, p_col), p_steps,
                step_size=0.2, batch_size=32, test_labels=None if ys is None else ys[n_train:],
                progress=cb), f"Optimising the patch over {n_train} images...")
    except ValueError as exc:
        st.error(f"Could not optimise the patch: {exc}. Fix: choose a smaller patch or move it.")
        st.stop()
    m1, m2, m3 = st.columns(3)
    m1.metric("Success rate (held-out images)", f"{pr.success_rate:.0%}",
              delta=f"{pr.success_rate - pr.baseline_rate:+.0%} vs no patch")
    m2.metric("Held-out images", pr.n_test, help=f"from {ds_name}; images of the target class "
              "are left out")
    m3.metric("On the training images", f"{pr.train_success:.0%}")
    g1, g2 = st.columns([1, 2])
    with g1:
        view.show_image(info.deprocess(pr.patch), f"the patch ({p_size}x{p_size})", 200)
        fig = go.Figure(go.Scatter(y=pr.losses, mode="lines"))
        fig.update_layout(height=220, xaxis_title="step", yaxis_title="loss of the target",
                          margin=dict(l=10, r=10, t=10, b=40))
        st.plotly_chart(fig, width="stretch", key="adv_patch_loss")
    with g2:
        tiles = info.deprocess(pr.examples)
        preds = np.argmax(pr.example_probs, -1)
        st.image(render.upscale(render.grid(tiles, cols=4, pad=2), 480), width="stretch",
                 caption="Held-out images with the patch; predictions (row by row): "
                 + ", ".join(names[int(p)] for p in preds))
    widgets.downloads(f"patch_{info.model.name}_{p_target}", render.to_rgb(
        info.deprocess(pr.patch)), pr.patch, key="adv_patch")

# ------------------------------------------------------------------------ flip rates
st.header("How often does the prediction flip?")
st.caption("Untargeted FGSM and PGD against each image's own prediction, over a balanced sample "
           "of the dataset: the share of images whose predicted class changes, per epsilon.")
f1, f2, f3 = st.columns(3)
n_flip = f1.slider("Images", 10, 500, 100 if small else 10, 10, key="adv_flip_n")
attacks = f2.multiselect("Attacks", ["fgsm", "pgd"], ["fgsm", "pgd"], key="adv_flip_attacks")
pgd_steps = f3.slider("PGD steps", 1, 40, 10, key="adv_flip_steps")
levels = (0, 1, 2, 4, 8, 16, 32)
flip_key = ("flip", info.key, n_flip, tuple(attacks), pgd_steps)
if st.button("Compute the table", key="adv_flip_go", type="primary"):
    if not attacks:
        st.error("Choose at least one attack.")
    else:
        st.session_state["adv_flip_done"] = flip_key
if st.session_state.get("adv_flip_done") == flip_key:
    xs, ys, ds_name = view.sample_images(info.key, info, n_flip, 1)
    table = view.cached_with_progress(
        flip_key, lambda cb: adv.flip_rates(info, xs, ys, [v / 255 for v in levels], attacks,
                                            pgd_steps, progress=cb),
        f"Attacking {len(xs)} images at {len(levels)} epsilons...")
    shown = table.drop(columns=["epsilon"])
    st.dataframe(shown, hide_index=True, width="stretch", column_config={
        col: st.column_config.ProgressColumn(col, format="percent", min_value=0.0, max_value=1.0)
        for col in shown.columns if col != "grey levels"})
    fig = go.Figure([go.Scatter(x=table["grey levels"], y=table[f"{a} flipped"],
                                mode="lines+markers", name=a.upper()) for a in attacks])
    fig.update_layout(height=300, xaxis_title="epsilon (grey levels)",
                      yaxis=dict(title="share flipped", range=[0, 1], tickformat=".0%"),
                      margin=dict(l=10, r=10, t=10, b=40))
    st.plotly_chart(fig, width="stretch", key="adv_flip_fig")
    st.caption(f"{len(xs)} images from {ds_name}.")
