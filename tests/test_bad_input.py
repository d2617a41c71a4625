"""Bad input never shows a traceback: malformed configs and command lines, thrown at ``intrain`` by
hypothesis (and a table of hand-picked cases), always give one line on stderr and exit status 2.

``intrain.cli.main`` runs in-process for speed, with ``Trainer.fit`` replaced by a tripwire: a bad
input that got as far as training fails the test. A few cases run as real subprocesses. Every distinct
bad input is recorded in ``SEEN``; the last test reports how many the suite covered.
"""

from __future__ import annotations

import math
import os
import string
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intrain.cli import build_parser, main, train_flags
from intrain.config import MAX_SEED, MAX_WIDTH, TrainConfig
from intrain.engine import trainer as trainer_module
from intrain.methods import registry

SEEN: set[tuple[tuple[str, ...], bytes]] = set()
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(autouse=True)
def no_training(monkeypatch):
    """A bad input must be refused before training starts."""
    def tripwire(self):
        raise AssertionError("a bad input was accepted and reached training")

    monkeypatch.setattr(trainer_module.Trainer, "fit", tripwire)


@pytest.fixture
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bad")


def assert_refused(argv: list[str], capsys, file_bytes: bytes = b"") -> str:
    """Run the CLI in-process: exit status 2, exactly one printable line on stderr, no traceback."""
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert code == 2, (argv, captured.err)
    assert len(lines) == 1 and lines[0].startswith("intrain: error: "), (argv, captured.err)
    assert "Traceback" not in captured.err
    SEEN.add((tuple(argv), file_bytes))
    return lines[0]


def train_argv(workdir: Path, *extra: str) -> list[str]:
    return ["train", "--dataset", "demo", "--out", str(workdir / "run"), "--quiet", *extra]


# ---------------------------------------------------------------------- hand-picked cases
HAND_PICKED = [
    (["--model", "googlenet"], "unknown model"),
    (["--model", ""], "model"),
    (["--dataset", "imagenet"], "unknown dataset"),
    (["--method", "magnitude"], "method"),
    (["--criterion", "l7"], "criterion"),
    (["--scope", "everywhere"], "scope"),
    (["--optimizer", "rmsprop"], "optimizer"),
    (["--lr-schedule", "linear"], "lr_schedule"),
    (["--partition", "random"], "partition"),
    (["--device", "tpu"], "device"),
    (["--device", "cuda:x"], "device"),
    (["--device", "mps"], "mps"),
    (["--device", "cuda:99"], "device"),
    (["--target", "1"], "target"),
    (["--target", "-0.1"], "target"),
    (["--target", "nan"], "target"),
    (["--initial", "0.6", "--target", "0.5"], "initial"),
    (["--rate", "0"], "rate"),
    (["--every", "0"], "every"),
    (["--method", "prt"], "prune_epoch"),
    (["--method", "prt", "--prune-epoch", "11"], "prune_epoch"),
    (["--method", "pwt", "--prune-epoch", "2"], "prune_epoch"),
    (["--epochs", "0"], "epochs"),
    (["--epochs", "2.5"], "whole number"),
    (["--batch-size", "-3"], "batch_size"),
    (["--lr", "0"], "lr"),
    (["--lr", "inf"], "lr"),
    (["--momentum", "1"], "momentum"),
    (["--weight-decay=-1e-4"], "weight_decay"),
    (["--weight-decay", "-0.0001"], "weight_decay"),
    (["--width", "0"], "width"),
    (["--width", "1e9"], "width"),
    (["--seed", "-1"], "seed"),
    (["--seed", str(2**32)], "seed"),
    (["--subset", "0"], "subset"),
    (["--subset", "6001"], "subset"),
    (["--range", "inf"], "range"),
    (["--epsilon", "-0.1"], "epsilon"),
    (["--delta", "nan"], "delta"),
    (["--probe-fraction", "1"], "probe_fraction"),
    (["--method", "ra", "--partition", "sensitivity", "--probe-fraction", "0"], "probe_fraction"),
    (["--extending-interval", "0"], "extending_interval"),
    (["--method", "scratch"], "masks_from"),
    (["--method", "scratch", "--masks-from", "/nonexistent/run"], "not found"),
    (["--method", "ra", "--compact"], "compact"),
    (["--dataset", "mnist", "--data-dir", "/nonexistent/data"], "not found"),
    (["--dataset", "cifar10", "--data-dir", "/nonexistent/data"], "not found"),
    (["--dataset", "mnist", "--data-dir", "bad\x00dir"], "NUL"),
    (["--out", "/proc/version"], "out"),
    (["--model", "lenet5\nINJECTED"], "unknown model"),
    (["--model", "\x1b[31mred"], "unknown model"),
    (["--model", "\udcff\udcfe"], "unknown model"),
    (["--epochs"], "expected one argument"),
    (["--no-such-flag"], "unrecognized arguments"),
    (["--compact", "--no-compact"], "not allowed with"),
    (["--config", "/nonexistent/config.yaml"], "not found"),
    (["--config", "nul\x00.yaml"], "unreadable"),
    (["--resume", "/nonexistent/run"], "drop --dataset, --out"),
    # caught before the run folder exists (the test checks it is not made)
    (["--model", "alexnet"], "cannot take demo's 1x28x28 inputs"),
    (["--model", "vgg16-224"], "cannot take demo's 1x28x28 inputs"),
    (["--method", "ra", "--classes", "conv1;fcX"], "'fcX' is not a conv or linear layer"),
    (["--method", "ra", "--layer-ranges", "conv9=2"], "'conv9' is not a conv or linear layer"),
    (["--momentum", "0.5"], "momentum: only optimizer sgd"),
    (["--lr-gamma", "0.5"], "lr_gamma: only lr_schedule step"),
    (["--inv-gamma", "1e-3"], "inv_gamma: only lr_schedule inv"),
    (["--lr-schedule", "cosine", "--lr-milestones", "100"], "lr_milestones: only lr_schedule step"),
    (["--init-std", "0.1"], "init_std: only init gaussian"),
]


