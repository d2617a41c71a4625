"""Export a finished run's model: compact dense PyTorch (+ TorchScript), ONNX, or RA's sparse form.

``intrain export RUN_DIR --format {compact,onnx,sparse} [--out PATH]`` reads ``RUN_DIR/config.yaml``
and ``RUN_DIR/model.pt`` and writes, by default into ``RUN_DIR``:

- ``compact`` — ``model_compact.pt``: ``{"format", "model_name", "config", "state_dict"}`` (``config``:
  ``num_classes``, ``in_channels``, ``width``, ``input_shape`` and the preprocessing its inputs need:
  ``image_size``, ``pad_to``, ``mean``, ``std``; see :class:`Preprocess`), the
  network with every pruned filter removed (:func:`~intrain.compaction.compact`) and no mask
  buffers left (weight-pruned runs get their masks multiplied in). :func:`load_compact` rebuilds it
  from the model registry. Beside it ``model_compact.pt2``, the same network as a ``torch.export``
  program (dynamic batch) that needs nothing but torch: ``torch.export.load(path).module()``;
- ``onnx`` — ``model.onnx`` (needs ``pip install 'intrain[onnx]'``), the compact network with a
  dynamic batch dimension, input ``input`` (N, C, H, W) normalised like the training data, output
  ``logits``. When onnxruntime is installed its outputs are compared with PyTorch's. With
  ``--raw-input`` the ``.pt2`` and ONNX programs take raw uint8 images instead (preprocessing embedded);
- ``sparse`` — ``model_sparse.npz`` (:func:`intrain.sparse.save_sparse`), for weight-pruned runs.

Every export also reports parameters, forward MACs per image (:func:`intrain.costs.layer_costs`)
and the measured CPU inference latency of the dense network against the compact one at batch 1
and 64 (:func:`compare_latency`). A weight-pruned run's (RA, scratch) also reports its non-zero
parameters and the sparse file's bytes against the dense fp32 file's (:func:`sparse_size`): a compact
or ONNX export removes pruned filters only, never single weights.
"""

from __future__ import annotations

import inspect
import statistics
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from .compaction import compact, masked_layers, shrink_to_state_dict
from .config import TrainConfig
from .errors import CheckpointError, ConfigError, IntrainError
from .masks import FILTER_MASK, WEIGHT_MASK
from .rundir import CONFIG, EXPORTS, MODEL, RunDir

FORMATS = ("compact", "onnx", "sparse")
COMPACT_FORMAT = "intrain-compact-1"
DEFAULT_FILES = EXPORTS  # the run folder's names for them (:mod:`intrain.rundir`)


