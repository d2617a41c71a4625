"""Training cost model: MACs and memory accesses of conv and linear layers (PWT paper, Section V).

One module per concern, each with the derivations it implements:

* :mod:`~intrain.costs.results` -- the result types (:class:`MemoryAccess`, :class:`LayerCost`, ...);
* :mod:`~intrain.costs.probe` -- how a model's pruning state is measured (one probe forward pass);
* :mod:`~intrain.costs.counting` -- Table I per layer: :func:`layer_costs`, :func:`training_cost`,
  :func:`uniform_pruning_cost`;
* :mod:`~intrain.costs.formulas` -- the paper's formulas: :func:`schedule_fractions`,
  :func:`closed_form_savings` (and why it differs from :func:`exact_schedule_cost`),
  :func:`latency_model`;
* :mod:`~intrain.costs.accounting` -- what a run records: :class:`EpochCostMeter`,
  :func:`run_cost_summary`, :func:`measured_latency`, :func:`default_retrain_epochs`;
* :mod:`~intrain.costs.report` -- :func:`format_cost_table` and :func:`cost_report`, what
  ``intrain cost`` prints, for :func:`model_for_cost`.
"""

from intrain.costs.accounting import EpochCostMeter, default_retrain_epochs, measured_latency, run_cost_summary
from intrain.costs.counting import MODES, layer_costs, training_cost, uniform_pruning_cost
from intrain.costs.formulas import closed_form_savings, exact_schedule_cost, latency_model, schedule_fractions
from intrain.costs.report import cost_report, format_cost_table, model_for_cost
from intrain.costs.results import CostSummary, LatencyEstimate, LayerCost, MemoryAccess, SavingsEstimate

__all__ = [
    "MODES",
    "MemoryAccess",
    "LayerCost",
    "CostSummary",
    "SavingsEstimate",
    "LatencyEstimate",
    "layer_costs",
    "training_cost",
    "uniform_pruning_cost",
    "format_cost_table",
    "schedule_fractions",
    "closed_form_savings",
    "exact_schedule_cost",
    "latency_model",
    "EpochCostMeter",
    "default_retrain_epochs",
    "run_cost_summary",
    "measured_latency",
    "model_for_cost",
    "cost_report",
]
