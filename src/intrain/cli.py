"""The ``intrain`` command line: thin, no algorithm. Each subcommand parses, then calls the library.

Bad input never shows a traceback: one line on stderr and exit status 2 (3 when training diverges,
128 + N when signal N stopped it; the last epoch's checkpoint is kept for ``train --resume``).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
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


def _seed_list(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got '{text}'") from None
    if any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"seeds must be non-negative, got '{text}'")
    return seeds


def _milestones(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated iterations like '32000,48000', got '{text}'") from None


def _method_names() -> list[str]:
    from .methods import registry

    return list(registry.names())


# the run's own settings: flag, config key, type, help (the methods' settings: method_flags())
RUN_FLAGS: list[tuple[str, str, Any, str]] = [
    ("--model", "model", str, "model name: lenet5, vgg16, vgg16-224, resnet20, resnet56, mobilenetv2, alexnet, "
                              "timm:NAME, torchvision:NAME"),
    ("--dataset", "dataset", str, "dataset: mnist, fashion-mnist, cifar10, cifar100, demo, folder"),
    ("--data-dir", "data_dir", str, "folder holding the dataset files (default $INTRAIN_DATA_DIR or ./data)"),
    ("--method", "method", str, "pruning method: " + ", ".join(_method_names()) + " (default dense)"),
    ("--bn-recalibration-batches", "bn_recalibration_batches", _int,
     "batches that re-estimate BatchNorm statistics after each prune and at the end (0: off)"),
    ("--init", "init", str, "initial conv/linear weights: he-normal (default), lecun-normal, gaussian, xavier (Caffe), pytorch (uniform)"),
    ("--init-std", "init_std", float, "std of --init gaussian (default 0.01)"),
    ("--init-from", "init_from", str, "start from these weights: a state dict, an intrain model.pt, or a "
                                      "timm/torchvision checkpoint file (every key and shape must fit the model)"),
    ("--epochs", "epochs", _int, "training epochs"),
    ("--batch-size", "batch_size", _int, "batch size"),
    ("--optimizer", "optimizer", str, "adam or sgd"),
    ("--lr", "lr", float, "learning rate (default 1e-3 for adam, 0.01 for sgd)"),
    ("--momentum", "momentum", float, "SGD momentum"),
    ("--weight-decay", "weight_decay", float, "weight decay"),
    ("--lr-schedule", "lr_schedule", str, "constant, step, cosine or inv"),
    ("--lr-step-epochs", "lr_step_epochs", _int, "step schedule: epochs between rate drops (default a third of the epochs)"),
    ("--lr-gamma", "lr_gamma", float, "step schedule: factor of each drop (default 0.1)"),
    ("--lr-milestones", "lr_milestones", _milestones, "step schedule: drop the rate at these iterations (e.g. 32000,48000)"),
    ("--inv-gamma", "inv_gamma", float, "inv schedule: gamma of (1 + gamma * iteration) ** -power (default 1e-4)"),
    ("--inv-power", "inv_power", float, "inv schedule: power (default 0.75)"),
    ("--width", "width", float, "width multiplier of the model"),
    ("--subset", "subset", _int, "train on N examples (seeded, stratified)"),
    ("--val-split", "val_split", _fraction, "hold out N training examples (or a fraction in (0, 1)) as a "
                                            "validation split, stratified, the same for every seed; "
                                            "accuracy on it per epoch (default: none)"),
    ("--seed", "seed", _int, "random seed"),
    ("--device", "device", str, "auto, cpu, cuda, cuda:N"),
    ("--out", "out", str, "run directory (default runs/<model>-<dataset>-<method>-<time>)"),
    ("--image-size", "image_size", _int, "dataset folder: side of the square training/eval crops (default: the model's fixed input size, e.g. 32 for resnet20, else 224)"),
    ("--workers", "workers", _int, "dataset folder: image decoding processes (default 0: in the training process)"),
    ("--amp", "amp", str, "mixed precision: off, bf16 or fp16 (fp16: CUDA, with a gradient scaler)"),
    ("--log", "log", str, "none or tensorboard: each epoch's numbers as TensorBoard scalars in RUN_DIR/tensorboard "
                          "(pip install 'intrain[tensorboard]')"),
]
_PARSERS = {"int": _int, "float": _fraction, "str": str, "bool": bool}


def with_default(text: str, key: str) -> str:
    """``text`` with the run setting's default appended, unless the text already says it."""
    from .config import TrainConfig

    if "default" in text:
        return text
    default = next(f.default for f in dataclasses.fields(TrainConfig) if f.name == key)
    return f"{text} (default {'none' if default is None else default})".replace("%", "%%")


