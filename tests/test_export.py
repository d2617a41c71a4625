"""intrain export: compact PyTorch + TorchScript, ONNX (checked with onnxruntime), sparse; reports."""

import importlib.util

import pytest
import torch

from intrain.cli import main
from intrain.config import TrainConfig
from intrain.export import compact_model, export_run, format_report, load_compact, read_run
from intrain.masks import FILTER_MASK

HAS_ONNX = importlib.util.find_spec("onnx") is not None
HAS_ORT = importlib.util.find_spec("onnxruntime") is not None


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory):
    """A compacted and a masked-only PWT LeNet-5 run on the bundled demo data (1 epoch)."""
    from intrain.engine.run import train

    root = tmp_path_factory.mktemp("runs")
    dirs = {}
    for compact in (True, False):
        out = root / ("compact" if compact else "masked")
        train(TrainConfig.of(model="lenet5", dataset="demo", subset=200, method="pwt", target=0.4, epochs=1,
                          batch_size=100, device="cpu", compact=compact, out=str(out)), quiet=True)
        dirs[compact] = out
    return dirs


def reference_outputs(run_dir, x):
    """Outputs of the run's own (masked or compacted) model."""
    config, state = read_run(run_dir)
    with torch.no_grad():
        return compact_model(config, state)(x)


def test_compact_export_loads_without_masks_and_matches(run_dirs):
    x = torch.randn(5, 1, 28, 28)
    report = export_run(run_dirs[True], "compact", latency=False)
    model = load_compact(run_dirs[True] / "model_compact.pt")
    assert not any(k.endswith("mask") for k in model.state_dict())
    assert model.conv2.weight.shape[0] < 50 and report["params_compact"] < report["params_dense"]
    assert report["macs_compact"] < report["macs_dense"]
    scripted = torch.export.load(str(run_dirs[True] / "model_compact.pt2")).module()  # plain torch
    with torch.no_grad():
        assert torch.allclose(scripted(x), model(x), atol=1e-6)
        assert torch.allclose(model(x), reference_outputs(run_dirs[True], x), atol=1e-6)


def test_masked_only_run_is_compacted_on_export(run_dirs, tmp_path):
    config, state = read_run(run_dirs[False])
    assert state["conv2.weight"].shape[0] == 50  # trained masked only
    export_run(run_dirs[False], "compact", tmp_path / "m.pt", latency=False)
    model = load_compact(tmp_path / "m.pt")
    masked = __import__("intrain.models", fromlist=["create_model"]).create_model("lenet5", init=False)
    masked.load_state_dict({k: v for k, v in state.items() if not k.endswith(FILTER_MASK)})
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert model.conv2.weight.shape[0] < 50
        assert (model(x) - masked.eval()(x)).abs().max() <= 1e-5


@pytest.mark.skipif(not HAS_ONNX, reason="onnx not installed")
def test_onnx_export_matches_pytorch(run_dirs, tmp_path):
    report = export_run(run_dirs[True], "onnx", tmp_path / "m.onnx", latency=False)
    assert (tmp_path / "m.onnx").stat().st_size > 0
    if HAS_ORT:
        assert report["onnx_max_abs_diff"] is not None and report["onnx_max_abs_diff"] <= 1e-4


def test_onnx_missing_is_one_clear_line(run_dirs, tmp_path, monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    assert main(["export", str(run_dirs[True]), "--format", "onnx", "--out", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install 'intrain[onnx]'" in err


def test_sparse_export_and_cli_report(run_dirs, tmp_path, capsys):
    assert main(["export", str(run_dirs[True]), "--format", "sparse", "--out", str(tmp_path / "s.npz")]) == 0
    out = capsys.readouterr().out
    assert "parameters" in out and "CPU latency batch 64" in out and (tmp_path / "s.npz").stat().st_size > 0
    from intrain.sparse import load_sparse

    assert load_sparse(tmp_path / "s.npz")["conv2.weight"].shape[0] < 50


def test_export_errors_are_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path)]) == 2
    assert "not a finished run directory" in capsys.readouterr().err
    assert main(["export", str(tmp_path), "--format", "tflite"]) == 2


def test_format_report_lists_ratios():
    text = format_report({"params_dense": 100, "params_compact": 25, "macs_dense": 1e6, "macs_compact": 1e5,
                          "latency": {"batch_1": {"dense_ms": 2.0, "compact_ms": 0.5, "speedup": 4.0}}})
    assert "4.00x" in text and "10.00x" in text and "batch 1" in text


