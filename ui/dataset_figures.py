"""Tables and plotly figures of the Dataset results page, built from a batch job's output
(:class:`vizcore.batch.Results`). No Streamlit here: everything can be built and checked in a
test without running the page.

Every point of the embedding scatter carries ``customdata = [position, id, true name,
predicted name, confidence]``, like the Embeddings page's maps, so that
:func:`ui.selection.point_from_selection` reads the image's position back from a selection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.embeddings import GL_ABOVE, class_colours
from ui.figures import memo
from vizcore.batch import analysis

#: The ways the page sorts images (key -> label).
SORTS = {"faithfulness": "Faithfulness of a method's map (worst first)",
         "confidence": "Confidence (least sure first)",
         "wrong": "Confidently wrong predictions",
         "disagreement": "Disagreement between the methods (most first)",
         "wrong_reason": "Right for the wrong reason"}
#: The ways the embedding is coloured (key -> label).
COLOURS = {"class": "True class", "correct": "Right or wrong",
           "faithfulness": "Faithfulness of a method's map"}
#: Insertion AUC columns -> how the inserted image starts.
INSERTION_START = {"insertion_auc_grey": "grey", "insertion_auc_blur": "blurred"}
#: At most this many points go into the embedding figure (a seeded random subset).
MAX_POINTS = 20_000
CORRECT, WRONG, UNSCORED = "#2ca02c", "#d62728", "#b0b0b0"
#: Colours of a per-image score on the map: no white in it, so no value looks unscored.
FAITHFUL_SCALE = "Viridis"


def ok_rows(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """The rows of images that were read (``error`` empty), or None."""
    if frame is None or "error" not in frame:
        return frame
    return frame[frame["error"] == ""]


def catalogue(rows: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per image position found in any job (position, id, label, predicted, confidence,
    top5, top5_p where written), sorted by position."""
    cols = ["position", "id", "label", "predicted", "confidence", "top5", "top5_p"]
    parts = []
    for frame in rows.values():
        frame = ok_rows(frame)
        if frame is not None and len(frame) and "predicted" in frame:
            parts.append(frame[[c for c in cols if c in frame]])
    if not parts:
        return pd.DataFrame({c: [] for c in cols})
    out = pd.concat(parts, ignore_index=True).drop_duplicates("position")
    out = out.dropna(subset=["predicted"])
    out["predicted"] = out["predicted"].astype(int)
    out["label"] = out["label"].astype(int)
    return out.sort_values("position").reset_index(drop=True)


def name_of(names: Sequence[str], index: int) -> str:
    """A class name, or ``"class i"`` (and ``"unknown"`` for -1)."""
    index = int(index)
    if index < 0:
        return "unknown"
    return names[index] if index < len(names) else f"class {index}"


# --------------------------------------------------------------------------- the ranking


def insertion_sentence(frame: pd.DataFrame, column: str) -> str:
    """Which insertion start the ranking uses and why, in one sentence."""
    start = INSERTION_START.get(column, column)
    seps = {c: analysis.separation(frame, c) for c in INSERTION_START if c in frame}
    other = [c for c in seps if c != column]
    why = (f" ({seps[column]:.2f} against {seps[other[0]]:.2f} for the "
           f"{INSERTION_START[other[0]]} start: the spread of the method means over the spread "
           "within each method)" if other else "")
    return (f"Insertion starts from a **{start}** image: of the two starts, it tells the methods "
            f"apart more clearly here{why}.")


def _panels(ranking: pd.DataFrame, column: str) -> list[tuple[str, str, str]]:
    """(metric column, title, colour) of the ranking's panels: insertion minus deletion (what
    the ranking sorts by, when the library computed it), deletion, insertion."""
    start = INSERTION_START.get(column, column)
    panels = [("deletion_auc", "Deletion AUC (lower = more faithful)", "#d62728"),
              (column, f"Insertion AUC, {start} start (higher = more faithful)", "#1f77b4")]
    if "faithfulness" in ranking:
        panels.insert(0, ("faithfulness", "Insertion - deletion (higher = more faithful)",
                          "#2ca02c"))
    return panels


def order_sentence(ranking: pd.DataFrame, column: str) -> str:
    """How the table is ordered, and whether the two curves agree with that order."""
    start = INSERTION_START.get(column, column)
    by = ("each image's insertion minus deletion AUC" if "faithfulness" in ranking else
          f"the insertion AUC ({start} start)")
    text = f"The table is ordered by {by}, best first"
    if len(ranking) < 2:
        return text + "."
    order = ranking["method"].tolist()
    by_deletion = ranking.sort_values("deletion_auc")["method"].tolist()
    by_insertion = ranking.sort_values(column, ascending=False)["method"].tolist()
    if by_deletion == by_insertion == order:
        return text + "; deletion and insertion alone rank the methods in the same order."
    return (text + "; deletion and insertion alone order them differently, so neither curve "
            "by itself settles which map is the most faithful.")


