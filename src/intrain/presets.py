"""Reproduction presets: the papers' figures and tables as named sets of runs (data, no logic).

``intrain reproduce NAME --scale cpu|paper`` trains every run of a preset and writes the report
(:mod:`intrain.reporting.reproduce`). Two scales:

* ``paper`` — the paper's settings: PWT figures on VGG-16 / CIFAR-10 for 80 epochs with Adam (the
  user provides the CIFAR-10 files and, in practice, a GPU); RA Table 2 on LeNet-5 / MNIST with the
  Caffe recipe for 11 epochs; RA Table 4 on ResNet-56 / CIFAR-10 with SGD.
* ``cpu`` — the same comparisons shrunk to run on two CPU cores in minutes: narrower networks,
  fewer epochs and a training subset of Fashion-MNIST or MNIST. The report says so; absolute
  accuracies are not the paper's, the comparisons between runs are the point.

A run's ``masks_from`` may name another run of the same preset as ``@label`` (scratch-train uses
the masks of the RA run); the runner replaces it by that run's directory.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import TrainConfig
from .errors import ConfigError

SCALES = ("cpu", "paper")


@dataclass(frozen=True)
class PresetRun:
    """One run of a preset: its label (also its folder name) and its configuration (``out`` unset)."""

    label: str
    config: TrainConfig


@dataclass(frozen=True)
class Preset:
    """A named set of runs reproducing one figure or table."""

    name: str
    scale: str
    title: str
    runs: tuple[PresetRun, ...]
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# base configurations per scale
# ---------------------------------------------------------------------------------------------

_PWT_BASE = {
    "paper": TrainConfig(model="vgg16", dataset="cifar10", epochs=80, batch_size=128, optimizer="adam", seed=0),
    # LeNet-5 stands in for VGG-16: a width-0.125 VGG-16 trains ~4x slower per example on a CPU.
    # 16 epochs keep the pruning gradual (5% of the filters per epoch). Measured with 3000 examples
    # and 8 epochs (10% steps): PWT-L1 80% ended 8.2 points below dense, 5.6 below its own best epoch.
    "cpu": TrainConfig(model="lenet5", dataset="fashion-mnist", subset=6000, epochs=16, batch_size=64,
                       optimizer="adam", seed=0),
}
_LENET_CAFFE = {
    "paper": TrainConfig(model="lenet5", dataset="mnist", epochs=11, batch_size=64, optimizer="sgd", lr=0.01,
                         momentum=0.9, weight_decay=5e-4, lr_schedule="inv", inv_gamma=1e-4, inv_power=0.75, seed=0),
    "cpu": TrainConfig(model="lenet5", dataset="mnist", subset=6000, epochs=4, batch_size=64, optimizer="sgd",
                       lr=0.01, momentum=0.9, weight_decay=5e-4, lr_schedule="inv", inv_gamma=1e-4,
                       inv_power=0.75, seed=0),
}
_RESNET = {
    # 64k iterations of 128 = 164 epochs (391 batches each: 64,124 iterations); lr 0.1 divided by 10 at
    # iterations 32k and 48k (Caffe's multistep); the pruning classes extended at 10k and 20k iterations.
    "paper": TrainConfig(model="resnet56", dataset="cifar10", epochs=164, batch_size=128, optimizer="sgd", lr=0.1,
                         momentum=0.9, weight_decay=1e-4, lr_schedule="step", lr_milestones=(32_000, 48_000),
                         seed=0),
    "cpu": TrainConfig(model="resnet20", width=0.5, dataset="fashion-mnist", subset=3000, epochs=6,
                       batch_size=64, optimizer="adam", seed=0),
}

_SCALE_NOTES = {
    "paper": "Paper scale: the paper's model, dataset and epochs (see the configurations in each run's config.yaml).",
    "cpu": "CPU scale, not the paper's numbers: {model} (width {width}) on {dataset}, a {subset}-example "
           "training subset (full test set), {epochs} epochs, batch {batch_size}. Schedules are scaled "
           "to the epochs (PWT prunes target/epochs per epoch; PRT-E keeps the paper's E/N ratio).",
}


def _base(table: dict[str, TrainConfig], scale: str) -> TrainConfig:
    if scale not in SCALES:
        raise ConfigError(f"scale: unknown value '{scale}'; choose one of: {', '.join(SCALES)}")
    return table[scale]


def _note(base: TrainConfig, scale: str) -> str:
    return _SCALE_NOTES[scale].format(**base.to_dict())


def _prt_epochs(epochs: int) -> list[int]:
    """PRT-E for the paper's E = 40, 55, 70 of 80 epochs, scaled to ``epochs`` (distinct, in [1, epochs-1])."""
    chosen = sorted({min(max(1, round(epochs * e / 80)), epochs - 1) for e in (40, 55, 70)})
    return chosen or [1]


# ---------------------------------------------------------------------------------------------
# the presets
# ---------------------------------------------------------------------------------------------