# ---------------------------------------------------------------------- preprocessing travels with the export
def test_compact_file_records_its_preprocessing(run_dirs, tmp_path):
    export_run(run_dirs[True], "compact", tmp_path / "m.pt", latency=False)
    config = torch.load(tmp_path / "m.pt", weights_only=True)["config"]
    assert config["mean"] == [0.1307] and config["std"] == [0.3081]  # the demo set is MNIST's
    assert config["image_size"] == 28 and config["pad_to"] is None and config["input_shape"] == [1, 28, 28]


def test_raw_images_to_predictions_match_the_cli_evaluation(run_dirs, tmp_path):
    """From the dataset's uint8 images to the run's own final test accuracy, through the files only."""
    import json

    from intrain.data import load_dataset

    export_run(run_dirs[True], "compact", tmp_path / "m.pt", latency=False, raw_input=True)
    summary = json.loads((run_dirs[True] / "summary.json").read_text())
    data = load_dataset("demo")
    model = load_compact(tmp_path / "m.pt", raw_input=True)
    program = torch.export.load(str(tmp_path / "m.pt2")).module()
    with torch.no_grad():
        predictions = model(data.test_images).argmax(1)
        assert torch.equal(program(data.test_images).argmax(1), predictions)
    correct = int((predictions == data.test_labels).sum())
    assert correct == round(summary["final_test_accuracy"] * len(data.test_labels))


@pytest.mark.parametrize("pad_to", [None, 32, 33])
def test_preprocess_equals_the_training_pipeline(pad_to):
    from intrain.data import BatchLoader, dataset_spec
    from intrain.export import Preprocess

    spec = dataset_spec("fashion-mnist")
    images = torch.randint(0, 256, (10, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    loader = BatchLoader(images, torch.zeros(10, dtype=torch.long), spec, batch_size=10, train=False, pad_to=pad_to)
    (expected, _), = list(loader.epoch(0))
    got = Preprocess(spec.mean, spec.std, 28, pad_to)(images)
    assert got.shape == expected.shape and torch.equal(got, expected)


def test_old_compact_files_without_preprocessing_say_so(run_dirs, tmp_path):
    export_run(run_dirs[True], "compact", tmp_path / "m.pt", latency=False)
    saved = torch.load(tmp_path / "m.pt", weights_only=True)
    for key in ("mean", "std", "image_size", "pad_to"):
        del saved["config"][key]
    torch.save(saved, tmp_path / "old.pt")
    load_compact(tmp_path / "old.pt")  # the model alone still loads
    with pytest.raises(Exception, match="does not record its preprocessing"):
        load_compact(tmp_path / "old.pt", raw_input=True)


@pytest.mark.skipif(not (HAS_ONNX and HAS_ORT), reason="onnx or onnxruntime not installed")
def test_onnx_with_raw_input_takes_uint8_images(run_dirs, tmp_path):
    import onnxruntime

    report = export_run(run_dirs[True], "onnx", tmp_path / "m.onnx", latency=False, raw_input=True)
    assert report["onnx_max_abs_diff"] <= 1e-4
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(uint8)"


# ---------------------------------------------------------------------- weight-pruned runs: the sparse file
def test_ra_export_prints_the_sparse_size_and_ratio(tmp_path, capsys):
    """An RA run prunes weights: the export says so and gives the sparse file's bytes and ratio to the
    dense fp32 file, those of the run's summary (compact export) or of the file it writes (sparse)."""
    import json

    out = tmp_path / "ra"
    assert main(["train", "--model", "lenet5", "--dataset", "demo", "--subset", "200", "--method", "ra",
                 "--epochs", "1", "--device", "cpu", "--quiet", "--out", str(out)]) == 0
    recorded = json.loads((out / "summary.json").read_text())["sparse_file"]
    capsys.readouterr()
    assert main(["export", str(out), "--no-latency"]) == 0
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if line.startswith("file bytes (sparse)"))
    assert f"{recorded['dense_fp32_bytes']:,}" in row and f"{recorded['bytes']:,}" in row
    assert f"{recorded['ratio']:.2f}x" in row and recorded["ratio"] > 5
    assert "compact or ONNX export removes no weights" in text and "non-zero parameters" in text
    report = export_run(out, "sparse", tmp_path / "s.npz", latency=False)
    assert report["sparse"]["bytes"] == (tmp_path / "s.npz").stat().st_size
    assert report["sparse"]["nonzero_params"] < report["params_dense"] / 5


def test_filter_pruned_export_has_no_sparse_rows(run_dirs):
    assert "sparse" not in export_run(run_dirs[True], "compact", latency=False)