@pytest.mark.parametrize("extra, fragment", HAND_PICKED, ids=[" ".join(a)[:40] for a, _ in HAND_PICKED])
def test_hand_picked_bad_flags(extra, fragment, workdir, capsys):
    assert fragment in assert_refused(train_argv(workdir, *extra), capsys)
    assert not (workdir / "run").exists()  # every mistake is caught before the run folder exists


def test_cost_refuses_a_model_too_deep_for_the_images(capsys):
    assert "alexnet cannot take mnist's 1x28x28 inputs" in assert_refused(
        ["cost", "--model", "alexnet", "--dataset", "mnist"], capsys)


@pytest.mark.parametrize("argv", [["frobnicate"], ["train", "positional"], ["demo", "--epochs", "x"],
                                  ["--bogus"], ["train", "--resume"], ["train", "--resume", "/nonexistent/run"],
                                  ["train", "--resume", "/nonexistent/run", "--quiet"], ["train", "--resume", ""]])
def test_bad_commands(argv, capsys):
    assert_refused(argv, capsys)


FILES = {
    "empty": b"",
    "whitespace": b"  \n\n",
    "binary": bytes(range(256)) * 4,
    "nul bytes": b"\x00" * 64,
    "latin-1": "model: l\xe9net\n".encode("latin-1"),
    "a list": b"- model\n- lenet5\n",
    "a scalar": b"42\n",
    "bad yaml": b"model: [lenet5\n",
    "python tag": b"model: !!python/object/apply:os.system ['touch /tmp/x']\n",
    "tab indent": b"model:\n\t- x\n",
    "unknown key": b"dataset: demo\nlearning_rate: 0.1\n",
    "non-string key": b"dataset: demo\n1: 2\n",
    "string epochs": b"dataset: demo\nepochs: ten\n",
    "bool epochs": b"dataset: demo\nepochs: true\n",
    "float epochs": b"dataset: demo\nepochs: 2.5\n",
    "list lr": b"dataset: demo\nlr: [0.1]\n",
    "mapping model": b"dataset: demo\nmodel: {name: lenet5}\n",
    "number device": b"dataset: demo\ndevice: 0\n",
    "string compact": b"dataset: demo\ncompact: 'yes please'\n",
    "classes not a list": b"dataset: demo\nclasses: conv1\n",
    "classes empty": b"dataset: demo\nclasses: []\n",
    "classes of numbers": b"dataset: demo\nclasses: [[1, 2]]\n",
    "null epochs": b"dataset: demo\nepochs: null\n",
    "inf target": b"dataset: demo\ntarget: .inf\n",
    "lr_step_epochs 0": b"dataset: demo\nlr_step_epochs: 0\n",
    "bn batches -1": b"dataset: demo\nbn_recalibration_batches: -1\n",
    "lr_gamma nan": b"dataset: demo\nlr_gamma: .nan\n",
    "inv_power -1": b"dataset: demo\ninv_power: -1\n",
    "duplicate key": b"dataset: demo\nepochs: 1\nepochs: 2\n",
    "ra range that cannot prune": b"dataset: demo\nmethod: ra\nrange: -50\n",
    "pwt never reaching its target": b"dataset: demo\nmethod: pwt\ntarget: 0.9\nrate: 0.01\nepochs: 5\n",
    "step schedule that never steps": b"dataset: demo\nlr_schedule: step\nlr_step_epochs: 10\nepochs: 10\n",
}


@pytest.mark.parametrize("name", list(FILES))
def test_bad_config_files(name, workdir, capsys):
    path = workdir / "config.yaml"
    path.write_bytes(FILES[name])
    assert_refused(["train", "--config", str(path), "--out", str(workdir / "run")], capsys, FILES[name])


