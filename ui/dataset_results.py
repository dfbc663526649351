"""The Dataset results page's pieces: opening a batch job's output folder, running a small job
from the page, and showing the method ranking, sorted images, the whole set's embedding and one
image with its maps. Tables and figures are built in :mod:`ui.dataset_figures`.

A small job runs the three kinds (explain, score, embed) in this process (``executor="local"``:
a hosted Streamlit has no Ray) into ``<store>/batch/<hash of the settings and the model>``, so
every session asking for the same settings gets the same folder, computed once: a complete
folder is opened at once; concurrent sessions share one run (single flight); an interrupted run
resumes from the blocks it wrote. The run waits for a slot of the admission queue like any heavy
job, under a progress bar with a Stop button.
"""

from __future__ import annotations

import functools
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from ui import cache, figures, jobs, links
from ui import dataset_figures as dfig
from ui.cache import SharedResults
from ui.selection import point_from_selection
from vizcore import batch, data, models, store
from vizcore.batch.results import find_jobs
from vizcore.batch.work import KINDS
from vizcore.explain import REGISTRY

# session keys
DIR, PICK, POS, RUN, OPEN_NEXT, SIG = ("dr_dir", "dr_found", "dr_pos", "dr_run", "dr_open_next",
                                       "dr_sig")
SORT, METHOD, PROJ, COLOUR = "dr_sort", "dr_method", "dr_proj", "dr_colour"

#: The small jobs' datasets (``--data`` spec -> label).
DATASETS = {"fashion-mnist:test": "Fashion-MNIST test set", "digits": "scikit-learn digits"}
MAX_IMAGES, MIN_IMAGES, DEFAULT_IMAGES = 3000, 20, 500
DEFAULT_METHODS = ("gradcam", "saliency", "smoothgrad")
#: Images per block of a small job: the progress bar moves (and Stop acts) once per block.
BLOCK = 64
#: Images of the small jobs' model-randomisation check.
SANITY = 4
#: Share of a small job's time each kind takes (for one progress bar over the three).
WEIGHTS = {"explain": 0.15, "score": 0.7, "embed": 0.15}
VERBS = {"explain": "Explaining", "score": "Scoring", "embed": "Embedding"}
AFTER = {"explain": "", "score": "; now the summary and the sanity check",
         "embed": "; now the t-SNE map"}
PROJECTIONS = {"tsne": "t-SNE", "umap": "UMAP"}

#: Small jobs in progress or done, by folder (one run per folder for the whole server).
_JOBS = SharedResults(8)


def method_name(key: str) -> str:
    return REGISTRY[key].name if key in REGISTRY else key


# --------------------------------------------------------------------------- folders


def batch_root() -> Path:
    """Where the page's small jobs go: ``<store>/batch``, or a temporary folder when the
    machine's result store is off."""
    base = store.store_dir()
    return base / "batch" if base is not None else Path(tempfile.gettempdir()) / "vizcore-batch"


def _manifests(folder: Path) -> dict[str, dict]:
    out = {}
    for kind, path in find_jobs(folder).items():
        try:
            out[kind] = json.loads((path / "manifest.json").read_text())
        except (OSError, ValueError):
            continue
    return out


def describe(manifests: dict[str, dict]) -> str:
    """One line about a folder's jobs: data, images, model, methods, date (and "unfinished"
    when a job there is not complete)."""
    m = next(iter(manifests.values()))
    job = m["job"]
    methods = next((x["job"]["methods"] for x in manifests.values() if x["job"]["methods"]), [])
    n = max(x["source"].get("images", 0) for x in manifests.values())
    return (f"{job['data']} · {n:,} images · {Path(job['model']).name}"
            + (f" · {', '.join(methods)}" if methods else "")
            + f" · {'+'.join(k for k in KINDS if k in manifests)} · {m.get('created', '')}"
            + ("" if finished(manifests) else " · unfinished"))


def finished(manifests: dict[str, dict]) -> bool:
    return all(m.get("status") == "complete" for m in manifests.values())


