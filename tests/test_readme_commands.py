"""Every ``intrain`` command in the README's bash blocks runs, with tiny settings (the bundled demo
data, 2 epochs, 100 examples), in a scratch folder (marked slow: about 3 minutes on a busy 2-core
machine, mostly ``intrain demo`` on the whole demo set; run with ``-m slow``); and the README's
raw-image-to-prediction example gives the run's own final test accuracy (fast)."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from pathlib import Path

import pytest

from intrain import presets
from intrain.cli import main
from intrain.data import fetch
from intrain.engine import run as run_module
from interrupt import StopAfterFirstEpoch

README = Path(__file__).resolve().parents[1] / "README.md"
HAS_ONNX = importlib.util.find_spec("onnx") is not None
TINY_TRAIN = ["--subset", "100", "--batch-size", "50", "--device", "cpu", "--quiet"]


def readme_commands() -> list[list[str]]:
    """The argv (after ``intrain``) of every intrain command in the README's bash blocks, in order;
    ``torchrun ... -m intrain train ...`` counts as ``intrain train ...``."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            argv = shlex.split(line.split("#")[0])
            if "intrain" in argv:
                commands.append(argv[argv.index("intrain") + 1:])
    return commands


def _set(argv: list[str], flag: str, value: str | None) -> list[str]:
    """``argv`` with ``flag``'s value replaced (or the flag and its value dropped when ``value`` is None)."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] == flag:
            if value is not None:
                out += [flag, value]
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


def tiny(argv: list[str]) -> list[str]:
    """The command with tiny settings: demo data, 2 epochs (1 for the demo), few examples."""
    argv = [a.replace("RUN_DIR", "runs/lenet-pwt") for a in argv]
    if argv[0] == "train" and "--dataset" in argv and argv[argv.index("--dataset") + 1] == "folder":
        # an image folder of the user's (tests/data/test_data_folder.py trains on generated ones): the
        # same flags on the demo data, with a 32x32 model and no decoding workers
        argv = _set(_set(_set(argv, "--workers", None), "--image-size", None), "--model", "vgg16")
    if argv[0] == "train" and "--resume" not in argv:
        argv = _set(_set(_set(argv, "--dataset", "demo"), "--data-dir", None), "--epochs", "2")
        argv = argv + (["--epochs", "2"] if "--epochs" not in argv and "--config" not in argv else []) + TINY_TRAIN
    elif argv[0] == "train":
        argv = argv + ["--quiet"]
    elif argv[0] == "demo":
        argv = _set(argv, "--epochs", "1") + ["--quiet"]
    elif argv[0] == "reproduce":
        argv = _set(argv, "--data-dir", None) + ["--quiet"]
    return argv


def shrink(get_preset):
    """``get_preset`` with every run cut to the tiny settings."""
    def tiny_preset(name, scale, data_dir=None, seeds=None):
        preset = get_preset(name, scale, data_dir=data_dir, seeds=seeds if seeds is not None else (0,))
        runs = tuple(presets.PresetRun(r.label, r.config.replace(
            dataset="demo", data_dir=None, subset=100, batch_size=50, epochs=2, device="cpu",
            **{k: v for k, v in (("rate", None), ("prune_epoch", 1)) if k in r.config.spec.field_names}))
            for r in preset.runs)
        return presets.Preset(preset.name, preset.scale, preset.title, runs, preset.notes)
    return tiny_preset




@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """Run every README command in a scratch folder; returns ``[(argv, exit status, stderr)]``."""
    mp = pytest.MonkeyPatch()
    cwd = tmp_path_factory.mktemp("readme")
    mp.chdir(cwd)
    mp.setattr(presets, "get_preset", shrink(presets.get_preset))
    # no network in tests: `intrain data fetch` is tested against a local server (tests/data/test_fetch.py)
    mp.setattr(fetch, "fetch_dataset", lambda name, data_dir, **_: Path(data_dir))
    (cwd / "my-run.yaml").write_text("model: lenet5\ndataset: demo\nmethod: pwt\ntarget: 0.5\n")
    for method, extra in (("dense", []), ("pwt", []), ("prt", ["--prune-epoch", "1"])):  # what the report example reads
        assert main(["train", "--dataset", "demo", "--epochs", "2", "--method", method, *extra, *TINY_TRAIN,
                     "--out", f"runs/{method}"]) == 0
    commands = readme_commands()
    resumed = {argv[argv.index("--resume") + 1] for argv in commands if "--resume" in argv}
    results = []
    for argv in commands:
        argv = tiny(argv)
        out = argv[argv.index("--out") + 1] if argv[0] == "train" and "--out" in argv else None
        with pytest.MonkeyPatch.context() as patch:
            if out in resumed:
                patch.setattr(run_module, "StopSignals", StopAfterFirstEpoch)
            code = main(argv)
        results.append((argv, code))
    mp.undo()
    return cwd, resumed, results


def test_the_readme_shows_every_command():
    names = {argv[0] for argv in readme_commands()}
    assert names == {"train", "demo", "cost", "report", "reproduce", "export", "data"}


@pytest.mark.slow
def test_every_readme_command_runs(ran):
    cwd, resumed, results = ran
    assert len(results) == len(readme_commands()) >= 13
    for argv, code in results:
        out = argv[argv.index("--out") + 1] if argv[0] == "train" and "--out" in argv else None
        if out in resumed:
            assert code == 130, argv  # interrupted after its first epoch, for the --resume example
        elif "onnx" in argv and not HAS_ONNX:
            assert code == 2, argv  # one line: pip install 'intrain[onnx]'
        else:
            assert code == 0, argv
    (run,) = resumed
    assert json.loads((cwd / run / "summary.json").read_text())["epochs"] == 2  # resumed to the end
    assert (cwd / "runs" / "report" / "report.md").exists()


def test_readme_raw_image_example_gives_the_runs_own_accuracy(tmp_path, capsys):
    from intrain.config import TrainConfig
    from intrain.engine.run import train
    from intrain.export import export_run

    run = tmp_path / "run"
    train(TrainConfig.of(model="lenet5", dataset="demo", subset=200, method="pwt", target=0.4, epochs=1, batch_size=100,
                      device="cpu", out=str(run)), quiet=True)
    export_run(run, "compact", latency=False)
    blocks = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
              if "raw_input=True" in b]
    assert len(blocks) == 1
    namespace: dict = {}
    exec(compile(blocks[0].replace("RUN_DIR", str(run)), "README.md (raw images)", "exec"), namespace)
    summary = json.loads((run / "summary.json").read_text())
    assert namespace["accuracy"] == pytest.approx(summary["final_test_accuracy"], abs=1e-6)  # float32 mean; 1 image = 1e-3
    assert capsys.readouterr().out.startswith("test accuracy ")