def _pwt_fig1(scale: str) -> Preset:
    base = _base(_PWT_BASE, scale)
    runs = [PresetRun("dense", base.replace(method="dense")),
            PresetRun("pwt-l1-80", base.replace(method="pwt", criterion="l1", target=0.8))]
    runs += [PresetRun(f"prt-{e}", base.replace(method="prt", criterion="l1", target=0.8, prune_epoch=e))
             for e in _prt_epochs(base.epochs)]
    return Preset("pwt-fig1", scale, "PWT Fig. 1/2: dense vs PWT-L1 80% vs prune-then-retrain (PRT-E)",
                  tuple(runs), (_note(base, scale),))


def _pwt_fig3(scale: str) -> Preset:
    base = _base(_PWT_BASE, scale)
    targets = (0.72, 0.76, 0.80, 0.84, 0.88, 0.92) if scale == "paper" else (0.72, 0.80, 0.86, 0.92)
    runs = [PresetRun("dense", base.replace(method="dense"))]
    runs += [PresetRun(f"pwt-l1-{round(100 * t)}", base.replace(method="pwt", criterion="l1", target=t))
             for t in targets]
    return Preset("pwt-fig3", scale, "PWT Fig. 3: PWT-L1 with target pruning rates from 72% to 92%",
                  tuple(runs), (_note(base, scale),))


def _pwt_fig4(scale: str) -> Preset:
    base = _base(_PWT_BASE, scale)
    runs = [PresetRun("dense", base.replace(method="dense"))]
    runs += [PresetRun(f"pwt-l1-80-mod{k}", base.replace(method="pwt", criterion="l1", target=0.8, every=k))
             for k in (1, 2, 3, 4)]
    return Preset("pwt-fig4", scale, "PWT Fig. 4: PWT-L1 80% pruning every epoch (Mod1) to every 4th (Mod4)",
                  tuple(runs), (_note(base, scale),))


def _pwt_fig5(scale: str) -> Preset:
    base = _base(_PWT_BASE, scale)
    runs = (
        PresetRun("dense", base.replace(method="dense")),
        PresetRun("pwt-l1-80", base.replace(method="pwt", criterion="l1", target=0.8)),
        PresetRun("pwt-meanact-80", base.replace(method="pwt", criterion="mean-activation", target=0.8)),
        PresetRun("pwt-random-80", base.replace(method="pwt", criterion="random", target=0.8)),
        PresetRun("pwt-random-40", base.replace(method="pwt", criterion="random", target=0.4)),
    )
    return Preset("pwt-fig5", scale, "PWT Fig. 5: L1 norm vs mean activation vs random pruning while training",
                  runs, (_note(base, scale),))


def _ra_table2(scale: str) -> Preset:
    base = _base(_LENET_CAFFE, scale)
    runs = (
        PresetRun("dense", base.replace(method="dense")),
        PresetRun("ra-2-0.1", base.replace(method="ra", range=2.0, epsilon=0.1, partition="type")),
        PresetRun("scratch", base.replace(method="scratch", masks_from="@ra-2-0.1")),
        PresetRun("scratch-same-init", base.replace(method="scratch", masks_from="@ra-2-0.1", scratch_init="same")),
    )
    return Preset("ra-table2", scale, "RA Table 2: LeNet-5 dense vs RA-2-0.1 vs scratch-train with RA's masks",
                  runs, (_note(base, scale), "scratch: RA's masks on a fresh initialisation (seed + 1), the paper's "
                         "baseline; scratch-same-init: on the RA run's own initial weights (its winning ticket)."))


def _ra_table4(scale: str) -> Preset:
    base = _base(_RESNET, scale)
    # paper: classes extended at 10k and 20k of 64k iterations; at CPU scale the same share of the run
    interval = 10_000 if scale == "paper" else None
    runs = [PresetRun("dense", base.replace(method="dense"))]
    for delta in (float("inf"), 0.5, 0.4, 0.3):
        label = "ra-delta-inf" if delta == float("inf") else f"ra-delta-{delta}"
        runs.append(PresetRun(label, base.replace(method="ra", range=1.8, epsilon=0.1, partition="sensitivity",
                                                  delta=delta, extending_interval=interval)))
    return Preset("ra-table4", scale, "RA Table 4: partition by sensitivity with δ = ∞, 0.5, 0.4, 0.3 × mean",
                  tuple(runs), (_note(base, scale),))


_BUILDERS = {
    "pwt-fig1": _pwt_fig1,
    "pwt-fig3": _pwt_fig3,
    "pwt-fig4": _pwt_fig4,
    "pwt-fig5": _pwt_fig5,
    "ra-table2": _ra_table2,
    "ra-table4": _ra_table4,
}
PRESETS = tuple(_BUILDERS)


def get_preset(name: str, scale: str = "cpu", *, data_dir: str | None = None) -> Preset:
    """The preset ``name`` at ``scale``; ``data_dir`` is set on every run when given."""
    if name not in _BUILDERS:
        raise ConfigError(f"unknown preset '{name}'; choose one of: {', '.join(PRESETS)}")
    preset = _BUILDERS[name](scale)
    if data_dir is None:
        return preset
    runs = tuple(PresetRun(r.label, r.config.replace(data_dir=data_dir)) for r in preset.runs)
    return Preset(preset.name, preset.scale, preset.title, runs, preset.notes)
