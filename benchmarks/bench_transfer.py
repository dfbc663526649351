"""Transfer learning versus training from scratch: time per epoch and test accuracy per
training-set size.

Run from the repository root::

    python benchmarks/bench_transfer.py                  # digits, 100 / 500 / all, 8 epochs
    python benchmarks/bench_transfer.py --quick          # 100 / 500 images, 4 epochs
    python benchmarks/bench_transfer.py --epochs 4 --fine-tune
    python benchmarks/bench_transfer.py --task mnist     # needs MNIST cached or online

For each training-set size, the shipped Fashion-MNIST CNN's frozen conv base + a new head
(transfer) and the same architecture from random weights (scratch) are trained with the same
budget (:func:`vizcore.transfer.run_comparison`). Printed per size: seconds per epoch of both runs
(median over epochs 2.., i.e. warm; the first epoch also traces the graph), their ratio, and the
final test accuracy of both with the difference.

Expectation: a frozen base needs no weight gradients for the conv layers, so a transfer epoch
costs less than a scratch epoch (ratio < 1); transfer should win clearly at 100 images and the
gap should shrink as the training set grows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    from vizcore import models, transfer

    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="digits", choices=["digits", "mnist"])
    p.add_argument("--quick", action="store_true", help="sizes 100,500 and 4 epochs")
    p.add_argument("--sizes", default=None,
                   help="comma-separated training-set sizes ('all' = the whole split); "
                        "default 100,500,all (100,500 with --quick)")
    p.add_argument("--epochs", type=int, default=None, help="default 8 (4 with --quick)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--fine-tune", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.sizes = args.sizes or ("100,500" if args.quick else "100,500,all")
    args.epochs = args.epochs or (4 if args.quick else 8)

    info = models.load_builtin("fashion_vgg")
    t0 = time.perf_counter()
    task = transfer.load_task(args.task, seed=args.seed)
    print(f"task {args.task}: {len(task.y_train)} train / {len(task.y_val)} val / "
          f"{len(task.y_test)} test images, loaded in {time.perf_counter() - t0:.1f} s; "
          f"{args.epochs} epochs, batch {args.batch_size}, fine-tune {args.fine_tune}, "
          f"source {info.label} ({info.card.get('test_accuracy', '?')} on Fashion-MNIST)")
    rows = []
    for s in args.sizes.split(","):
        size = None if s.strip() == "all" else int(s)
        cfg = transfer.TransferConfig(args.task, size, args.epochs, args.batch_size,
                                      fine_tune=args.fine_tune, seed=args.seed)
        t1 = time.perf_counter()
        comp = transfer.run_comparison(task, cfg, info.model)
        wall = time.perf_counter() - t1
        t, sc = comp.runs["transfer"], comp.runs["scratch"]

        def warm(run):
            secs = run.epoch_seconds[1:] or run.epoch_seconds
            return statistics.median(secs)

        rows.append((comp.sizes["train"], t.epoch_seconds[0], sc.epoch_seconds[0], warm(t),
                     warm(sc), t.test_accuracy, sc.test_accuracy, wall))
        print(f"  size {comp.sizes['train']}: done in {wall:.1f} s", flush=True)

    head = (f"{'train':>6} | {'1st ep t/s (s)':>15} | {'warm s/epoch transfer':>21} | "
            f"{'scratch':>8} | {'ratio t/s':>9} | {'test acc transfer':>17} | {'scratch':>8} | "
            f"{'gain':>7}")
    print()
    print(head)
    print("-" * len(head))
    for n, f_t, f_s, w_t, w_s, a_t, a_s, _ in rows:
        print(f"{n:>6} | {f_t:6.2f} / {f_s:6.2f} | {w_t:21.3f} | {w_s:8.3f} | "
              f"{w_t / w_s:9.2f} | {a_t:17.1%} | {a_s:8.1%} | {a_t - a_s:+7.1%}")
    print("\nratio t/s < 1: a transfer epoch is cheaper than a scratch epoch (frozen base). "
          "gain > 0: transfer beats scratch on the held-out test set with the same budget.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