# ---------------------------------------------------------------------- the run's model
def _model_arguments(config: TrainConfig, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Registry arguments and input shape of a run's model (no data is read): from ``data``, the
    facts ``model.pt`` keeps (a folder dataset's classes and image size), else the dataset's spec."""
    from .data.specs import dataset_spec
    from .models import model_entry

    if data is not None:
        arguments = {"model_name": config.model, "num_classes": int(data["num_classes"]),
                     "in_channels": int(data["in_channels"]), "width": config.width,
                     "input_shape": [int(n) for n in data["input_shape"]]}
        preprocessing = {k: data[k] for k in ("image_size", "pad_to", "mean", "std") if k in data}
        if not preprocessing and config.dataset != "folder":  # model.pt from before it kept them
            preprocessing = {k: v for k, v in _model_arguments(config).items() if k not in arguments}
        return {**arguments, **preprocessing}
    spec = dataset_spec(config.dataset)
    size = model_entry(config.model).input_size or spec.image_size
    return {"model_name": config.model, "num_classes": spec.num_classes, "in_channels": spec.in_channels,
            "width": config.width, "input_shape": [spec.in_channels, size, size],
            # the preprocessing of training (intrain.data.BatchLoader): raw images of image_size x
            # image_size, zero-padded to input_shape, then (x / 255 - mean) / std per channel
            "image_size": spec.image_size, "pad_to": size if size != spec.image_size else None,
            "mean": list(spec.mean), "std": list(spec.std)}


class Preprocess(nn.Module):
    """What training did to a raw image before the model saw it, as a module: uint8 images
    ``[N, C, image_size, image_size]`` (pixel values 0-255) are zero-padded symmetrically to
    ``pad_to`` (an odd margin puts the extra pixel right/bottom) and normalised to
    ``(x / 255 - mean) / std`` in float32, with the very operations of
    :class:`~intrain.data.BatchLoader`."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], image_size: int, pad_to: int | None = None) -> None:
        super().__init__()
        mean_t = torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1)
        std_t = torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1)
        self.register_buffer("scale", 1.0 / (255.0 * std_t))
        self.register_buffer("shift", -mean_t / std_t)
        self.image_size, self.pad_to = int(image_size), pad_to
        margin = (pad_to or image_size) - image_size
        self.padding = (margin // 2, margin - margin // 2, margin // 2, margin - margin // 2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if any(self.padding):
            images = torch.nn.functional.pad(images, self.padding, value=0)
        return images.float() * self.scale + self.shift


class RawImageModel(nn.Module):
    """A compact model behind its :class:`Preprocess`: takes raw uint8 images, returns logits."""

    def __init__(self, preprocess: Preprocess, model: nn.Module) -> None:
        super().__init__()
        self.preprocess, self.model = preprocess, model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(self.preprocess(images))


def preprocess_from(arguments: dict[str, Any]) -> Preprocess:
    """The :class:`Preprocess` of a compact file's ``config`` (or of :func:`_model_arguments`)."""
    missing = [k for k in ("mean", "std", "image_size") if k not in arguments]
    if missing:
        raise CheckpointError(f"this compact model does not record its preprocessing ({missing[0]} is missing); "
                              "export it again with this version")
    return Preprocess(arguments["mean"], arguments["std"], arguments["image_size"], arguments.get("pad_to"))


def _build(arguments: dict[str, Any]) -> nn.Module:
    """The registry's model for :func:`_model_arguments` (or a compact file's config)."""
    from .models import create_model

    return create_model(arguments["model_name"], num_classes=arguments["num_classes"],
                        in_channels=arguments["in_channels"], width=arguments["width"], init=False)


def read_run(run_dir: str | Path) -> tuple[TrainConfig, dict[str, torch.Tensor]]:
    """The run's configuration and final ``state_dict`` (``model.pt``), or a one-line error."""
    folder = RunDir(run_dir)
    if not folder.config.is_file() or not folder.model.is_file():
        raise ConfigError(f"{run_dir} is not a finished run directory (it needs {CONFIG} and {MODEL})")
    config = TrainConfig.load(folder.config, lenient=True)  # runs of older versions too
    try:
        state = torch.load(folder.model, map_location="cpu", weights_only=True)["model"]
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise CheckpointError(f"{folder.model} is unreadable: {type(exc).__name__}") from None
    return config, state


def read_data_facts(run_dir: str | Path) -> dict[str, Any] | None:
    """``model.pt``'s ``data`` (class count, channels, input shape), ``None`` for older runs."""
    path = RunDir(run_dir).model
    try:
        return torch.load(path, map_location="cpu", weights_only=True).get("data")
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise CheckpointError(f"{path} is unreadable: {type(exc).__name__}") from None


def _without_masks(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weight masks multiplied in (RA), then every mask buffer dropped."""
    if any(k.endswith("." + WEIGHT_MASK) for k in state):
        from .sparse import materialize

        state = materialize(state)
    return {k: v for k, v in state.items() if not k.endswith(("." + WEIGHT_MASK, "." + FILTER_MASK))}


def compact_model(config: TrainConfig, state: dict[str, torch.Tensor],
                  data: dict[str, Any] | None = None) -> nn.Module:
    """The run's final network in eval mode with its pruned filters removed and no masks left."""
    arguments = _model_arguments(config, data)
    model = _build(arguments)
    for key, mask in state.items():  # filter masks first, so that a masked-only run compacts too
        if key.endswith("." + FILTER_MASK):
            model.get_submodule(key[: -len(FILTER_MASK) - 1]).register_buffer(FILTER_MASK, mask.clone())
    weights = _without_masks(state)
    shrink_to_state_dict(model, weights)
    try:
        result = model.load_state_dict(weights, strict=False)
    except RuntimeError as exc:
        raise CheckpointError(f"model.pt does not fit a {config.model} model: {str(exc).splitlines()[-1].strip()}") from None
    missing = [k for k in result.missing_keys if not k.endswith("." + FILTER_MASK)]
    if missing or result.unexpected_keys:
        raise CheckpointError(f"model.pt does not fit a {config.model} model: "
                              f"{(missing + result.unexpected_keys)[0]} is {'missing' if missing else 'unexpected'}")
    if masked_layers(model):
        compact(model, None, example_inputs=torch.zeros(1, *arguments["input_shape"]))
        for name in masked_layers(model):
            del model.get_submodule(name)._buffers[FILTER_MASK]
    return model.eval()


# ---------------------------------------------------------------------- compact files
def save_compact(model: nn.Module, arguments: dict[str, Any], path: str | Path) -> Path:
    """Write ``{"format", "model_name", "config", "state_dict"}`` to ``path``."""
    path = Path(path)
    config = {k: v for k, v in arguments.items() if k != "model_name"}
    torch.save({"format": COMPACT_FORMAT, "model_name": arguments["model_name"], "config": config,
                "state_dict": model.state_dict()}, path)
    return path


def load_compact(path: str | Path, *, raw_input: bool = False) -> nn.Module:
    """Rebuild a model saved by ``intrain export --format compact`` (eval mode, plain nn.Module).

    The model takes normalised float images of ``config["input_shape"]``; with ``raw_input`` it comes
    behind its :class:`Preprocess` (:class:`RawImageModel`) and takes raw uint8 images of
    ``config["image_size"]`` (28x28 for MNIST), as read from the dataset files."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConfigError(f"{path} not found") from None
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"{path} is unreadable: {type(exc).__name__}") from None
    if not isinstance(saved, dict) or saved.get("format") != COMPACT_FORMAT:
        raise CheckpointError(f"{path} is not an intrain compact model ({COMPACT_FORMAT})")
    model = _build({"model_name": saved["model_name"], **saved["config"]})
    shrink_to_state_dict(model, saved["state_dict"])
    model.load_state_dict(saved["state_dict"])
    if raw_input:
        model = RawImageModel(preprocess_from(saved["config"]), model)
    return model.eval()


def example_input(arguments: dict[str, Any], raw_input: bool, batch: int) -> torch.Tensor:
    """Zeros shaped like the exported program's input: raw uint8 images or normalised floats."""
    if raw_input:
        size = arguments["image_size"]
        return torch.zeros(batch, arguments["in_channels"], size, size, dtype=torch.uint8)
    return torch.zeros(batch, *arguments["input_shape"])


def save_exported_program(model: nn.Module, input_shape: Sequence[int], path: str | Path,
                          example: torch.Tensor | None = None) -> Path:
    """``model`` as a ``torch.export`` program with a dynamic batch dimension:
    ``torch.export.load(path).module()`` needs nothing but torch (no intrain, no model code).
    ``example`` (batch 2) replaces float zeros of ``input_shape``, e.g. for raw uint8 input."""
    batch = torch.export.Dim("batch", min=1)
    if example is None:
        example = torch.zeros(2, *input_shape)  # 2, not 1: a batch of 1 would be specialised
    with torch.no_grad():
        program = torch.export.export(model.eval(), (example,), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))
    return Path(path)


def export_onnx(model: nn.Module, input_shape: Sequence[int], path: str | Path,
                example: torch.Tensor | None = None) -> float | None:
    """Write ``model`` as ONNX (dynamic batch); return the max abs difference of onnxruntime's
    outputs from PyTorch's on a random batch of 4, or None when onnxruntime is not installed.
    ``example`` (batch 1) replaces float zeros of ``input_shape``, e.g. for raw uint8 input."""
    try:
        import onnx  # noqa: F401  (torch.onnx needs it)
    except ImportError:
        raise IntrainError("ONNX export needs the onnx package: pip install 'intrain[onnx]'") from None
    if example is None:
        example = torch.zeros(1, *input_shape)
    options = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (example,), str(path), input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, **options)
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(0)
    if example.dtype == torch.uint8:
        x = torch.randint(0, 256, (4, *example.shape[1:]), generator=generator, dtype=torch.uint8)
    else:
        x = torch.randn(4, *example.shape[1:], generator=generator)
    with torch.no_grad():
        expected = model(x).numpy()
    return float(abs(session.run(None, {"input": x.numpy()})[0] - expected).max())