def ranking_table(ranking: pd.DataFrame, column: str, names: Mapping[str, str]) -> pd.DataFrame:
    """The ranking (:func:`vizcore.batch.analysis.ranking`) for reading: each measure as
    "mean [95% interval]", its header arrowed by the better direction (↑ higher, ↓ lower)."""
    def fmt(r, c):
        return f"{r[c]:.3f} [{r[c + '_lo']:.3f}, {r[c + '_hi']:.3f}]"

    table = {"Method": [names.get(m, m) for m in ranking["method"]],
             "Images": ranking["n"].astype(int).tolist()}
    for metric, title, _ in _panels(ranking, column):
        head, _, tail = title.partition(" (")
        arrow = "↑" if tail.startswith("higher") else "↓"
        table[f"{head} {arrow}"] = [fmt(r, metric) for _, r in ranking.iterrows()]
    return pd.DataFrame(table)


def ranking_csv(ranking: pd.DataFrame, column: str) -> bytes:
    """The ranking as CSV: numbers, not text, and the insertion start named."""
    out = ranking.copy()
    out.insert(2, "insertion_start", INSERTION_START.get(column, column))
    return out.to_csv(index=False, float_format="%.5g").encode()


@memo
def ranking_figure(ranking: pd.DataFrame, column: str, names: Mapping[str, str],
                   height: int | None = None) -> go.Figure:
    """Mean per method with its 95% interval, one panel per measure (insertion minus deletion
    when computed, deletion, insertion); methods in the ranking's order, best on top."""
    panels = _panels(ranking, column)
    fig = make_subplots(1, len(panels), shared_yaxes=True, horizontal_spacing=0.05,
                        subplot_titles=[t.replace(" (", "<br>(") for _, t, _ in panels])
    labels = [names.get(m, m) for m in ranking["method"]]
    for col, (metric, _, colour) in enumerate(panels, start=1):
        mean = ranking[metric].to_numpy(float)
        fig.add_trace(go.Scatter(
            x=mean, y=labels, mode="markers", marker=dict(size=11, color=colour),
            error_x=dict(type="data", symmetric=False, thickness=2,
                         array=ranking[f"{metric}_hi"].to_numpy(float) - mean,
                         arrayminus=mean - ranking[f"{metric}_lo"].to_numpy(float)),
            customdata=np.stack([ranking[f"{metric}_lo"], ranking[f"{metric}_hi"],
                                 ranking["n"]], axis=1),
            hovertemplate="%{y}: %{x:.3f} [%{customdata[0]:.3f}, %{customdata[1]:.3f}], "
                          "%{customdata[2]} images<extra></extra>", showlegend=False),
            row=1, col=col)
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title="mean (95% interval)", showgrid=True, gridcolor="#eee")
    fig.update_layout(height=height or 150 + 42 * len(ranking),
                      margin=dict(l=10, r=10, t=60, b=40), plot_bgcolor="white")
    fig.update_annotations(font_size=12)
    return fig


def sanity_table(sanity: dict, names: Mapping[str, str]) -> pd.DataFrame:
    """The score summary's randomisation check: one row per randomised layer (from the output
    down), one column per method, the mean Spearman correlation with the original map."""
    table = pd.DataFrame({names.get(m, m): vals for m, vals in sanity["spearman"].items()})
    table.insert(0, "Randomised down to layer", sanity["layers"])
    return table


def per_class_table(frame: pd.DataFrame, column: str, class_names: Sequence[str],
                    names: Mapping[str, str]) -> pd.DataFrame:
    """Mean ``column`` per true class (rows) and method (columns, by name)."""
    table = analysis.per_class(frame, column, list(class_names))
    return table.rename(columns=lambda m: names.get(m, m))


# --------------------------------------------------------------------------- sorting images