def test_a_config_directory_is_refused(workdir, capsys):
    assert_refused(["train", "--config", str(workdir)], capsys)


@pytest.mark.parametrize("name", ["empty", "binary", "nul bytes", "a list"])
def test_bad_checkpoints(name, workdir, capsys):
    (workdir / "checkpoint.pt").write_bytes(FILES[name])
    assert "checkpoint" in assert_refused(["train", "--resume", str(workdir)], capsys, FILES[name])


# ---------------------------------------------------------------------- property-based
KNOWN_FLAGS = [a for action in build_parser()._subparsers._group_actions[0].choices["train"]._actions
               for a in action.option_strings]
TRAIN_FLAGS = train_flags()
INT_FLAGS = {flag: key for flag, key, kind, _ in TRAIN_FLAGS if getattr(kind, "__name__", "") == "_int"}
NAME_CHOICES = {
    "--model": ("lenet5", "vgg16", "resnet20", "resnet56"),
    "--dataset": ("mnist", "fashion-mnist", "cifar10", "cifar100", "demo"),
    "--method": registry.names(),
    "--criterion": ("l1", "mean-activation", "random"),
    "--scope": ("global", "layer"),
    "--optimizer": ("adam", "sgd"),
    "--lr-schedule": ("constant", "step", "cosine", "inv"),
    "--partition": ("type", "sensitivity", "none"),
}
LOWEST = {"--epochs": 1, "--batch-size": 1, "--every": 1, "--extending-interval": 1, "--subset": 1, "--seed": 0}
any_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00") | st.sampled_from("\n\x00\x1b\u2028"),
                   max_size=12)


def _not_a_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return True
    return False


def not_an_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return True
    return False


@st.composite
def bad_flag(draw) -> list[str]:
    """One flag with a value that no valid run accepts, as ``--flag=value`` (so that argparse takes
    values like ``-1e-09`` or ``-x`` as the value, and the validation itself is exercised)."""
    flag, value = draw(_bad_flag_and_value())
    return [f"{flag}={value}"]


@st.composite
def _bad_flag_and_value(draw) -> tuple[str, str]:
    kind = draw(st.sampled_from(["name", "int", "fraction", "float", "device", "text-for-number"]))
    if kind == "name":
        flag = draw(st.sampled_from(sorted(NAME_CHOICES)))
        return flag, draw(any_text.filter(lambda t: t not in NAME_CHOICES[flag]))
    if kind == "int":
        flag = draw(st.sampled_from(sorted(LOWEST)))
        low = LOWEST[flag]
        value = draw(st.integers(max_value=low - 1) | (st.integers(min_value=MAX_SEED + 1) if flag == "--seed"
                                                       else st.nothing()))
        return flag, str(value)
    if kind == "fraction":
        flag = draw(st.sampled_from(["--target", "--initial", "--rate", "--probe-fraction"]))
        value = draw(st.floats(min_value=1.0) | st.floats(max_value=-1e-9) | st.just(math.nan))
        return flag, repr(value)
    if kind == "float":
        flag, value = draw(st.sampled_from([
            ("--lr", st.floats(max_value=0.0) | st.sampled_from([math.inf, math.nan])),
            ("--momentum", st.floats(min_value=1.0) | st.floats(max_value=-1e-9) | st.just(math.nan)),
            ("--weight-decay", st.floats(max_value=-1e-9) | st.sampled_from([math.inf, math.nan])),
            ("--width", st.floats(max_value=0.0) | st.floats(min_value=MAX_WIDTH, exclude_min=True)
             | st.just(math.nan)),
            ("--range", st.sampled_from([math.inf, -math.inf, math.nan])),
            ("--epsilon", st.floats(max_value=-1e-9) | st.sampled_from([math.inf, math.nan])),
            ("--delta", st.floats(max_value=-1e-9) | st.just(math.nan)),
        ]))
        return flag, repr(draw(value))
    if kind == "device":
        return "--device", draw(any_text.filter(lambda t: t not in ("auto", "cpu")))
    flag = draw(st.sampled_from([f for f, key, kind, _ in TRAIN_FLAGS if kind is not str and key != "classes"]))
    check = not_an_int if flag in INT_FLAGS else _not_a_number
    return flag, draw(any_text.filter(check))


@SETTINGS
@given(extra=bad_flag())
def test_bad_flag_values(extra, workdir, capsys):
    assert_refused(train_argv(workdir, *extra), capsys)


@SETTINGS
@given(name=st.text(string.ascii_lowercase + "-_", min_size=1, max_size=15))
def test_unknown_flags(name, workdir, capsys):
    flag = "--" + name
    if any(known.startswith(flag) for known in KNOWN_FLAGS):  # argparse accepts unique prefixes
        return
    assert_refused(train_argv(workdir, flag, "1"), capsys)


