"""A report to hand out: one self-contained HTML file about one explained prediction.

:func:`explain_report` writes the input, the top-5, every method's map with its note, the
faithfulness table and curves, the sanity-check figure, the model card, the settings and the
link that reopens the view. Every figure is a PNG drawn here (Pillow and matplotlib's Agg
backend: no browser, no kaleido) and embedded as a ``data:`` URI, so the file opens offline,
prints, and can be mailed as it is. No script, no external style sheet, no web font.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
from collections.abc import Mapping, Sequence

import numpy as np

from vizcore import render

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:1.6em}.muted{color:#666;font-size:.9em}
.pred{display:grid;grid-template-columns:260px 1fr;gap:1em;align-items:start}
.maps{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:1em}
figure{margin:0;border:1px solid #e4e4e4;border-radius:6px;padding:.6em;break-inside:avoid}
figure img{width:100%;image-rendering:pixelated}figcaption{font-size:.85em;color:#444}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.3em .6em;
text-align:left;vertical-align:top}th{background:#f5f5f5}
.note{background:#eef5fc;border-left:4px solid #1f77b4;padding:.6em .9em}
code{word-break:break-all}
"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def img_tag(img: np.ndarray, alt: str, side: int = 256) -> str:
    """An <img> of a uint8 or float image, upscaled to ``side`` with hard pixels."""
    a = np.asarray(img)
    if a.dtype != np.uint8:
        a = (np.clip(a, 0, 1) * 255).astype(np.uint8)
    return (f'<img src="{data_uri(render.png_bytes(render.upscale(render.to_rgb(a), side)))}" '
            f'alt="{html.escape(alt)}">')


def _fig_tag(fig, alt: str) -> str:
    import matplotlib

    matplotlib.use("Agg", force=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return f'<img src="{data_uri(buf.getvalue())}" alt="{html.escape(alt)}">'


def topk_png(probs: np.ndarray, class_names: Sequence[str], k: int = 5,
             true_label: int | None = None) -> str:
    """Horizontal bars of the top-k probabilities (the true class green), as an <img>."""
    from matplotlib.figure import Figure

    order = np.argsort(probs)[::-1][:k][::-1]
    fig = Figure(figsize=(5, 0.45 * len(order) + 0.6))
    ax = fig.subplots()
    ax.barh([f"{class_names[i]} ({int(i)})" for i in order], [float(probs[i]) for i in order],
            color=["#2ca02c" if int(i) == true_label else "#1f77b4" for i in order])
    for y, i in enumerate(order):
        ax.text(min(float(probs[i]) + 0.01, 0.9), y, f"{probs[i]:.1%}", va="center", fontsize=9)
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability")
    ax.spines[["top", "right"]].set_visible(False)
    return _fig_tag(fig, "top-5 probabilities")


def curves_png(curves: Mapping[str, object], names: Mapping[str, str]) -> str:
    """Deletion and insertion curves of every method, as an <img>."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.2))
    axes = fig.subplots(1, 2, sharey=True)
    for key, c in curves.items():
        axes[0].plot(c.fractions, c.deletion, label=names.get(key, key))
        axes[1].plot(c.fractions, c.insertion, label=names.get(key, key))
    for ax, title in zip(axes, ("deletion (lower area = more faithful)",
                                "insertion (higher area = more faithful)")):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("fraction of pixels")
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].set_ylabel("class probability")
    axes[1].legend(fontsize=8)
    return _fig_tag(fig, "deletion and insertion curves")


def sanity_png(res, names: Mapping[str, str]) -> str:
    """The randomisation check: each method's maps as layers are randomised (rows), and the
    rank correlation with the original map, as one <img>."""
    from matplotlib.figure import Figure

    steps = ["original", *res.layers]
    rows = len(res.methods)
    fig = Figure(figsize=(1.1 * len(steps) + 3.2, 1.15 * rows + 0.9))
    grid = fig.add_gridspec(rows, len(steps) + 3)
    for r, key in enumerate(res.methods):
        for c, step in enumerate(steps):
            ax = fig.add_subplot(grid[r, c])
            ax.imshow(res.maps[(step, key)], cmap="jet")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(step if c == 0 else f"+{step}", fontsize=6, rotation=30)
            if c == 0:
                ax.set_ylabel(names.get(key, key), fontsize=7)
    ax = fig.add_subplot(grid[:, len(steps):])
    for key in res.methods:
        ax.plot(range(1, len(res.layers) + 1),
                [res.spearman.get((layer, key), np.nan) for layer in res.layers], marker="o",
                label=names.get(key, key))
    ax.set_xlabel("layers randomised (from the top)", fontsize=8)
    ax.set_ylabel("Spearman rank correlation with the original", fontsize=8)
    ax.axhline(0, color="#999", lw=0.8)
    ax.legend(fontsize=7)
    return _fig_tag(fig, "model randomisation sanity check")


