"""What the "What a unit wants to see" page shows: the optimised input and its curve, the dataset
patches beside it, and the filter atlas (the computations are cached in :mod:`ui.cache`)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from ui import cache, figures, widgets
from vizcore import patches, render


def tiles_image(tiles: np.ndarray, cols: int, tile_side: int = 96) -> np.ndarray:
    """uint8 tiles (n, h, w, C) enlarged and laid out in a grid."""
    big = np.stack([render.upscale(render.to_rgb(t), tile_side) for t in tiles])
    side = max(b.shape[0] for b in big)
    big = np.stack([b if b.shape[0] == side else render.upscale(b, side) for b in big])
    return render.grid(big, cols=cols, pad=3, pad_value=128)


def show_result(info, layer: str, unit: int, res, params, what: str) -> None:
    """The optimisation as an animation beside its activation curve, and downloads."""
    gain = res.final_value[0] - res.start_value[0]
    st.caption(f"{what}: activation {res.start_value[0]:.4g} at the random start → "
               f"**{res.final_value[0]:.4g}** after {params.steps} steps (+{gain:.4g}), "
               f"{res.seconds:.1f} s.")
    left, right = st.columns([1, 1])
    with left:
        st.plotly_chart(figures.actmax_animation_figure(res.frames[:, 0], res.frame_steps,
                                                        "The input during optimisation"),
                        width="stretch", key="uv_anim")
    with right:
        label = "pre-activation" if res.kind == "dense" and params.linear else "activation"
        st.plotly_chart(figures.actmax_curve_figure(res.values[:, 0], float(res.start_value[0]),
                                                    float(res.final_value[0]), label),
                        width="stretch", key="uv_curve")
        name = f"{info.model.name}_{layer}_{unit}_actmax"
        st.download_button("Download the animation (GIF)",
                           cache.gif(res.frames[:, 0], res.frame_steps), f"{name}.gif",
                           "image/gif", key="uv_dl_gif", icon=":material/download:")
        widgets.downloads(name, render.upscale(res.images_uint8[0], 224), res.images[0],
                          key="uv_result")


def show_patches(info, layer: str, unit: int, k: int, top, peaks, source: str, res,
                 big: bool) -> None:
    """The synthetic image beside the dataset crops that excite ``unit`` most, and where in
    their images the crops lie."""
    rf = patches.receptive_field(info.model, layer)
    st.caption(f"{source}. A `{layer}` unit sees {rf.size[0]}x{rf.size[1]} input pixels "
               f"(receptive field), neighbouring units are {rf.jump[0]} pixels apart. "
               f"Each image counts once, at its strongest position; the pass took "
               f"{peaks.seconds:.1f} s and is cached, so other channels are instant.")
    cols = min(k, 9 if not big else 4)
    s_col, p_col = st.columns([1, 3])
    with s_col:
        st.markdown("**Synthetic (above)**")
        if res is not None:
            st.image(render.upscale(res.images_uint8[0], 224), width="stretch",
                     caption=f"activation maximization of channel {unit}")
        else:
            st.caption("Run the optimisation above to compare.")
    with p_col:
        st.markdown("**Real: receptive-field crops, strongest first**")
        st.image(tiles_image(top.crops, cols), width="stretch",
                 caption=" · ".join(f"#{i} ({v:.3g})" for i, v in zip(top.indices, top.values)))
        st.markdown("**Where in the image**")
        st.image(tiles_image(top.boxed, cols), width="stretch")
    widgets.downloads(f"{info.model.name}_{layer}_{unit}_patches",
                      tiles_image(top.crops, cols), top.crops, key="uv_patches")


def show_atlas(info, rows, n_filters: int, big: bool) -> None:
    """One row of maximising inputs per atlas layer, and a download of all of them."""
    st.caption("Each tile is the input that maximises one filter (same settings as above). "
               "Early filters respond to edges and colours, deeper ones to textures and "
               "parts, because they combine more of the image.")
    for row in rows:
        rf = patches.receptive_field(info.model, row.layer)
        st.markdown(f"**`{row.layer}`**: filters {row.units[0]}-{row.units[-1]}, receptive "
                    f"field {rf.size[0]}x{rf.size[1]} px")
        st.image(tiles_image(row.images, len(row.images), 96 if not big else 160),
                 width="stretch")
    tiles = np.concatenate([r.images for r in rows])
    widgets.downloads(f"{info.model.name}_filter_atlas", tiles_image(tiles, n_filters), tiles,
                      key="uv_atlas")


def link_fields(info, layers: list[str], default_layer: str, d) -> list:
    """The page's controls as link fields (the unit's, which depends on the layer, apart)."""
    from ui import links

    mk = info.key
    return [links.choice_field("layer", "uv_layer", default_layer, layers),
            links.int_field("steps", f"uv_steps_{mk}", d.steps, 1, 2000),
            links.float_field("lr", f"uv_lr_{mk}", d.learning_rate, 1e-5, 100.0),
            links.float_field("tv", f"uv_tv_{mk}", d.tv_weight, 0.0, 100.0),
            links.float_field("norm", f"uv_norm_{mk}", d.norm_weight, 0.0, 100.0),
            links.int_field("jitter", f"uv_jitter_{mk}", d.jitter, 0, 64),
            links.int_field("seed", f"uv_seed_{mk}", d.seed, 0, 10_000),
            links.int_field("k", "uv_k", 9, 3, 16)]


def unit_field(info, layer: str):
    from ui import links
    from vizcore import actmax

    return links.int_field("unit", f"uv_unit_{layer}", 0, 0, actmax.n_units(info.model, layer) - 1)