FIELD_KINDS = {**{f.name: str(f.type).split("|")[0].strip() for f in fields(TrainConfig)},
               **{name: str(registry.method_field(name).type).split("|")[0].strip() for name in registry.field_users()}}
WRONG_TYPE = {
    "int": st.text(max_size=5) | st.floats(allow_nan=False).filter(lambda x: x != int(x) if math.isfinite(x) else True)
    | st.booleans() | st.lists(st.integers(), max_size=2),
    "float": st.text(max_size=5) | st.booleans() | st.lists(st.floats(), max_size=2) | st.dictionaries(
        st.text(max_size=3), st.integers(), min_size=1, max_size=2),
    "str": st.integers() | st.floats() | st.booleans() | st.lists(st.text(max_size=3), min_size=1, max_size=2),
    "bool": st.integers() | st.text(max_size=5) | st.floats(),
}


@st.composite
def bad_mapping(draw) -> dict:
    """A config mapping with one unknown key or one value of the wrong type."""
    values = {"dataset": "demo"}
    if draw(st.booleans()):
        key = draw(st.text(string.ascii_letters + "_-", min_size=1, max_size=12).filter(lambda k: k not in FIELD_KINDS))
        values[key] = draw(st.integers() | st.text(max_size=5))
        return values
    # not "out": the command line's --out overrides the file's value
    key = draw(st.sampled_from(sorted(k for k, kind in FIELD_KINDS.items() if kind in WRONG_TYPE and k != "out")))
    value = draw(WRONG_TYPE[FIELD_KINDS[key]])
    if FIELD_KINDS[key] == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = "x"
    values[key] = value
    return values


@SETTINGS
@given(values=bad_mapping())
def test_bad_config_mappings(values, workdir, capsys):
    text = yaml.safe_dump(values, allow_unicode=True).encode("utf-8")
    path = workdir / "config.yaml"
    path.write_bytes(text)
    assert_refused(["train", "--config", str(path), "--out", str(workdir / "run")], capsys, text)


@SETTINGS
@given(data=st.binary(max_size=200))
def test_binary_config_files(data, workdir, capsys):
    try:
        parsed = yaml.safe_load(data.decode("utf-8"))
    except Exception:
        parsed = None
    if isinstance(parsed, dict) and parsed:  # a genuine (tiny) YAML mapping: not necessarily bad
        return
    path = workdir / "config.yaml"
    path.write_bytes(data)
    assert_refused(["train", "--config", str(path), "--out", str(workdir / "run")], capsys, data)


@SETTINGS
@given(data=st.binary(max_size=200), name=st.text(string.ascii_letters, min_size=1, max_size=8))
def test_bad_checkpoint_bytes_and_missing_run_dirs(data, name, workdir, capsys):
    run_dir = workdir / name
    if data:
        run_dir.mkdir(exist_ok=True)
        (run_dir / "checkpoint.pt").write_bytes(data)
    assert_refused(["train", "--resume", str(run_dir)], capsys, data)


@SETTINGS
@given(name=st.text(string.ascii_letters + string.digits, min_size=1, max_size=10))
def test_missing_data_dirs(name, workdir, capsys):
    dataset = ["mnist", "fashion-mnist", "cifar10", "cifar100"][len(name) % 4]
    assert "not found" in assert_refused(train_argv(workdir, "--dataset", dataset, "--data-dir",
                                                    str(workdir / "missing" / name)), capsys)


# ---------------------------------------------------------------------- real processes
@pytest.mark.parametrize("extra", [["--model", "googlenet"], ["--dataset", "mnist", "--data-dir", "/nonexistent"],
                                   ["--config", "BINARY"], ["--resume", "CORRUPT"], ["--lr", "abc"]])
def test_real_process_bad_input(extra, workdir):
    binary = workdir / "binary.yaml"
    binary.write_bytes(bytes(range(256)))
    corrupt = workdir / "corrupt"
    corrupt.mkdir()
    (corrupt / "checkpoint.pt").write_bytes(b"PK\x03\x04" + os.urandom(100))
    extra = [{"BINARY": str(binary), "CORRUPT": str(corrupt)}.get(a, a) for a in extra]
    argv = ["train", *extra] if extra[0] in ("--config", "--resume") else train_argv(workdir, *extra)
    result = subprocess.run([sys.executable, "-m", "intrain", *argv], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("intrain: error: "), result.stderr
    SEEN.add((tuple(["subprocess", *argv]), b""))


def test_zz_distinct_bad_inputs_covered():
    """Runs last in this module: how many distinct bad inputs the tests above threw at intrain."""
    print(f"\n{len(SEEN)} distinct bad inputs refused with one line and exit status 2")
    assert len(SEEN) >= 250