def sort_images(how: str, images: pd.DataFrame, scores: pd.DataFrame | None,
                explains: pd.DataFrame | None, method: str | None, same_classes: bool,
                k: int = 12) -> tuple[pd.DataFrame, str]:
    """The first ``k`` images in the order ``how`` (a key of :data:`SORTS`), and a message when
    there are none (why, in words a student can follow).

    Returns:
        ``(table, message)``: ``table`` has the image columns plus ``value`` (the sort value)
        and ``text`` (that value in words); ``message`` is "" when the table is not empty.
    """
    empty = images.iloc[:0].assign(value=[], text=[])
    per_method = scores if scores is not None and len(scores) else explains
    if how == "faithfulness":
        if scores is None or not len(scores):
            return empty, ("Faithfulness needs a score job in this folder (deletion and "
                           "insertion AUCs); this folder has none.")
        ins = analysis.insertion_column(scores)
        g = scores[scores["method"] == method]
        value = g[ins] - g["deletion_auc"]
        t = g.assign(value=value).dropna(subset=["value"]).sort_values("value")
        start = INSERTION_START.get(ins, ins)
        t = t.assign(text=[f"insertion ({start}) - deletion = {v:+.2f}" for v in t["value"]])
    elif how == "confidence":
        t = images.assign(value=images["confidence"]).sort_values("value")
        t = t.assign(text=[f"p = {v:.0%}" for v in t["value"]])
    elif how == "wrong":
        if not same_classes:
            return empty, ("The dataset's classes are not the model's, so a prediction cannot "
                           "be called right or wrong here.")
        t = images[(images["label"] >= 0) & (images["label"] != images["predicted"])]
        t = t.assign(value=t["confidence"]).sort_values("value", ascending=False)
        t = t.assign(text=[f"wrong, p = {v:.0%}" for v in t["value"]])
        if t.empty:
            return empty, "The model got every labelled image right: nothing to show."
    elif how == "disagreement":
        if per_method is None or not len(per_method):
            return empty, "Disagreement needs an explain or score job in this folder."
        t = per_method.drop_duplicates("position").dropna(subset=["disagreement"])
        if t.empty:
            return empty, ("Disagreement needs at least two methods; the jobs here ran one.")
        t = t.assign(value=t["disagreement"]).sort_values("value", ascending=False)
        t = t.assign(text=[f"disagreement {v:.2f}" for v in t["value"]])
    elif how == "wrong_reason":
        if per_method is None or not len(per_method):
            return empty, "This needs an explain or score job in this folder."
        g = per_method[per_method["method"] == method]
        if "outside" not in g or g["outside"].isna().all():
            return empty, ("No object mask for these images: the share of a map outside the "
                           "object is measured only on bright-on-black datasets (Fashion-MNIST, "
                           "MNIST, digits), where every dark pixel is background.")
        if not same_classes:
            return empty, ("The dataset's classes are not the model's, so no prediction can be "
                           "called right here.")
        t = analysis.wrong_reason(g)
        if t.empty:
            return empty, (f"No candidate: no correct prediction has more than "
                           f"{analysis.WRONG_REASON_OUTSIDE:.0%} of its map outside the object "
                           "for this method.")
        t = t.assign(value=t["outside"], text=[f"{v:.0%} of the map outside the object"
                                               for v in t["outside"]])
    else:
        raise KeyError(f"unknown sort {how!r}; choose one of {', '.join(SORTS)}")
    if t.empty:
        return empty, "No image to sort here."
    keep = [c for c in ("position", "id", "label", "predicted", "confidence") if c in t]
    return t[[*keep, "value", "text"]].head(k).reset_index(drop=True), ""


def image_scores(scores: pd.DataFrame | None, explains: pd.DataFrame | None, position: int,
                 names: Mapping[str, str]) -> pd.DataFrame | None:
    """One image's numbers per method: its deletion AUC and the insertion AUC the ranking uses
    (score job), and the share of its map outside the object; None when no job scored or
    explained it."""
    frame = scores if scores is not None and (scores["position"] == position).any() else explains
    if frame is None:
        return None
    g = frame[frame["position"] == position]
    if g.empty:
        return None
    out = pd.DataFrame({"Method": [names.get(m, m) for m in g["method"]]})
    ins = analysis.insertion_column(scores) if frame is scores else None
    for col, title in (("deletion_auc", "Deletion AUC"),
                       (ins, f"Insertion AUC ({INSERTION_START.get(ins, '')} start)"),
                       ("outside", "Outside the object")):
        if col in g and g[col].notna().any():
            out[title] = g[col].to_numpy(float)
    return out


# --------------------------------------------------------------------------- the embedding


