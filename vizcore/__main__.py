"""Command line: ``python -m vizcore <command>``.

Commands:
    train      train a default model on Fashion-MNIST and write it to assets/models
    sample     write the bundled balanced Fashion-MNIST test sample to assets/data
    embed      write a 2-D embedding (PCA, t-SNE, UMAP) of a dataset or image folder as CSV
    warm       precompute a lesson's maps and embeddings (and UMAP's compiled code) before class
    batch      explain, score or embed a whole dataset on Ray (explain|score|embed --help)
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vizcore", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_train = sub.add_parser("train", help="train a default model on Fashion-MNIST")
    p_train.add_argument("--arch", choices=["vgg_small", "gap_cnn"], required=True)
    p_train.add_argument("--epochs", type=int, default=10)
    p_train.add_argument("--batch-size", type=int, default=128)
    p_train.add_argument("--seed", type=int, default=0)
    p_sample = sub.add_parser("sample", help="write the bundled Fashion-MNIST test sample")
    p_sample.add_argument("--per-class", type=int, default=200)
    from vizcore.embed import add_embed_arguments

    add_embed_arguments(sub.add_parser(
        "embed", help="write a 2-D map (t-SNE/UMAP/PCA) of a dataset or an image folder as CSV"))
    p_warm = sub.add_parser("warm", help="precompute a lesson's maps and embeddings")
    p_warm.add_argument("--preset", default="class", help="preset name (see --list)")
    p_warm.add_argument("--lesson", help="a lesson's name (assets/lessons/NAME.toml): precompute "
                        "everything its tour shows")
    p_warm.add_argument("--list", action="store_true", help="list the presets and lessons")
    from vizcore.batch.cli import add_batch_arguments

    add_batch_arguments(sub.add_parser(
        "batch", help="explain, score or embed every image of a dataset, on Ray"))
    args = parser.parse_args(argv)

    if args.command == "train":
        from vizcore.train import train_default

        def report(epoch: int, logs: dict) -> None:
            print(f"epoch {epoch + 1}/{args.epochs}: "
                  + ", ".join(f"{k}={v:.4f}" for k, v in logs.items()), flush=True)

        card = train_default(args.arch, args.epochs, args.batch_size, args.seed, on_epoch=report)
        print(f"test accuracy {card['test_accuracy']:.4f}; "
              f"saved to assets/models/{args.arch}.keras")
    elif args.command == "embed":
        from vizcore.embed import embed_command

        return embed_command(args)
    elif args.command == "batch":
        from vizcore.batch.cli import batch_command

        return batch_command(args)
    elif args.command == "warm":
        from vizcore import lessons
        from vizcore.store import store_dir
        from vizcore.warm import PRESETS, lesson_preset, warm

        if args.list:
            for p in PRESETS.values():
                print(f"{p.name:12s} {p.description}")
            for name in lessons.available():
                print(f"--lesson {name}: {lessons.load(name).title}")
            return 0
        if args.lesson:
            try:
                preset = lesson_preset(lessons.load(args.lesson))
            except lessons.LessonError as exc:
                print(f"cannot warm lesson {args.lesson!r}: {exc}")
                return 2
        elif args.preset not in PRESETS:
            print(f"unknown preset {args.preset!r}; choose one of {', '.join(PRESETS)}")
            return 2
        else:
            preset = PRESETS[args.preset]
        times = warm(preset)
        print(f"warmed {preset.name!r} in {sum(times.values()):.1f} s; results in {store_dir()}")
    elif args.command == "sample":
        import numpy as np

        from vizcore.data import FASHION_SAMPLE, load_fashion_mnist

        test = load_fashion_mnist("test", allow_sample=False)
        idx = test.balanced_sample(args.per_class * len(test.class_names), seed=0)
        FASHION_SAMPLE.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(FASHION_SAMPLE, images=test.images[idx], labels=test.labels[idx],
                            source_indices=idx)
        print(f"wrote {len(idx)} images to {FASHION_SAMPLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