# ---------------------------------------------------------------------- costs and latency
def forward_macs(model: nn.Module, input_shape: Sequence[int]) -> float:
    """Forward multiply-accumulates per image (:func:`intrain.costs.layer_costs`, structured)."""
    from .costs import layer_costs

    return float(sum(row.fp_macs for row in layer_costs(model, input_shape)))


@torch.no_grad()
def measure_latency(model: nn.Module, input_shape: Sequence[int], batch: int, *, repeats: int = 10,
                    warmup: int = 2, threads: int | None = 1) -> float:
    """Median seconds of one eval-mode forward pass of ``batch`` random images on the CPU.

    ``threads`` intra-op threads (default 1; None keeps torch's setting): on a busy machine several
    threads wait for each other and a batch-1 forward can take 100x longer than on one thread.
    """
    model = model.eval()
    x = torch.randn(batch, *input_shape)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or previous)
    try:
        for _ in range(warmup):
            model(x)
        times = []
        for _ in range(repeats):
            tick = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - tick)
    finally:
        torch.set_num_threads(previous)
    return statistics.median(times)


def compare_latency(dense: nn.Module, compact_: nn.Module, input_shape: Sequence[int],
                    batches: Sequence[int] = (1, 64), repeats: int = 10,
                    threads: int | None = 1) -> dict[str, dict[str, float]]:
    """``{"batch_N": {"dense_ms", "compact_ms", "speedup"}}``, one batch size after the other."""
    result = {}
    for batch in batches:
        dense_s = measure_latency(dense, input_shape, batch, repeats=repeats, threads=threads)
        compact_s = measure_latency(compact_, input_shape, batch, repeats=repeats, threads=threads)
        result[f"batch_{batch}"] = {"dense_ms": 1e3 * dense_s, "compact_ms": 1e3 * compact_s,
                                    "speedup": dense_s / compact_s}
    return result