def found_folders(limit: int = 40) -> dict[str, str]:
    """Output folders under :func:`batch_root`, newest first (finished ones before unfinished
    ones): path -> description."""
    root = batch_root()
    if not root.is_dir():
        return {}
    dirs = sorted((d for d in root.iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime,
                  reverse=True)
    done, unfinished = {}, {}
    for d in dirs[:limit]:
        ms = _manifests(d)
        if ms:
            (done if finished(ms) else unfinished)[str(d)] = describe(ms)
    return {**done, **unfinished}


def link_fields() -> list:
    """The page's settings as link fields (``dir`` is always written: the link names the
    folder)."""
    return [links.Field("dir", DIR, "str", ""),
            links.choice_field("sort", SORT, "faithfulness", list(dfig.SORTS)),
            links.Field("method", METHOD, "str", None),
            links.choice_field("proj", PROJ, "tsne", list(PROJECTIONS)),
            links.choice_field("colour", COLOUR, "class", list(dfig.COLOURS)),
            links.Field("pos", POS, "int", -1, low=0, high=10**9)]


def prepare_folder_widgets(found: dict[str, str]) -> None:
    """Before the folder widgets are drawn: a finished job's folder, else the newest one found
    when nothing is chosen yet; the picker shows the typed folder when it is in its list."""
    ss = st.session_state
    if OPEN_NEXT in ss:
        ss[DIR] = ss.pop(OPEN_NEXT)
    if not ss.get(DIR) and found:
        ss[DIR] = next(iter(found))
    ss[PICK] = ss.get(DIR) if ss.get(DIR) in found else None


def pick_folder() -> None:
    """The picker's callback: open the folder picked."""
    if st.session_state.get(PICK):
        st.session_state[DIR] = st.session_state[PICK]


# --------------------------------------------------------------------------- reading results


@dataclass
class View:
    """What the page shows of one output folder."""

    res: batch.Results
    images: pd.DataFrame  # one row per image position, from any job
    scores: pd.DataFrame | None
    explains: pd.DataFrame | None
    methods: list[str]
    label_names: list[str]
    class_names: list[str]
    same_classes: bool
    model_spec: str
    data_spec: str
    limit: int | None
    names: dict[str, str]

    @property
    def max_position(self) -> int:
        top = int(self.images["position"].max()) if len(self.images) else 0
        if self.res.points is not None and len(self.res.points):
            top = max(top, int(self.res.points["position"].max()))
        return top


def _stamp(folder: Path) -> tuple:
    """What changes when a job in ``folder`` writes: its manifests' times and parts."""
    return tuple(sorted((k, (p / "manifest.json").stat().st_mtime_ns,
                         len(list(p.glob("part-*.parquet"))))
                        for k, p in find_jobs(folder).items()))


@st.cache_resource(show_spinner="Reading the results...", max_entries=4)
def _open(folder: str, stamp: tuple) -> View:
    """An output folder's :class:`View`, read once per content (``stamp``) for every session
    (shared: do not modify)."""
    return _view(batch.open_results(folder))


@st.cache_resource(show_spinner="Opening the images...", max_entries=4)
def _source(spec: str, limit: int | None) -> batch.Source:
    return batch.open_source(spec, limit)


def model_info(spec: str) -> models.ModelInfo | None:
    """A manifest's model when the app can load it (shipped models, VGG16), else None."""
    if spec in models.BUILTIN or spec in ("vgg16", "vgg16-random"):
        try:
            return cache.load_model(spec)
        except Exception:  # noqa: BLE001 - the page then shows the written maps only
            return None
    return None


def open_view(text: str) -> View | None:
    """The folder's :class:`View`, or None after an error box (never a traceback)."""
    text = (text or "").strip()
    if not text:
        st.info("Type the output folder of a batch job above (`python -m vizcore batch ... "
                "--out FOLDER`), or run a small job here.", icon=":material/folder_open:")
        return None
    folder = Path(text).expanduser()
    try:
        if not folder.is_dir():
            raise batch.ResultsError(f"{folder} is not a folder on this server")
        view = _open(str(folder.resolve()), _stamp(folder))
    except batch.ResultsError as exc:
        st.error(f"{exc}. Fix: check the path (it is a folder on the server, not on your "
                 "computer), or pick one of the folders found on this server.",
                 icon=":material/folder_off:")
        return None
    except (OSError, ValueError, KeyError) as exc:
        st.error(f"Could not read {folder}: {exc}. Fix: the folder may be half-written or from "
                 "another vizcore version; run the job again into a new folder.",
                 icon=":material/error:")
        return None
    ss = st.session_state
    if ss.get(SIG) != str(folder.resolve()):  # another folder: its own default image,
        if ss.get(SIG) is not None and "pos" not in (links.incoming() or {}):  # or the link's
            ss.pop(POS, None)
        ss[SIG] = str(folder.resolve())
    return view


def _view(res: batch.Results) -> View:
    ms = res.manifests
    main = next(ms[k] for k in ("score", "explain", "embed") if k in ms)
    methods = next((ms[k]["job"]["methods"] for k in ("explain", "score") if k in ms), [])
    model_spec, data_spec = main["job"]["model"], main["job"]["data"]
    label_names = res.class_names
    info = model_info(model_spec)
    class_names = list(info.class_names) if info is not None else list(label_names)
    same = info is None or list(info.class_names) == list(label_names)
    limit = max((m["source"].get("images", 0) for m in ms.values()), default=None)
    return View(res, dfig.catalogue(res.rows), dfig.ok_rows(res.rows.get("score")),
                dfig.ok_rows(res.rows.get("explain")), list(methods), label_names, class_names,
                same, model_spec, data_spec, limit or None,
                {m: method_name(m) for m in methods})


def overview(view: View) -> None:
    """What the folder holds, and warnings: an unfinished job, jobs on other data or models."""
    ms = view.res.manifests
    parts = []
    for kind in KINDS:
        if kind in ms:
            n = ms[kind].get("images_ok", view.res.rows[kind]["position"].nunique())
            what = ([view.names.get(m, m) for m in ms[kind]["job"]["methods"]]
                    if kind != "embed" else
                    [PROJECTIONS.get(p, p) for p in ms[kind]["job"]["projections"]])
            parts.append(f"{kind}: {n:,} images" + (f", {', '.join(what)}" if what else ""))
    im = view.images
    acc = ""
    if view.same_classes and len(im) and (im["label"] >= 0).any():
        known = im[im["label"] >= 0]
        acc = (f" The model classifies {float((known['label'] == known['predicted']).mean()):.1%}"
               f" of the {len(known):,} labelled images correctly.")
    src = next(iter(ms.values()))["source"].get("description", view.data_spec)
    st.markdown(f"**{src}**, model **{Path(view.model_spec).name}**: " + "; ".join(parts)
                + "." + acc)
    for kind, m in ms.items():
        if m.get("status") != "complete":
            st.warning(f"The {kind} job here is not finished (status: {m.get('status')}): the "
                       f"page shows the {view.res.rows[kind]['position'].nunique():,} images "
                       "written so far. Run the same command, or the same small job on this "
                       "page, again to finish it: it resumes from the blocks written.",
                       icon=":material/hourglass_top:")
    if len({m["job"]["data"] for m in ms.values()}) > 1 or len(
            {m["job"]["model"] for m in ms.values()}) > 1:
        st.warning("The jobs in this folder ran on different data or models: a position "
                   "refers to the image of the score/explain job's data.",
                   icon=":material/warning:")
    if not view.same_classes:
        st.info("The dataset's classes are not the model's: predictions are shown by the "
                "model's class names, and nothing is called right or wrong.")


# --------------------------------------------------------------------------- the ranking


def show_ranking(view: View) -> None:
    """Ranking table with intervals, its chart, a CSV download, the sanity check."""
    from vizcore.batch import analysis

    if view.scores is None or not len(view.scores):
        st.info("No score job in this folder: run `python -m vizcore batch score ... --out "
                "<this folder>` (or a small job here) to rank the methods.")
        return
    ins = analysis.insertion_column(view.scores)
    ranking = analysis.ranking(view.scores)
    st.markdown(
        "**Deletion** removes the pixels a map ranks highest first and follows the class "
        "probability: a faithful map makes it fall fast (a **low** area under the curve). "
        "**Insertion** adds them back to an empty image: a faithful map makes it rise fast (a "
        "**high** area). Per image, insertion minus deletion is high when the map's top pixels "
        "alone bring the class back and removing them destroys it. This ranks how faithful "
        "each method's maps are to **this model on this data**, not whether the model is right "
        "or the maps are easy to read.")
    st.caption(dfig.insertion_sentence(view.scores, ins) + " " + dfig.order_sentence(ranking,
                                                                                    ins))
    st.dataframe(dfig.ranking_table(ranking, ins, view.names), hide_index=True,
                 width="stretch")
    st.caption("Each cell: the mean over the images [its 95% confidence interval]; ↑ higher is "
               "more faithful, ↓ lower is more faithful.")
    st.plotly_chart(dfig.ranking_figure(ranking, ins, view.names), width="stretch",
                    key="dr_rank_fig")
    st.caption("Each dot is a method's mean over the images; the bar is the 95% confidence "
               "interval of that mean. Where two methods' bars overlap, this sample cannot tell "
               "them apart; more images make the bars shorter.")
    st.download_button("Download the ranking (CSV)", dfig.ranking_csv(ranking, ins),
                       "method_ranking.csv", "text/csv", key="dr_rank_csv",
                       icon=":material/download:", on_click="ignore")
    sanity = view.res.summaries.get("score", {}).get("sanity")
    if sanity and sanity.get("layers"):
        st.subheader("Sanity check: do the maps depend on the model?")
        st.dataframe(dfig.sanity_table(sanity, view.names), hide_index=True, width="stretch")
        st.caption(f"Adebayo et al. (2018): the weights are randomised from the output layer "
                   f"down; each number is the mean rank correlation (Spearman) between a map of "
                   f"the trained model and the map after randomising down to that layer, over "
                   f"{len(sanity.get('images', []))} image(s). A method that explains the model "
                   "falls towards 0 as layers are randomised; one that stays near 1 is showing "
                   "the image (its edges), not what the network learned.")
    with st.expander("Per class"):
        st.caption("The mean AUC per true class: a method can be faithful on some classes and "
                   "not on others (small classes give noisy means).")
        c1, c2 = st.columns(2)
        c1.markdown("**Deletion AUC** (lower = more faithful)")
        c1.dataframe(dfig.per_class_table(view.scores, "deletion_auc", view.label_names,
                                          view.names).round(3), width="stretch")
        c2.markdown(f"**Insertion AUC, {dfig.INSERTION_START.get(ins, ins)} start** "
                    "(higher = more faithful)")
        c2.dataframe(dfig.per_class_table(view.scores, ins, view.label_names,
                                          view.names).round(3), width="stretch")


# --------------------------------------------------------------------------- images


def raw_image(view: View, position: int) -> np.ndarray | None:
    """The image at ``position`` as stored (uint8), re-read from its dataset or folder."""
    try:
        src_kind = next(iter(view.res.manifests.values()))["source"]["kind"]
        if src_kind == "folder":
            row = view.images[view.images["position"] == position]
            if row.empty:
                return None
            return data.load_image(Path(view.data_spec) / str(row.iloc[0]["id"]))
        pixels = _source(view.data_spec, view.limit).pixels()
        return pixels[position] if 0 <= position < len(pixels) else None
    except (batch.SourceError, data.ImageError, OSError, ValueError):
        return None


def _inspect(position: int) -> None:
    st.session_state[POS] = int(position)


def show_sorted(view: View, how: str, method: str | None, k: int = 12) -> None:
    """The first ``k`` images in the chosen order, as thumbnails with an Inspect button."""
    table, message = dfig.sort_images(how, view.images, view.scores, view.explains, method,
                                      view.same_classes, k)
    if message:
        st.info(message, icon=":material/info:")
        return
    st.session_state.setdefault(POS, int(table["position"].iloc[0]))
    per_row = 6
    for start in range(0, len(table), per_row):
        cols = st.columns(per_row)
        for col, (_, r) in zip(cols, table.iloc[start: start + per_row].iterrows()):
            img = raw_image(view, int(r["position"]))
            with col:
                if img is not None:
                    st.image(figures.png(img, 112), width="stretch")
                st.caption(f"#{r['id']}: true {dfig.name_of(view.label_names, r['label'])}, "
                           f"predicted {dfig.name_of(view.class_names, r['predicted'])} · "
                           f"{r['text']}")
                st.button("Inspect", key=f"dr_inspect_{start}_{int(r['position'])}",
                          on_click=_inspect, args=(int(r["position"]),),
                          icon=":material/zoom_in:")


# --------------------------------------------------------------------------- the embedding


def _on_select() -> None:
    event = st.session_state.get("dr_map")
    pos = point_from_selection(event.get("selection") if event else None)
    if pos is not None:
        st.session_state[POS] = pos


def show_embedding(view: View, projection: str, colour: str, method: str | None) -> None:
    """The whole set's map (at most :data:`~ui.dataset_figures.MAX_POINTS` points); a click
    selects an image."""
    pts = view.res.points
    keep = dfig.subsample(len(pts))
    p = pts.iloc[keep]
    values, title = None, ""
    if colour == "faithfulness" and method:
        values = dfig.faithfulness_of(view.scores, method).reindex(p["position"]).to_numpy()
        title = f"{view.names.get(method, method)}: insertion - deletion"
    fig = dfig.embedding_figure(
        p[[f"{projection}_x", f"{projection}_y"]].to_numpy(np.float32),
        p["position"].to_numpy(int), p["id"].astype(str).tolist(), p["label"].to_numpy(int),
        p["predicted"].to_numpy(int), p["confidence"].to_numpy(float), view.label_names,
        view.class_names, colour, values, title, st.session_state.get(POS))
    st.plotly_chart(fig, width="stretch", key="dr_map", on_select=_on_select,
                    selection_mode="points")
    summary = view.res.summaries.get("embed", {})
    entry = summary.get("projections", {}).get(projection, {})
    q = entry.get("quality_heldout") or entry.get("quality_fit")
    where = "held-out images the map was not fitted on" if "quality_heldout" in entry else (
        "the images it was fitted on")
    layer = view.res.manifests["embed"]["job"].get("layer")
    st.caption(
        f"Each dot is one image, placed by {PROJECTIONS[projection]} so that images the network's "
        + (f"layer `{layer}`" if layer else "penultimate layer")
        + " sees alike land close together; neighbourhoods mean something, the "
        "distances between far-apart clusters and the axes do not. "
        f"The map was fitted on {summary.get('fit_sample', 0):,} images and every other one "
        "placed into it. Click a dot to inspect that image below."
        + (f" {len(keep):,} of {len(pts):,} images are drawn (a seeded random sample)."
           if len(keep) < len(pts) else "")
        + (" Grey dots have no score (the score job covered fewer images)." if
           colour == "faithfulness" else ""))
    if q:
        m1, m2, m3 = st.columns(3)
        m1.metric("Trustworthiness", f"{q['trustworthiness']:.3f}",
                  help=f"On {q['points']:,} {where}: 1.0 when every 2-D neighbour is a true "
                       "neighbour in the feature space (Venna and Kaski 2001).")
        m2.metric(f"{q['k']}-NN accuracy in 2-D", f"{q['knn_2d']:.1%}",
                  help="How often the majority class of a dot's 2-D neighbours is its class.")
        m3.metric("... in the feature space", f"{q['knn_original']:.1%}")


# --------------------------------------------------------------------------- one image


def _under(raw: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The image at a map's resolution (as it was, not inverted), for the overlay."""
    if raw.shape[:2] == tuple(shape):
        return raw
    return data.fit_image(raw, tuple(shape), 1 if raw.shape[-1] == 1 else 3, invert=False)


def _live_maps(view: View, position: int, methods: list[str]) -> dict[str, np.ndarray] | str:
    """Each method's map of one image, computed now on the manifest's model (shared with
    every page's explanations), or why it cannot be."""
    info = model_info(view.model_spec)
    if info is None:
        return (f"The model of these jobs ({Path(view.model_spec).name}) is not one the app "
                "loads by name, so maps are shown only from an explain job: run "
                "`python -m vizcore batch explain ... --out <this folder>`.")
    job = next(view.res.manifests[k]["job"] for k in ("explain", "score", "embed")
                if k in view.res.manifests)
    src = _source(view.data_spec, view.limit)
    raw, ok, errors = src.load(np.asarray([position]), info)
    if not len(ok):
        return f"Cannot read this image: {'; '.join(errors) or 'not in the source'}."
    x = info.preprocess(raw)[0].astype(np.float32)
    out = {}
    for m in methods:
        params = tuple(sorted(job.get("params", {}).get(m, {}).items()))
        out[m] = cache.explain(info.key, info, x, m, None, job.get("layer"), params).heatmap
    return out


def show_selected(view: View, position: int) -> None:
    """One image: its prediction, its numbers per method, and each method's map."""
    row = view.images[view.images["position"] == position]
    if row.empty:
        st.warning(f"No image at position {position} in these results (positions 0 to "
                   f"{view.max_position:,}).")
        return
    r = row.iloc[0]
    raw = raw_image(view, position)
    left, mid, right = st.columns([2, 3, 5])
    with left:
        if raw is not None:
            st.image(figures.png(raw, 200), width=200)
        st.caption(f"#{r['id']} (position {position}): true class "
                   f"{dfig.name_of(view.label_names, r['label'])}, predicted "
                   f"{dfig.name_of(view.class_names, r['predicted'])} ({r['confidence']:.0%})")
    probs = dfig.top5_probs(r, len(view.class_names))
    if probs is not None:
        names = view.class_names + [f"class {i}" for i in range(len(view.class_names),
                                                                len(probs))]
        mid.plotly_chart(figures.topk_figure(probs, names, 5, int(r["label"]) if
                                             view.same_classes and r["label"] >= 0 else None,
                                             "Top-5 probabilities"),
                         width="stretch", key="dr_topk")
    numbers = dfig.image_scores(view.scores, view.explains, position, view.names)
    with right:
        if numbers is not None:
            st.dataframe(numbers.round(3), hide_index=True, width="stretch")
            st.caption("This image's area under the deletion curve (lower = more faithful) "
                       "and under the insertion curve (higher = more faithful) per method, and "
                       "the share of each map outside the object (dark-background datasets).")
    methods = view.methods or (["gradcam"] if view.model_spec in models.BUILTIN else [])
    if not methods:
        return
    maps: dict[str, np.ndarray] = {}
    for m in methods:
        heat = view.res.map_of(position, m)
        if heat is not None:
            maps[m] = heat
    origin = "written by the explain job"
    if len(maps) < len(methods):
        try:
            with jobs.cancellable("dr_live"):
                live = _live_maps(view, position, [m for m in methods if m not in maps])
                if isinstance(live, str):
                    st.info(live)
                else:
                    maps.update(live)
                    origin = ("computed now on the jobs' model (this image has no map in an "
                              "explain job)")
        except (ValueError, KeyError, TypeError) as exc:
            st.warning(f"Could not compute the maps: {exc}.")
    if not maps:
        return
    per_row = 3
    for i, (m, heat) in enumerate(maps.items()):
        if i % per_row == 0:
            cols = st.columns(per_row)
        under = _under(raw, heat.shape) if raw is not None else None
        cols[i % per_row].plotly_chart(
            figures.heatmap_figure(np.asarray(heat, np.float32), under, opacity=0.55,
                                   zmin=0.0, zmax=1.0, colorbar_title="relevance",
                                   title=view.names.get(m, method_name(m)), height=300),
            width="stretch", key=f"dr_map_{m}")
    st.caption(f"Each method's map for the predicted class, {origin}: red = pixels that drove "
               "the score most, blue = little. Two methods that disagree are asking different "
               "questions"
               + ("; the numbers above say which map the model's output actually follows."
                  if numbers is not None else
                  "; this image was not scored, so nothing here says which map to believe."))


# --------------------------------------------------------------------------- a small job


def job_form(info: models.ModelInfo) -> None:
    """The form of a small job on the current model; a click stores the request."""
    if info.key not in models.BUILTIN:
        st.info(f"The page's small jobs run on the shipped Fashion-MNIST models "
                f"({', '.join(models.BUILTIN)}); pick one in the sidebar. For {info.label}, run "
                "the jobs from the command line (`python -m vizcore batch score --model FILE "
                "--data DATA --out FOLDER`, then `explain` and `embed` into the same folder) "
                "and open the folder above.", icon=":material/terminal:")
        return
    available = [k for k, s in REGISTRY.items() if s.applies_to(info)[0]]
    with st.form("dr_job_form", border=False):
        c1, c2, c3 = st.columns([2, 1, 4])
        ds = c1.selectbox("Dataset", list(DATASETS), format_func=DATASETS.get,
                          key="dr_job_data")
        n = c2.number_input("Images", MIN_IMAGES, MAX_IMAGES, DEFAULT_IMAGES, step=100,
                            key="dr_job_n", help="The first N images of the dataset.")
        methods = c3.multiselect("Methods", available,
                                 default=[m for m in DEFAULT_METHODS if m in available],
                                 format_func=method_name, key="dr_job_methods")
        st.caption(f"Explains, scores (deletion and insertion curves of 20 steps: about 60 "
                   f"model passes per image and method) and embeds the first images of the "
                   f"dataset with **{info.label}**, each method with its paper's defaults. 500 "
                   "images and three methods take one to three minutes here. The same request "
                   "is computed once for everyone: a second time it opens at once.")
        if st.form_submit_button("Explain + score + embed", type="primary",
                                 icon=":material/play_arrow:"):
            if not methods:
                st.error("Pick at least one method.")
            else:
                st.session_state[RUN] = {"model": info.key, "data": ds, "n": int(n),
                                         "methods": list(methods)}


@functools.lru_cache(maxsize=16)
def _model_digest(spec: str) -> str:
    return batch.ModelRef.parse(spec).digest()


def small_jobs(request: dict, n: int) -> list[batch.Job]:
    """The three jobs of a request (``n``: the images the source really has)."""
    common = dict(model=request["model"], data=request["data"], limit=n, block_size=BLOCK)
    return [batch.Job("explain", methods=list(request["methods"]), **common),
            batch.Job("score", methods=list(request["methods"]), sanity_sample=SANITY, **common),
            batch.Job("embed", projections=["tsne"], fit_sample=min(n, 2000),
                      heldout=min(n // 4, 1000), **common)]


def job_folder(jobs_: list[batch.Job]) -> Path:
    """``<batch root>/<hash>``: the same settings and model weights, the same folder."""
    digest = _model_digest(jobs_[0].model)
    return batch_root() / store.key_of("dataset-results",
                                       [j.identity(digest) for j in jobs_])[:12]


def is_complete(folder: Path) -> bool:
    ms = _manifests(folder) if folder.is_dir() else {}
    return all(ms.get(k, {}).get("status") == "complete" for k in KINDS)


def _run_all(jobs_: list[batch.Job], source, folder: Path, report) -> str:
    base = 0.0
    for job in jobs_:
        def progress(done: int, total: int, base=base, kind=job.kind) -> None:
            report(base + WEIGHTS[kind] * done / max(1, total),
                   f"{VERBS[kind]}: {done:,} of {total:,} images"
                   + (AFTER[kind] if done >= total else "") + "...")

        outcome = batch.run(job, source, folder, executor="local", progress=progress)
        if not outcome.complete:
            first = next(iter(outcome.failed.values()), "unknown")
            raise batch.JobError(f"the {job.kind} job left {len(outcome.failed)} block(s) "
                                 f"undone ({first})")
        base += WEIGHTS[job.kind]
    return str(folder)


def run_requested() -> None:
    """Run the stored request (progress bar and Stop), then open its folder (a rerun)."""
    ss = st.session_state
    request = ss.get(RUN)
    if not request:
        return
    box = st.container(border=True)
    left, right = box.columns([6, 1], vertical_alignment="center")
    stop = right.empty()
    if stop.button("Stop", key="dr_stop", icon=":material/stop:",
                   help="Stops after the block of images being computed; the blocks written "
                        "are kept, and the same request later resumes from them."):
        ss.pop(RUN, None)
        stop.empty()
        box.info("Stopped. The images computed so far are kept: the same request resumes "
                 "from them.", icon=":material/stop_circle:")
        return
    folder = None
    try:
        source = _source(request["data"], request["n"])
        jobs_ = small_jobs(request, len(source))
        target = job_folder(jobs_)
        if is_complete(target):
            folder = str(target)
        else:
            with left, jobs.cancellable("dr_run", notice=None) as scope:
                folder = _JOBS.get(str(target), lambda report: _run_all(jobs_, source, target,
                                                                        report),
                                   f"Starting the jobs on {len(source):,} images...",
                                   heavy=True, label="the dataset job", min_interval=0.3)
            if scope.cancelled:
                ss.pop(RUN, None)
                box.info("Cancelled while it waited for a free slot: press the button to queue "
                         "it again.", icon=":material/block:")
                return
    except (batch.JobError, batch.SourceError, ValueError, OSError, MemoryError) as exc:
        ss.pop(RUN, None)
        box.error(f"The job could not run: {exc}. Fix: try fewer images or other methods; "
                  "press the button again to resume what was written.", icon=":material/error:")
        return
    ss.pop(RUN, None)
    if folder:
        ss[OPEN_NEXT] = folder
        ss.pop(POS, None)
        st.rerun()
