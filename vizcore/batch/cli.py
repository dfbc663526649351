"""``python -m vizcore batch explain|score|embed``: dataset-wide jobs from the command line.

A progress bar (images per second, time left) goes to stderr; Ctrl-C stops cleanly and a rerun
of the same command resumes from the blocks already written.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

DEFAULT_METHODS = "gradcam,gradcam_plus_plus,saliency,smoothgrad,lrp_epsilon"


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``batch`` sub-commands and their options."""
    sub = parser.add_subparsers(dest="kind", required=True)
    for kind, text in (("explain", "every image's prediction, top-5 and maps"),
                       ("score", "deletion/insertion AUC per image and method, ranking, sanity"),
                       ("embed", "features of every image, t-SNE/UMAP fitted on a sample")):
        p = sub.add_parser(kind, help=text, description=text)
        p.add_argument("--model", default="fashion_vgg",
                       help="fashion_vgg, fashion_gap, vgg16, vgg16-random or a .keras/.h5 file")
        p.add_argument("--data", default="fashion-mnist:test",
                       help="fashion-mnist[:train|:test], mnist[:train|:test], digits, an image "
                            "folder (one sub-folder per class, or flat) or a .npz")
        p.add_argument("--out", type=Path, required=True, help="output folder")
        p.add_argument("--limit", type=int, default=None, help="only the first N images")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--batch-size", type=int, default=256, help="images per compiled pass "
                       "(capped by the memory budget: 32 at 224x224x3)")
        p.add_argument("--workers", type=int, default=0,
                       help="Ray actors (default: one per CPU)")
        p.add_argument("--address", default=None,
                       help="a running Ray cluster (default: start Ray on this machine)")
        p.add_argument("--local", action="store_true",
                       help="run in this process without Ray (small jobs)")
        p.add_argument("--scaling", default=None,
                       help="input scaling of a model file (0..1, -1..1, caffe, none)")
        p.add_argument("--overwrite", action="store_true",
                       help="replace a different job already in --out")
        p.add_argument("--layer", default=None, help=(
            "feature layer (default: the penultimate)" if kind == "embed"
            else "conv layer of the CAM methods (default: the last)"))
        if kind == "embed":
            p.add_argument("--projections", default="tsne",
                           help="tsne, umap or tsne,umap (UMAP's transform of 60,000 points "
                                "takes about two minutes here)")
            p.add_argument("--fit-sample", type=int, default=10_000)
            p.add_argument("--heldout", type=int, default=10_000)
        else:
            p.add_argument("--methods", default=DEFAULT_METHODS)
            p.add_argument("--param", action="append", default=[], metavar="METHOD.NAME=VALUE",
                           help="a method parameter, e.g. smoothgrad.n=25 (repeatable)")
        if kind == "score":
            p.add_argument("--steps", type=int, default=20, help="steps per AUC curve")
            p.add_argument("--sanity-sample", type=int, default=8,
                           help="images of the model-randomisation check (0: skip)")


def parse_params(items: list[str]) -> dict[str, dict]:
    """``["smoothgrad.n=25"]`` -> ``{"smoothgrad": {"n": 25}}`` (numbers and booleans parsed)."""
    out: dict[str, dict] = {}
    for item in items:
        key, eq, value = item.partition("=")
        method, dot, name = key.partition(".")
        if not (eq and dot and method and name):
            raise ValueError(f"--param {item!r}: write METHOD.NAME=VALUE, e.g. smoothgrad.n=25")
        v: object = value
        for conv in (int, float):
            try:
                v = conv(value)
                break
            except ValueError:
                pass
        if value.lower() in ("true", "false"):
            v = value.lower() == "true"
        out.setdefault(method, {})[name] = v
    return out


class Bar:
    """A one-line progress bar on stderr: images done, images per second, time left."""

    def __init__(self, stream=None, width: int = 28, every: float = 5.0) -> None:
        self.stream, self.width, self.every = stream or sys.stderr, width, every
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.first = self.warm = None  # (time, images) of the first call and the first block
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = (now, done)
            if done < total and done:
                self.stream.write(f"{done:,} of {total:,} images already written\n")
        elif self.first[1] == done:  # the workers are still starting
            pass
        elif self.warm is None:  # the first block: the rate is measured from here on
            self.warm = (now, done)
        t, d = self.warm if self.warm is not None and done > self.warm[1] else self.first
        rate = (done - d) / (now - t) if now > t and done > d else 0.0
        left = (total - done) / rate if rate > 0 else float("nan")
        frac = done / total if total else 1.0
        fill = int(self.width * frac)
        line = (f"[{'#' * fill}{'.' * (self.width - fill)}] {done:,}/{total:,} images "
                f"{frac:4.0%}  {rate:,.0f} img/s  "
                + (f"{left:,.0f} s left" if left == left else "starting..."))
        if self.tty:
            self.stream.write("\r" + line + ("\n" if done >= total else ""))
        elif now - self.last >= self.every or done >= total:
            self.stream.write(line + "\n")
            self.last = now
        self.stream.flush()