def size_report(dense: nn.Module, compact_: nn.Module, input_shape: Sequence[int], *, latency: bool = True,
                repeats: int = 10) -> dict[str, Any]:
    """Parameters, forward MACs per image and (optionally) CPU latency, dense vs compact."""
    report: dict[str, Any] = {
        "params_dense": sum(p.numel() for p in dense.parameters()),
        "params_compact": sum(p.numel() for p in compact_.parameters()),
        "macs_dense": forward_macs(dense, input_shape),
        "macs_compact": forward_macs(compact_, input_shape),
    }
    if latency:
        report["latency"] = compare_latency(dense, compact_, input_shape, repeats=repeats)
    return report


def format_report(report: dict[str, Any]) -> str:
    """A short table of :func:`export_run`'s report."""
    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}x" if b else "-"

    lines = [f"{'':<22}{'dense':>14}{'compact':>14}{'ratio':>9}",
             f"{'parameters':<22}{report['params_dense']:>14,}{report['params_compact']:>14,}"
             f"{ratio(report['params_dense'], report['params_compact']):>9}",
             f"{'forward MACs / image':<22}{report['macs_dense']:>14,.0f}{report['macs_compact']:>14,.0f}"
             f"{ratio(report['macs_dense'], report['macs_compact']):>9}"]
    for key, row in report.get("latency", {}).items():
        label = f"CPU latency {key.replace('_', ' ')}"
        lines.append(f"{label:<22}{row['dense_ms']:>12.2f}ms{row['compact_ms']:>12.2f}ms{row['speedup']:>8.2f}x")
    if report.get("latency"):
        lines.append("(latency: median of eval-mode forwards of random images, 1 CPU thread)")
    sparse = report.get("sparse")
    if sparse:
        lines.append(f"{'non-zero parameters':<22}{report['params_dense']:>14,}{sparse['nonzero_params']:>14,}"
                     f"{ratio(report['params_dense'], sparse['nonzero_params']):>9}")
        lines.append(f"{'file bytes (sparse)':<22}{sparse['dense_fp32_bytes']:>14,}{sparse['bytes']:>14,}"
                     f"{sparse['ratio']:>8.2f}x")
        lines.append("(dense: torch.save of the fp32 weights; sparse: intrain.sparse .npz"
                     + (f", {sparse['path']})" if sparse["path"] else ", --format sparse writes it)"))
        lines.append("this run pruned weights, not filters: a compact or ONNX export removes no weights "
                     "(they stay as zeros); the sparse file is the small one")
    for fmt, path in report.get("files", {}).items():
        lines.append(f"{fmt}: {path}")
    if report.get("onnx_max_abs_diff") is not None:
        lines.append(f"onnxruntime vs PyTorch: max abs difference {report['onnx_max_abs_diff']:.2e}")
    return "\n".join(lines)


