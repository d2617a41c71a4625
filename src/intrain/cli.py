"""The ``intrain`` command line: thin, no algorithm. Each subcommand parses, then calls the library.

Bad input never shows a traceback: one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from . import __version__
from .errors import IntrainError


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise IntrainError(f"{message} (see '{self.prog} --help')")


def _fraction(text: str) -> float:
    return _number(text, float)


def _number(text: str, kind=float):
    try:
        return kind(text)
    except ValueError:
        name = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {name}, got '{text}'") from None


def _int(text: str) -> int:
    return _number(text, int)


# flag, config key, type, help
TRAIN_FLAGS: list[tuple[str, str, Any, str]] = [
    ("--model", "model", str, "model name: lenet5, vgg16, resnet20, resnet56"),
    ("--dataset", "dataset", str, "dataset: mnist, fashion-mnist, cifar10, cifar100, demo"),
    ("--data-dir", "data_dir", str, "folder holding the dataset files (default $INTRAIN_DATA_DIR or ./data)"),
    ("--method", "method", str, "dense, pwt, prt, ra or scratch"),
    ("--criterion", "criterion", str, "PWT filter criterion: l1, mean-activation, random"),
    ("--target", "target", _fraction, "fraction of filters pruned at the end, in [0, 1)"),
    ("--initial", "initial", _fraction, "PWT: fraction pruned at the first pruning event"),
    ("--rate", "rate", _fraction, "PWT: fraction added per epoch (default target/epochs)"),
    ("--every", "every", _int, "PWT: prune every N-th epoch (Mod-N), N x rate at a time"),
    ("--scope", "scope", str, "PWT: rank filters globally or per layer"),
    ("--prune-epoch", "prune_epoch", _int, "PRT: prune after this many dense epochs, then retrain"),
    ("--range", "range", float, "RA: threshold range"),
    ("--epsilon", "epsilon", float, "RA: hysteresis half-width"),
    ("--partition", "partition", str, "RA: layer classes by type, sensitivity, or none"),
    ("--delta", "delta", float, "RA: sensitivity difference factor (inf gives one class)"),
    ("--probe-fraction", "probe_fraction", float, "RA: share of iterations of the probe phase"),
    ("--extending-interval", "extending_interval", _int, "RA: iterations between class extensions"),
    ("--masks-from", "masks_from", str, "scratch: run directory of a finished RA run"),
    ("--epochs", "epochs", _int, "training epochs"),
    ("--batch-size", "batch_size", _int, "batch size"),
    ("--optimizer", "optimizer", str, "adam or sgd"),
    ("--lr", "lr", float, "learning rate (default 1e-3 for adam, 0.01 for sgd)"),
    ("--momentum", "momentum", float, "SGD momentum"),
    ("--weight-decay", "weight_decay", float, "weight decay"),
    ("--lr-schedule", "lr_schedule", str, "constant, step, cosine or inv"),
    ("--width", "width", float, "width multiplier of the model"),
    ("--subset", "subset", _int, "train on N examples (seeded, stratified)"),
    ("--seed", "seed", _int, "random seed"),
    ("--device", "device", str, "auto, cpu, cuda, cuda:N"),
    ("--out", "out", str, "run directory (default runs/<model>-<dataset>-<method>-<time>)"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="intrain", description="Prune convolutional networks while they train.")
    parser.add_argument("--version", action="version", version=f"intrain {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    train = commands.add_parser("train", help="train (and prune) one model")
    train.add_argument("--config", help="YAML file with the same keys as the flags (flags override it)")
    for flag, key, kind, text in TRAIN_FLAGS:
        train.add_argument(flag, dest=key, type=kind, default=argparse.SUPPRESS, help=text)
    compact = train.add_mutually_exclusive_group()
    compact.add_argument("--compact", dest="compact", action="store_true", default=argparse.SUPPRESS,
                         help="physically remove pruned filters after each pruning epoch")
    compact.add_argument("--no-compact", dest="compact", action="store_false", default=argparse.SUPPRESS)
    train.add_argument("--include-linear", dest="include_linear", action="store_true", default=argparse.SUPPRESS,
                       help="also prune output neurons of hidden linear layers")
    train.add_argument("--quiet", action="store_true", help="no progress bar, no per-epoch lines")

    demo = commands.add_parser("demo", help="LeNet-5 on a bundled MNIST subset: dense vs PWT-L1, in about a minute")
    demo.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    demo.add_argument("--epochs", type=_int, default=6, help="epochs per run (default 6)")
    demo.add_argument("--quiet", action="store_true")
    return parser


def cmd_train(args: argparse.Namespace) -> int:
    from .config import TrainConfig
    from .engine.distributed import world_from_environment
    from .engine.run import train

    overrides = {key: value for key, value in vars(args).items() if key not in ("command", "config", "quiet")}
    config = TrainConfig.load(args.config, overrides) if args.config else TrainConfig.from_dict(overrides, source="arguments")
    summary = train(config, quiet=args.quiet)
    if world_from_environment().is_main:
        print(f"final test accuracy {100 * summary['final_test_accuracy']:.2f}%  pruned filters "
              f"{100 * summary['pruned_filter_fraction']:.1f}%  compression {summary['compression']:.2f}x  "
              f"-> {summary['run_dir']}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(out=args.out, epochs=args.epochs, quiet=args.quiet)
    return 0


COMMANDS = {"train": cmd_train, "demo": cmd_demo}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        return COMMANDS[args.command](args)
    except IntrainError as exc:
        print(f"intrain: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("intrain: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