def batch_command(args: argparse.Namespace) -> int:
    """Run ``python -m vizcore batch <kind>``; returns the exit code (130 after Ctrl-C)."""
    from vizcore.batch import runner
    from vizcore.batch.sources import SourceError, open_source
    from vizcore.batch.work import Job, ModelRef, check

    def log(s: str) -> None:
        print(s, file=sys.stderr, flush=True)

    if not args.local:
        try:
            import ray  # noqa: F401
        except ImportError:
            log(runner.RAY_HINT + " Or add --local to run in this process.")
            return 2
    try:
        model = ModelRef.parse(args.model, args.scaling)
        job = Job(args.kind, args.model, args.data, args.limit, seed=args.seed,
                  batch_size=args.batch_size, layer=args.layer)
        if args.kind == "embed":
            job.projections = [p.strip() for p in args.projections.split(",") if p.strip()]
            bad = set(job.projections) - {"tsne", "umap"}
            if bad or not job.projections:
                raise ValueError(f"--projections takes tsne and/or umap, not {args.projections}")
            job.fit_sample, job.heldout = args.fit_sample, args.heldout
        else:
            job.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
            job.params = parse_params(args.param)
        if args.kind == "score":
            job.steps, job.sanity_sample = args.steps, args.sanity_sample
        log(f"loading {args.data} and the model {args.model}...")
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")  # the sanity check's model copies retrace on purpose
        source = open_source(args.data, args.limit)
        info = model.load()
        check(job, info)
        if args.kind == "embed" and job.layer is None:
            from vizcore.embed.features import penultimate_layer

            job.layer = penultimate_layer(info.model)
        job.model = model.spec
    except (ValueError, KeyError, FileNotFoundError, SourceError) as exc:
        log(f"error: {exc.args[0] if exc.args else exc}")
        return 2
    log(f"{args.kind}: {len(source):,} images of {source.description}")
    bar = Bar()
    t0 = time.perf_counter()
    try:
        outcome = runner.run(job, source, args.out, executor="local" if args.local else "ray",
                             workers=args.workers, address=args.address, progress=bar,
                             log=log, overwrite=args.overwrite, model=model)
    except KeyboardInterrupt:
        log(f"\nstopped. The finished blocks are in {args.out / args.kind}; run the same "
            "command again to resume.")
        return 130
    except runner.JobError as exc:
        log(f"error: {exc}")
        return 2
    m = outcome.manifest
    timings = m["timings"]
    log(f"{m['status']}: {outcome.blocks_done} of {outcome.blocks_total} blocks in "
        f"{time.perf_counter() - t0:.1f} s (Ray start {timings.get('ray_start', 0):.1f} s); "
        f"results in {outcome.folder}")
    if m.get("skipped"):
        log(f"skipped {len(m['skipped'])} unreadable image(s), e.g. {m['skipped'][0]['id']}: "
            f"{m['skipped'][0]['reason']}")
    if outcome.failed:
        log(f"{len(outcome.failed)} block(s) failed (run again to retry): "
            + "; ".join(f"{b}: {e}" for b, e in list(outcome.failed.items())[:3]))
        return 1
    _print_summary(m)
    return 0


def ranking_text(summary: dict) -> str:
    """A score summary's ranking as a plain-text table (mean [95% interval] per measure)."""
    ins = summary["insertion"]
    lines = [f"{'method':20s} {'n':>6s} {'insertion - deletion':>22s} {'deletion AUC':>22s} "
             f"{ins.replace('_auc_', ' AUC, ') + ' start':>24s}   (mean [95% CI])"]
    for r in summary["ranking"]:
        lines.append(f"{r['method']:20s} {r['n']:6d} " + "".join(
            f"  {r[c]:7.3f} [{r[c + '_lo']:.3f}, {r[c + '_hi']:.3f}]"
            for c in ("faithfulness", "deletion_auc", ins)))
    return "\n".join(lines)


def _print_summary(manifest: dict) -> None:
    summary = manifest.get("summary") or {}
    if manifest["kind"] == "score" and summary.get("ranking"):
        print(ranking_text(summary))
    if manifest["kind"] == "embed":
        for name, e in summary.get("projections", {}).items():
            q = e.get("quality_heldout") or e.get("quality_fit") or {}
            print(f"{name}: fit {e['fit_seconds']} s, transform {e['transform_seconds']} s; "
                  f"held-out trustworthiness {q.get('trustworthiness')}, "
                  f"{q.get('k')}-NN accuracy in 2-D {q.get('knn_2d')} "
                  f"(original space {q.get('knn_original')})")