# ---------------------------------------------------------------------- the command
def export_run(run_dir: str | Path, fmt: str = "compact", out: str | Path | None = None, *,
               latency: bool = True, repeats: int = 10, raw_input: bool = False) -> dict[str, Any]:
    """Export the final model of ``run_dir`` as ``fmt`` (see the module docstring); return the report
    (``files``, parameters, MACs, latency, ``onnx_max_abs_diff``). With ``raw_input`` the ``.pt2``
    and ONNX programs embed the preprocessing (:class:`Preprocess`) and take raw uint8 images."""
    if fmt not in FORMATS:
        raise ConfigError(f"format: unknown value '{fmt}'; choose one of: {', '.join(FORMATS)}")
    run_dir = Path(run_dir)
    config, state = read_run(run_dir)
    target = Path(out) if out is not None else run_dir / DEFAULT_FILES[fmt]
    if target.parent and not target.parent.is_dir():
        raise ConfigError(f"out: folder {target.parent} does not exist")
    data = read_data_facts(run_dir)
    arguments = _model_arguments(config, data)
    shape = arguments["input_shape"]
    model = compact_model(config, state, data)
    files: dict[str, str] = {}
    onnx_diff = None
    program_model = RawImageModel(preprocess_from(arguments), model).eval() if raw_input else model
    if fmt == "compact":
        files["compact"] = str(save_compact(model, arguments, target))
        program = target.with_name(target.name.removesuffix(".pt") + ".pt2")
        files["torch.export"] = str(save_exported_program(program_model, shape, program,
                                                          example_input(arguments, raw_input, 2)))
    elif fmt == "onnx":
        onnx_diff = export_onnx(program_model, shape, target, example_input(arguments, raw_input, 1))
        files["onnx"] = str(target)
    else:
        from .sparse import save_sparse  # RA's module

        save_sparse(state, target)
        files["sparse"] = str(target)
    report = size_report(_build(arguments).eval(), model, shape, latency=latency, repeats=repeats)
    report.update(files=files, onnx_max_abs_diff=onnx_diff)
    if any(k.endswith("." + WEIGHT_MASK) for k in state):
        sparse_path = target if fmt == "sparse" else RunDir(run_dir).sparse_model
        report["sparse"] = sparse_size(state, sparse_path if sparse_path.is_file() else None)
    return report


def sparse_size(state: dict[str, torch.Tensor], path: Path | None) -> dict[str, Any]:
    """A weight-pruned model's sizes: non-zero parameters, the sparse file's bytes (``path``, or a
    temporary one written for the count) against the dense fp32 file's, and their ratio."""
    import tempfile

    from .sparse import dense_file_bytes, materialize, save_sparse

    if path is None:
        with tempfile.TemporaryDirectory() as folder:
            sparse_bytes = save_sparse(state, Path(folder) / "model_sparse.npz")
    else:
        sparse_bytes = path.stat().st_size
    weights = materialize(state)
    nonzero = sum(int(v.count_nonzero()) for k, v in weights.items()
                  if v.is_floating_point() and not k.endswith(("." + WEIGHT_MASK, "." + FILTER_MASK)))
    dense_bytes = dense_file_bytes(state)
    return {"path": str(path) if path is not None else None, "bytes": sparse_bytes,
            "dense_fp32_bytes": dense_bytes, "ratio": dense_bytes / sparse_bytes, "nonzero_params": nonzero}
