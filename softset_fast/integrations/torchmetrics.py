"""The stateful metrics of softset_fast.stateful as ``torchmetrics.Metric`` subclasses.

Lightning's ``self.log("val_f1", metric)`` accepts these: torchmetrics keeps the state
(``counts`` float64 [C, T, 4] and ``updates``, both summed over ranks with
``dist_reduce_fx="sum"``), syncs it before ``compute()`` and resets it after each epoch.
Imported only on request: ``import softset_fast`` does not import torchmetrics.

    from softset_fast.integrations.torchmetrics import FBetaMetric
    self.val_f1 = FBetaMetric(thresholds=[0.5])       # in a LightningModule's __init__
"""
from __future__ import annotations

import torch

try:
    from torchmetrics import Metric
except ImportError as err:  # torchmetrics is an optional dependency
    raise ImportError("softset_fast.integrations.torchmetrics needs torchmetrics: pip install torchmetrics "
                      "(softset_fast.SoftSetMetric needs nothing beyond torch)") from err

from ..stateful import SPEC_OPTIONS, MetricSpec, _Accuracy, _AUROC, _FBeta

__all__ = ["SoftSetMetric", "FBetaMetric", "AccuracyMetric", "AUROCMetric"]


class SoftSetMetric(Metric):
    """torchmetrics twin of :class:`softset_fast.SoftSetMetric` (same options, same values).

    Args:
        metric: a name of ``softset_fast.metrics.METRICS`` or a callable on the counts. Default "f1".
        **options: the keywords of :class:`softset_fast.stateful.MetricSpec` (thresholds,
            approx="step", task="binary", num_classes, ignore_index, from_logits, backend, average,
            threshold_average, zero_division, metric_kwargs, …); any other keyword goes to
            ``torchmetrics.Metric`` (e.g. ``dist_sync_on_step``, ``process_group``).

    Returns:
        ``compute()``: the metric of the counts summed over batches (and ranks), float64;
        ``forward()``: the metric of this batch alone, after adding it to the state.

    Example:
        >>> metric = SoftSetMetric("f1", thresholds=[0.5])
        >>> metric.update(torch.tensor([0.9, 0.2]), torch.tensor([1, 1]))
        >>> metric.compute()
        tensor(0.6667, dtype=torch.float64)
    """

    is_differentiable = False  # hard counts by default; train with the losses
    higher_is_better = True
    full_state_update = False  # counts add up: forward updates once and reduces the states

    def __init__(self, metric="f1", **options):
        spec_options = {key: options.pop(key) for key in SPEC_OPTIONS if key in options}
        super().__init__(**options)
        self.spec = MetricSpec(metric, **spec_options)
        self.add_state("counts", default=self.spec.zero_counts(), dist_reduce_fx="sum", persistent=True)
        self.add_state("updates", default=torch.zeros((), dtype=torch.int64), dist_reduce_fx="sum",
                       persistent=True)

    def update(self, preds: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> None:
        """Adds one batch's counts (arguments as in :meth:`softset_fast.SoftSetMetric.update`).

        Args:
            preds: probabilities (logits with ``from_logits=True``).
            target: targets of the task's shape.
            weight: optional non-negative per-element weights.

        Returns:
            None.

        Example:
            >>> metric = AccuracyMetric(thresholds=[0.5])
            >>> metric.update(torch.tensor([0.7, 0.2]), torch.tensor([1, 1]))
            >>> metric.counts[0, 0].tolist()
            [1.0, 1.0, 0.0, 0.0]
        """
        self.counts += self.spec.batch_counts(preds, target, weight, self.counts.device)
        self.updates += 1

    def compute(self) -> torch.Tensor:
        """The metric of the (synced) counts.

        Returns:
            float64, shaped as :meth:`softset_fast.SoftSetMetric.compute`'s result.

        Raises:
            RuntimeError: no batch was added on any rank.

        Example:
            >>> metric = SoftSetMetric("recall", thresholds=[0.5])
            >>> metric.update(torch.tensor([0.7, 0.2]), torch.tensor([1, 1]))
            >>> metric.compute()
            tensor(0.5000, dtype=torch.float64)
        """
        return self.spec.final_value(self.counts, self.updates)

    def _apply(self, fn, exclude_state=()):
        # torchmetrics casts states with .to(dtype); the counts follow the device only, so the
        # float64 sums stay exact when a model is cast to half or bfloat16.
        this = super()._apply(fn, exclude_state=(*exclude_state, "counts"))
        device = fn(torch.zeros(1, device=this.counts.device)).device
        this.counts = this.counts.to(device)
        this._defaults["counts"] = this._defaults["counts"].to(device)
        return this


class FBetaMetric(_FBeta, SoftSetMetric):
    """torchmetrics twin of :class:`softset_fast.FBetaMetric` (beta=1.0: F1).

    Args:
        beta: the weight of recall (> 0).
        **options: as for :class:`SoftSetMetric`.

    Returns:
        ``compute()``: F_β of the accumulated counts, averaged over the grid by default.

    Example:
        >>> f1 = FBetaMetric(thresholds=[0.5])
        >>> f1(torch.tensor([0.8, 0.3, 0.6]), torch.tensor([1, 1, 0]))
        tensor(0.5000, dtype=torch.float64)
    """


class AccuracyMetric(_Accuracy, SoftSetMetric):
    """torchmetrics twin of :class:`softset_fast.AccuracyMetric`.

    Args:
        **options: as for :class:`SoftSetMetric`.

    Returns:
        ``compute()``: accuracy of the accumulated counts, averaged over the grid by default.

    Example:
        >>> accuracy = AccuracyMetric(thresholds=[0.5])
        >>> accuracy(torch.tensor([0.8, 0.3]), torch.tensor([1, 0]))
        tensor(1., dtype=torch.float64)
    """


class AUROCMetric(_AUROC, SoftSetMetric):
    """torchmetrics twin of :class:`softset_fast.AUROCMetric` (pass a fine grid, e.g. thresholds=199).

    Args:
        **options: as for :class:`SoftSetMetric`.

    Returns:
        ``compute()``: the area under the grid's ROC curve.

    Example:
        >>> auroc = AUROCMetric(thresholds=99)
        >>> auroc(torch.tensor([0.9, 0.6, 0.4, 0.2]), torch.tensor([1, 0, 1, 0]))
        tensor(0.7500, dtype=torch.float64)
    """