def method_flags() -> list[tuple[str, str, Any, str]]:
    """One flag per setting of the registered methods (:mod:`intrain.methods.registry`), generated
    from their config dataclasses: the type from the annotation (``bool``: a switch), the help text
    from the field's metadata, followed by the methods that use it."""
    from .methods import registry

    flags = []
    for name in registry.field_users():
        f = registry.method_field(name)
        kind = _parse_with(f.metadata["parse"]) if "parse" in f.metadata else _PARSERS[str(f.type).split("|")[0].strip()]
        text = registry.field_help(name).replace("%", "%%")  # argparse formats help with %
        flags.append((f"--{name.replace('_', '-')}", name, kind, text))
    return flags


def _parse_with(parse):
    """A flag type from a method's parser: its one-line error as argparse's."""
    def kind(text: str):
        try:
            return parse(text)
        except IntrainError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    kind.__name__ = parse.__name__
    return kind


def train_flags() -> list[tuple[str, str, Any, str]]:
    """Every ``intrain train`` flag that sets a config key: the run's and the methods'."""
    return [*RUN_FLAGS, *method_flags()]


def build_parser() -> argparse.ArgumentParser:
    from .presets import PRESETS

    parser = _Parser(prog="intrain", description="Prune convolutional networks while they train.")
    parser.add_argument("--version", action="version", version=f"intrain {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    train = commands.add_parser("train", help="train (and prune) one model")
    train.add_argument("--config", help="YAML file with the same keys as the flags (flags override it)")
    for flag, key, kind, text in RUN_FLAGS:
        train.add_argument(flag, dest=key, type=kind, default=argparse.SUPPRESS, help=with_default(text, key))
    methods = train.add_argument_group("method settings", "each used by the methods in brackets; a flag the chosen "
                                       "method does not use is refused")
    for flag, key, kind, text in method_flags():
        if kind is bool:
            methods.add_argument(flag, dest=key, action="store_true", default=argparse.SUPPRESS, help=text)
        else:
            methods.add_argument(flag, dest=key, type=kind, default=argparse.SUPPRESS, help=text)
    compact = train.add_mutually_exclusive_group()
    compact.add_argument("--compact", dest="compact", action="store_true", default=argparse.SUPPRESS,
                         help="physically remove pruned filters after each pruning epoch")
    compact.add_argument("--no-compact", dest="compact", action="store_false", default=argparse.SUPPRESS,
                         help="keep pruned filters in place, masked (default: --compact for methods that remove "
                              "whole filters)")
    train.add_argument("--channels-last", dest="channels_last", action="store_true", default=argparse.SUPPRESS,
                       help="model and inputs in channels-last memory order (faster convolutions on GPUs)")
    train.add_argument("--skip-bad-images", dest="skip_bad_images", action="store_true", default=argparse.SUPPRESS,
                       help="dataset folder: train without the images that do not decode (default: refuse the "
                            "folder; summary.json counts them as skipped_images)")
    # runtime-only options: how to run, not what the run is (not config keys, not in config.yaml)
    train.add_argument("--quiet", action="store_true", help="no progress bar, no per-epoch lines (runtime only)")
    train.add_argument("--overwrite", action="store_true",
                       help="replace the run already in --out (runtime only; default: refuse)")
    train.add_argument("--resume", metavar="RUN_DIR", default=None,
                       help="continue the run in RUN_DIR from its last checkpoint (its own config; no other options)")

    demo = commands.add_parser("demo", help="LeNet-5 on a bundled MNIST subset: dense vs PWT-L1, in about a minute")
    demo.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    demo.add_argument("--epochs", type=_int, default=6, help="epochs per run (default 6)")
    demo.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    demo.add_argument("--overwrite", action="store_true",
                      help="write into --out even when the demo did not make it (default: refuse)")

    cost = commands.add_parser("cost", help="training MACs and memory accesses per layer, and PWT's savings (no data needed)")
    cost.add_argument("--model", required=True, help="model name: lenet5, vgg16, resnet20, resnet56")
    cost.add_argument("--dataset", required=True, help="dataset name (gives the input shape; no files are read)")
    cost.add_argument("--width", type=_fraction, default=1.0, help="width multiplier of the model")
    cost.add_argument("--target", type=_fraction, default=0.8, help="fraction of filters pruned at the end (default 0.8)")
    cost.add_argument("--epochs", type=_int, default=80, help="training epochs N (default 80)")
    cost.add_argument("--retrain", type=_int, default=10, help="PRT's retraining epochs m (default 10)")
    cost.add_argument("--every", type=_int, default=1, help="PWT-ModN: prune every N-th epoch (default 1)")

    report = commands.add_parser("report", help="figures and report.md from run directories")
    report.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (history.jsonl, summary.json)")
    report.add_argument("--out", required=True, help="output folder for the figures and report.md")
    report.add_argument("--title", default="intrain report", help="the report's title")
    report.add_argument("--overwrite", action="store_true",
                        help="write into --out even when a report did not make it (a run folder, other files)")

    reproduce = commands.add_parser("reproduce", help="run a paper figure's set of runs and write its report")
    reproduce.add_argument("name", help=", ".join(PRESETS))
    reproduce.add_argument("--scale", default="cpu", help="cpu (minutes on a CPU, scaled down) or paper (default cpu)")
    reproduce.add_argument("--out", default=None, help="output folder (default runs/reproduce/NAME-SCALE)")
    reproduce.add_argument("--data-dir", default=None, help="folder holding the dataset files")
    reproduce.add_argument("--seeds", type=_seed_list, default=None,
                           help="comma-separated seeds, each run trained once per seed (default: 0,1,2 for the "
                                "PWT figures at cpu scale and ra-table2-tuned, else 0)")
    reproduce.add_argument("--quiet", action="store_true", help="no per-run lines or progress bar")

    data = commands.add_parser("data", help="download a dataset (MNIST, Fashion-MNIST, CIFAR-10/100)")
    data_commands = data.add_subparsers(dest="data_command", metavar="ACTION", parser_class=_Parser, required=True)
    fetch = data_commands.add_parser("fetch", help="download NAME from where it is published, checked against "
                                     "its MD5s (continues an interrupted download)")
    fetch.add_argument("name", metavar="NAME", help="mnist, fashion-mnist, cifar10 or cifar100")
    fetch.add_argument("--data-dir", default=None,
                       help="folder to download into (default $INTRAIN_DATA_DIR or ./data); give the same to train")

    export = commands.add_parser("export", help="export a run's final model: compact PyTorch, ONNX or sparse")
    export.add_argument("run_dir", metavar="RUN_DIR", help="a finished run directory (config.yaml, model.pt)")
    export.add_argument("--format", dest="fmt", choices=("compact", "onnx", "sparse"), default="compact",
                        help="compact (model_compact.pt + a torch.export .pt2), onnx (model.onnx) or sparse (model_sparse.npz)")
    export.add_argument("--out", default=None, help="output file (default: into RUN_DIR)")
    export.add_argument("--no-latency", dest="latency", action="store_false",
                        help="skip the CPU latency measurement of dense vs compact")
    export.add_argument("--raw-input", action="store_true",
                        help="the .pt2 and ONNX programs take raw uint8 images (padding and normalisation embedded)")
    return parser


RUNTIME_KEYS = ("command", "config", "quiet", "overwrite", "resume")  # train options that are not config keys


def cmd_train(args: argparse.Namespace) -> int:
    from .config import TrainConfig
    from .engine.distributed import world_from_environment
    from .engine.run import resume, train

    overrides = {key: value for key, value in vars(args).items() if key not in RUNTIME_KEYS}
    if args.resume is not None:
        if args.config or overrides or args.overwrite:
            given = ", ".join(["--config"] * bool(args.config) + [f"--{k.replace('_', '-')}" for k in overrides]
                              + ["--overwrite"] * args.overwrite)
            raise IntrainError(f"--resume continues with the run's own configuration; drop {given} (only --quiet is allowed)")
        summary = resume(args.resume, quiet=args.quiet)
    else:
        config = TrainConfig.load(args.config, overrides) if args.config else TrainConfig.from_dict(overrides, source="arguments")
        summary = train(config, quiet=args.quiet, overwrite=args.overwrite)
    if world_from_environment().is_main:
        from .reporting.tables import run_end_lines

        print("\n".join(run_end_lines(summary)))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(out=args.out, epochs=args.epochs, quiet=args.quiet, overwrite=args.overwrite)
    return 0


def cmd_cost(args: argparse.Namespace) -> int:
    from .costs import cost_report, model_for_cost
    from .validation import at_least, fraction

    fraction("target", args.target)
    for name, low in (("epochs", 1), ("retrain", 0), ("every", 1)):
        at_least(name, getattr(args, name), low)
    model, input_shape = model_for_cost(args.model, args.dataset, args.width)
    print(f"{args.model} (width {args.width:g}) on {args.dataset}")
    print(cost_report(model, input_shape, target=args.target, epochs=args.epochs,
                      retrain_epochs=args.retrain, every=args.every))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .reporting.report import report_from_dirs

    print(f"report -> {report_from_dirs(args.runs, args.out, title=args.title, overwrite=args.overwrite)}")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from .presets import get_preset
    from .reporting.reproduce import run_preset

    preset = get_preset(args.name, args.scale, data_dir=args.data_dir, seeds=args.seeds)
    out = args.out or f"runs/reproduce/{preset.name}-{preset.scale}"
    log = (lambda _: None) if args.quiet else (lambda line: print(line, flush=True))
    progress = not args.quiet and sys.stderr.isatty()  # a bar over the runs on a terminal, lines otherwise
    print(f"report -> {run_preset(preset, out, log=log, progress=progress)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_run, format_report

    print(format_report(export_run(args.run_dir, args.fmt, args.out, latency=args.latency, raw_input=args.raw_input)))
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from .data import fetch
    from .data.datasets import default_data_dir

    root = fetch.fetch_dataset(args.name, args.data_dir if args.data_dir is not None else default_data_dir())
    print(f"{args.name} -> {root} (train with --dataset {args.name} --data-dir {root})")
    return 0


COMMANDS = {"train": cmd_train, "demo": cmd_demo, "cost": cmd_cost, "report": cmd_report,
            "reproduce": cmd_reproduce, "export": cmd_export, "data": cmd_data}


def one_line(text: str) -> str:
    """``text`` with line breaks and other unprintable characters escaped, so an error message
    quoting user input (a name with a newline, binary junk) stays one printable line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for c in text)


def flag_hint(parser: argparse.ArgumentParser, command: str | None, unknown: list[str]) -> str:
    """``; did you mean '--epochs'?`` for the first unknown flag close to one of the command's."""
    if command is None:
        return ""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    flags = [flag for action in sub._actions for flag in action.option_strings if flag.startswith("--")]
    for word in unknown:
        if word.startswith("--"):
            hint = difflib.get_close_matches(word.split("=")[0], flags, n=1)
            if hint:
                return f"; did you mean '{hint[0]}'?"
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # named after the subcommand, whose --help lists its options
            command = f"{parser.prog} {args.command}" if args.command else parser.prog
            raise IntrainError(f"unrecognized arguments: {' '.join(unknown)}{flag_hint(parser, args.command, unknown)} "
                               f"(see '{command} --help')")
        if args.command is None:
            parser.print_help()
            return 2
        return COMMANDS[args.command](args)
    except IntrainError as exc:
        print(f"intrain: error: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("intrain: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