def subsample(n: int, limit: int = MAX_POINTS, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``limit`` of ``n`` points (a seeded random subset)."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def faithfulness_of(scores: pd.DataFrame | None, method: str) -> pd.Series:
    """Insertion minus deletion AUC of ``method``'s map, by image position."""
    if scores is None or not len(scores):
        return pd.Series(dtype=float)
    ins = analysis.insertion_column(scores)
    g = scores[scores["method"] == method]
    return pd.Series((g[ins] - g["deletion_auc"]).to_numpy(float), index=g["position"])


@memo
def embedding_figure(xy: np.ndarray, positions: np.ndarray, ids: Sequence[str],
                     labels: np.ndarray, preds: np.ndarray, conf: np.ndarray,
                     label_names: Sequence[str], class_names: Sequence[str], colour: str,
                     values: np.ndarray | None = None, value_title: str = "",
                     selected: int | None = None, height: int = 560) -> go.Figure:
    """The whole set's 2-D map.

    Args:
        xy: (N, 2) coordinates; positions: the images' positions in the source (customdata[0]).
        ids, labels, preds, conf: Each point's id, true class (into ``label_names``, -1 =
            unknown), predicted class (into ``class_names``) and confidence.
        colour: ``"class"``, ``"correct"`` or ``"faithfulness"`` (then ``values``: one number
            per point, NaN = not scored, drawn grey).
        selected: The position to ring, or None.
    """
    xy = np.asarray(xy, float)
    n = len(xy)
    Trace = go.Scattergl if n > GL_ABOVE else go.Scatter
    labels, preds = np.asarray(labels, int), np.asarray(preds, int)
    positions = np.asarray(positions, int)
    cd = np.empty((n, 5), object)
    cd[:, 0] = positions
    cd[:, 1] = list(ids)
    cd[:, 2] = [name_of(label_names, c) for c in labels]
    cd[:, 3] = [name_of(class_names, p) for p in preds]
    cd[:, 4] = np.asarray(conf, float)
    hover = ("#%{customdata[1]} (position %{customdata[0]}) · true %{customdata[2]}<br>"
             "predicted %{customdata[3]} (%{customdata[4]:.0%})")
    size = 6 if n <= 5000 else 4
    fig = go.Figure()

    def add(mask, name, **marker):
        if mask.any():
            fig.add_trace(Trace(x=xy[mask, 0], y=xy[mask, 1], mode="markers", name=name,
                                customdata=cd[mask], hovertemplate=hover + "<extra></extra>",
                                marker=dict(size=size, opacity=0.85, line=dict(width=0),
                                            **marker)))

    if colour == "class":
        palette = class_colours(max(1, len(label_names)))
        for c in sorted(set(labels.tolist())):
            add(labels == c, f"{c}: {name_of(label_names, c)}" if c >= 0 else "no label",
                color=palette[c % len(palette)] if c >= 0 else UNSCORED)
    elif colour == "correct":
        known = labels >= 0
        add(known & (labels == preds), "right", color=CORRECT)
        add(known & (labels != preds), "wrong", color=WRONG)
        add(~known, "no label", color=UNSCORED)
    else:
        v = np.asarray(values, float) if values is not None else np.full(n, np.nan)
        scored = np.isfinite(v)
        if (~scored).any():  # small and faint, under the scored ones
            fig.add_trace(Trace(x=xy[~scored, 0], y=xy[~scored, 1], mode="markers",
                                name="not scored", customdata=cd[~scored],
                                hovertemplate=hover + "<br>not scored<extra></extra>",
                                marker=dict(size=max(3, size - 2), color=UNSCORED, opacity=0.6,
                                            line=dict(width=0))))
        if scored.any():
            fig.add_trace(Trace(
                x=xy[scored, 0], y=xy[scored, 1], mode="markers", name=value_title,
                customdata=np.column_stack([cd[scored], v[scored]]),
                hovertemplate=hover + "<br>" + value_title + ": %{customdata[5]:+.2f}"
                "<extra></extra>",
                marker=dict(size=size + 1, color=v[scored], colorscale=FAITHFUL_SCALE,
                            opacity=0.95, line=dict(width=0),
                            colorbar=dict(title=dict(text=value_title, side="right"),
                                          thickness=12, len=0.8))))
    if selected is not None and (positions == selected).any():
        i = int(np.flatnonzero(positions == selected)[0])
        fig.add_trace(go.Scatter(
            x=[xy[i, 0]], y=[xy[i, 1]], mode="markers", name="selected",
            customdata=[cd[i].tolist()], hovertemplate="selected #%{customdata[1]}<extra></extra>",
            marker=dict(size=22, color="black", symbol="circle-open", line=dict(width=3))))
    fig.update_xaxes(showticklabels=False, zeroline=False, showgrid=False)
    fig.update_yaxes(showticklabels=False, zeroline=False, showgrid=False)
    fig.update_layout(height=height, clickmode="event+select", dragmode="pan",
                      legend=dict(orientation="h", y=-0.02, yanchor="top", font=dict(size=11)),
                      margin=dict(l=10, r=10, t=10, b=10), plot_bgcolor="white")
    return fig


def top5_probs(row, num_classes: int) -> np.ndarray | None:
    """A probability vector holding an image's written top 5 (zeros elsewhere), for the
    top-k bars; None when the row has none."""
    top, p = row.get("top5"), row.get("top5_p")
    if top is None or p is None:
        return None
    top, p = np.asarray(top, int), np.asarray(p, float)
    probs = np.zeros(max(num_classes, int(top.max(initial=0)) + 1), np.float64)
    probs[top] = p
    return probs