def table(rows: Sequence[Sequence], header: Sequence[str] | None = None) -> str:
    head = "" if header is None else "<tr>" + "".join(
        f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in rows)
    return f"<table>{head}{body}</table>"


def explain_report(*, title: str, model_label: str, card_rows: Sequence[tuple[str, str]],
                   image: np.ndarray, image_title: str, probs: np.ndarray,
                   class_names: Sequence[str], true_label: int | None, target: int,
                   maps: Mapping[str, object], names: Mapping[str, str],
                   notes: Mapping[str, str], curves: Mapping[str, object] | None = None,
                   sanity=None, settings: Mapping[str, object] | None = None,
                   link: str = "", missing: Sequence[str] = ()) -> str:
    """The report as one HTML string.

    Args:
        maps: {method key: Attribution/Explanation (``heatmap`` in 0..1)}.
        names, notes: Each method's display name and its plain-language note.
        curves: {method key: DeletionInsertion} or None when not computed.
        sanity: A ``RandomisationResult`` or None.
        settings: What produced the maps (methods' parameters, layer, ...).
        link: The address that reopens the view.
        missing: Sentences saying what the report leaves out and why.
    """
    e = html.escape
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    out = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{e(title)}"
           f"</title><style>{_CSS}</style></head><body>",
           f"<h1>{e(title)}</h1><p class='muted'>vizcore report, {when}. Model: "
           f"{e(model_label)}. Input: {e(image_title)}.</p>",
           "<p class='note'>An attribution map is a hypothesis about what the model used, not "
           "proof: the faithfulness scores and the sanity check below test how much each map "
           "depends on the model.</p>"]
    pred = int(np.argmax(probs))
    verdict = "" if true_label is None else (
        " (correct)" if pred == true_label else f" (wrong: the image is {class_names[true_label]})")
    out.append("<h2>Input and prediction</h2><div class='pred'>"
               f"<figure>{img_tag(image, 'input image')}<figcaption>{e(image_title)}"
               f"</figcaption></figure><figure>{topk_png(probs, class_names, 5, true_label)}"
               f"<figcaption>Predicted <b>{e(class_names[pred])}</b> ({probs[pred]:.1%})"
               f"{e(verdict)}. Explained class: <b>{e(class_names[target])}</b>."
               "</figcaption></figure></div>")
    out.append("<h2>Maps</h2><div class='maps'>")
    for key, res in maps.items():
        over = render.overlay(render.upscale(render.to_rgb(image), 224), res.heatmap, 0.5)
        out.append(f"<figure>{img_tag(over, names.get(key, key), 224)}<figcaption><b>"
                   f"{e(names.get(key, key))}</b>. {e(notes.get(key, ''))}</figcaption></figure>")
    out.append("</div>")
    out.append("<h2>How faithful is each map?</h2>")
    if curves:
        rows = sorted(((names.get(k, k), f"{c.deletion_auc:.3f}", f"{c.insertion_auc:.3f}",
                        f"{c.insertion_auc - c.deletion_auc:+.3f}") for k, c in curves.items()),
                      key=lambda r: -float(r[3]))
        out.append("<p>Deletion removes the pixels a map ranks highest first: a faithful map "
                   "makes the probability fall fast (low area). Insertion adds them: it should "
                   "rise fast (high area). Petsiuk et al. 2018.</p>")
        out.append(table(rows, ["method", "deletion AUC (lower is better)",
                                "insertion AUC (higher is better)", "insertion - deletion"]))
        out.append(f"<figure>{curves_png(curves, names)}</figure>")
    else:
        out.append("<p class='muted'>Not computed for this report.</p>")
    out.append("<h2>Sanity check: does the map depend on the model?</h2>")
    if sanity is not None:
        out.append("<p>The network's weights are randomised layer by layer from the output down "
                   "(Adebayo et al. 2018). A map that explains the model changes a lot (the "
                   "correlation falls towards 0); a map that stays the same shows the image, "
                   "not what the network learned.</p>")
        out.append(f"<figure>{sanity_png(sanity, names)}</figure>")
    else:
        out.append("<p class='muted'>Not computed for this report.</p>")
    for sentence in missing:
        out.append(f"<p class='muted'>{e(sentence)}</p>")
    out.append("<h2>The model</h2>" + table(card_rows))
    if settings:
        out.append("<h2>Settings</h2>" + table([(k, v) for k, v in settings.items()]))
    if link:
        out.append(f"<h2>Reopen this view</h2><p><code>{e(link)}</code></p><p class='muted'>"
                   "The link opens the app at this model, image and settings (an uploaded "
                   "model or image cannot travel in a link).</p>")
    out.append("</body></html>")
    return "\n".join(out)
