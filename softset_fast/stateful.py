"""Stateful metrics: confusion counts accumulated over many batches, the metric computed once.

A metric of a whole evaluation set is not the mean of per-batch metrics (F1 is a ratio of
counts), so the metric classes here sum the batches' [C, T, 4] counts (tp, fn, fp, tn per
class and threshold) in float64 and apply the metric to the sums in ``compute()``. Under
torch.distributed, ``compute()`` sums the counts over the ranks with one all-reduce first.

Counts are hard by default (``approx="step"``: a prediction p counts as positive at
threshold τ when p ≥ τ), i.e. exact evaluation counts; ``approx="linear"`` or ``"sigmoid"``
accumulate the soft counts the losses train on. Counts are global only (summed over every
element of every batch): there is no ``multidim_average``.

``MetricSpec`` holds the options and does the work; ``SoftSetMetric`` (an ``nn.Module``)
and the torchmetrics twins in ``softset_fast.integrations.torchmetrics`` keep the state.
"""
from __future__ import annotations

import inspect

import torch
import torch.distributed as dist
from torch import nn

from . import metrics as _metrics
from ._grid import resolve_thresholds
from ._prepare import check_options
from .confusion import soft_confusion_matrix
from .distributed import all_reduce_counts

THRESHOLD_AVERAGES = ("mean", "none")
# float32 holds integers exactly up to 2**24: a batch with more elements is counted in float64.
FLOAT32_EXACT = 2**24


class MetricSpec:
    """The options of a stateful metric, checked once: batch counts in, metric values out.

    Args:
        metric: a name of ``softset_fast.metrics.METRICS`` ("f1", "fbeta", "accuracy", "auroc",
            "mcc", …) or a callable taking the counts ([T, 4] binary, [C, T, 4] otherwise) and
            returning values per threshold; a callable reduces the classes itself and gets
            ``metric_kwargs`` only.
        thresholds, approx, delta, k, task, num_classes, ignore_index, from_logits, backend,
            validate_args: as in :func:`softset_fast.soft_confusion_matrix`, except the default
            ``approx="step"`` (hard counts) and that ``num_classes`` is required for "multilabel"
            and "multiclass" (it fixes the state's shape [C, T, 4]).
        average: how a built-in metric reduces the classes ("macro", "micro", "weighted", "none");
            ignored for binary.
        threshold_average: "mean" averages the metric over the threshold grid (as the losses do);
            "none" keeps one value per threshold. AUROC has no threshold axis.
        zero_division: the value of a built-in metric where its denominator is zero.
        metric_kwargs: further keywords of the metric (e.g. ``{"beta": 2.0}`` for "fbeta").

    Example:
        >>> spec = MetricSpec("f1", thresholds=[0.5])
        >>> spec.value(spec.batch_counts(torch.tensor([0.9, 0.2]), torch.tensor([1, 1])))
        tensor(0.6667, dtype=torch.float64)
    """

    def __init__(self, metric="f1", *, thresholds=None, approx: str = "step", delta: float = 0.2, k: float = 10.0,
                 task: str = "binary", num_classes: int | None = None, ignore_index: int | None = None,
                 from_logits: bool = False, backend: str = "auto", validate_args: bool = True,
                 average: str = "macro", threshold_average: str = "mean", zero_division: float = 0.0,
                 metric_kwargs: dict | None = None):
        if isinstance(metric, str) and metric in _metrics.METRICS:
            self.function, self.builtin = _metrics.METRICS[metric], True
        elif callable(metric):
            self.function, self.builtin = metric, False
        else:
            raise ValueError(f"metric must be one of {sorted(_metrics.METRICS)} or a callable on the counts, "
                             f"got {metric!r}")
        check_options(approx, delta, k, task, "global")
        if task == "binary":
            if num_classes not in (None, 1):
                raise ValueError(f"num_classes must be None (or 1) for task='binary', got {num_classes!r}")
            classes = 1
        else:
            if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
                raise ValueError(f"num_classes must be a positive int for task={task!r} (it fixes the shape "
                                 f"of the accumulated counts), got {num_classes!r}")
            classes = num_classes
        if average not in _metrics.AVERAGES:
            raise ValueError(f"average must be one of {_metrics.AVERAGES}, got {average!r}")
        if threshold_average not in THRESHOLD_AVERAGES:
            raise ValueError(f"threshold_average must be one of {THRESHOLD_AVERAGES}, got {threshold_average!r}")
        # A list of floats: the grid is checked here once and cached by soft_confusion_matrix.
        grid = resolve_thresholds(thresholds, approx, "cpu").tolist()
        self.metric = metric
        self.task = task
        self.average = average
        self.threshold_average = threshold_average
        self.zero_division = zero_division
        self.metric_kwargs = dict(metric_kwargs or {})
        self.state_shape = (classes, len(grid), 4)
        self.confusion_kwargs = dict(thresholds=grid, approx=approx, delta=delta, k=k, task=task,
                                     num_classes=None if task == "binary" else classes, ignore_index=ignore_index,
                                     from_logits=from_logits, backend=backend, validate_args=validate_args)
        self.preds_dims = None  # preds.dim() of the first update: the layout every later update must keep
        self.value(self.zero_counts())  # a bad beta or metric keyword fails now, not at the end of an epoch

    def zero_counts(self, device=None) -> torch.Tensor:
        """Float64 zeros of the state's shape.

        Args:
            device: where to allocate them (None: the default device).

        Returns:
            zeros [C, T, 4] (C = 1 for binary).

        Example:
            >>> MetricSpec(task="multilabel", num_classes=2, thresholds=3).zero_counts().shape
            torch.Size([2, 3, 4])
        """
        return torch.zeros(self.state_shape, dtype=torch.float64, device=device)

    def batch_counts(self, preds: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                     device=None) -> torch.Tensor:
        """The counts of one batch, float64 [C, T, 4], without autograd.

        Args:
            preds, target, weight: as in :func:`softset_fast.soft_confusion_matrix`.
            device: the device of the state the counts are added to (None: preds' device).

        Returns:
            float64 counts of the state's shape.

        Example:
            >>> MetricSpec(thresholds=[0.5]).batch_counts(torch.tensor([0.7, 0.2]), torch.tensor([1, 1]))
            tensor([[[1., 1., 0., 0.]]], dtype=torch.float64)
        """
        if isinstance(preds, torch.Tensor):
            if device is not None and preds.device != torch.device(device):
                raise ValueError(f"preds is on {preds.device} but the metric's state is on {device}: move the "
                                 f"metric with .to({str(preds.device)!r}) (or the inputs to {device})")
            if self.preds_dims is not None and preds.dim() != self.preds_dims:
                raise ValueError(f"preds has {preds.dim()} dimensions (shape {tuple(preds.shape)}) but the first "
                                 f"update's had {self.preds_dims}: a metric accumulates one kind of input "
                                 f"(task={self.task!r}); use another metric object for another layout")
            if preds.is_floating_point() and preds.dtype != torch.float64 and preds.numel() > FLOAT32_EXACT:
                preds = preds.double()  # float32 counts of this many elements could be inexact
        with torch.no_grad():
            counts = soft_confusion_matrix(preds, target, weight=weight, **self.confusion_kwargs)
        if self.preds_dims is None:
            self.preds_dims = preds.dim()
        return counts.to(torch.float64).reshape(self.state_shape)

    def value(self, counts: torch.Tensor) -> torch.Tensor:
        """The metric of counts.

        Args:
            counts: [C, T, 4] (tp, fn, fp, tn), e.g. summed batch_counts.

        Returns:
            a scalar by default; [T] with threshold_average="none"; a leading [C] with average="none"
            (multilabel / multiclass).

        Example:
            >>> MetricSpec("accuracy", thresholds=[0.5]).value(torch.tensor([[[3.0, 1.0, 0.0, 4.0]]]))
            tensor(0.8750)
        """
        cm = counts[0] if self.task == "binary" else counts
        kwargs = dict(self.metric_kwargs)
        if self.builtin:
            kwargs["zero_division"] = self.zero_division
            if self.task != "binary":
                kwargs["average"] = self.average
        values = self.function(cm, **kwargs)
        class_dims = 1 if self.task != "binary" and self.average == "none" else 0
        if self.threshold_average == "mean" and values.dim() > class_dims:
            values = values.mean(-1)
        return values

    def final_value(self, counts: torch.Tensor, updates: torch.Tensor) -> torch.Tensor:
        """``value(counts)`` of a state, checking that it holds at least one batch.

        Args:
            counts: the accumulated counts [C, T, 4].
            updates: how many batches they hold (a number or a 0-d tensor).

        Returns:
            ``value(counts)``.

        Raises:
            RuntimeError: ``updates`` is 0 (compute() before any update()).

        Example:
            >>> spec = MetricSpec("recall", thresholds=[0.5])
            >>> spec.final_value(torch.tensor([[[1.0, 3.0, 0.0, 0.0]]]), updates=1)
            tensor(0.2500)
        """
        if int(updates) == 0:
            raise RuntimeError("compute() was called before any update(): there are no counts to compute "
                               "the metric of (on any rank); call update(preds, target) first")
        return self.value(counts)

    def describe(self) -> str:
        """The options, for ``repr``.

        Returns:
            "name=value, ..." with the number of thresholds and every option.

        Example:
            >>> MetricSpec("mcc").describe().split(", ")[:3]
            ["metric='mcc'", 'thresholds=9', "approx='step'"]
        """
        options = {key: value for key, value in self.confusion_kwargs.items() if key != "thresholds"}
        options.update(average=self.average, threshold_average=self.threshold_average,
                       zero_division=self.zero_division, metric_kwargs=self.metric_kwargs)
        return f"metric={self.metric!r}, thresholds={self.state_shape[1]}, " + \
            ", ".join(f"{key}={value!r}" for key, value in options.items())


# The keywords MetricSpec takes after ``metric``: the torchmetrics twins pass the others to torchmetrics.
SPEC_OPTIONS = tuple(inspect.signature(MetricSpec).parameters)[1:]


class SoftSetMetric(nn.Module):
    """A confusion-matrix metric over many batches: ``update`` adds counts, ``compute`` gives the metric.

    The state is two buffers (so ``state_dict`` / ``load_state_dict`` and ``.to(device)`` carry it):
    ``counts``, float64 [C, T, 4] (tp, fn, fp, tn per class and threshold; C = 1 for binary), and
    ``updates``, the number of batches added. Casting the module (``.half()``, ``.to(torch.bfloat16)``)
    moves the state but keeps it float64.

    Args:
        metric: a name of ``softset_fast.metrics.METRICS`` or a callable on the counts (see
            :class:`MetricSpec`). Default "f1".
        sync_dist: sum the counts over ``process_group`` in ``compute()`` (one all-reduce); None
            (default): when torch.distributed is initialised. Every rank of the group must then call
            ``compute()``, also one that saw no batch.
        process_group: the group to sum over (None: the world).
        **options: the keywords of :class:`MetricSpec`: thresholds (None: 0.1, …, 0.9),
            approx ("step"), delta, k, task ("binary"), num_classes (required for multilabel /
            multiclass), ignore_index, from_logits, backend, validate_args, average ("macro"),
            threshold_average ("mean"), zero_division (0.0), metric_kwargs.

    Example:
        >>> metric = SoftSetMetric("precision", thresholds=[0.5])
        >>> metric.update(torch.tensor([0.9, 0.6]), torch.tensor([1, 0]))
        >>> metric.update(torch.tensor([0.8, 0.1]), torch.tensor([1, 1]))
        >>> metric.compute()
        tensor(0.6667, dtype=torch.float64)
    """

    def __init__(self, metric="f1", *, sync_dist: bool | None = None, process_group=None, **options):
        super().__init__()
        if "multidim_average" in options:
            raise TypeError("multidim_average is not an option of a stateful metric: it accumulates global "
                            "counts only (per-sample values need no state: use softset_fast.metrics on "
                            "soft_confusion_matrix(..., multidim_average='samplewise'))")
        if sync_dist not in (None, True, False):
            raise ValueError(f"sync_dist must be None (when torch.distributed is initialised), True or False, "
                             f"got {sync_dist!r}")
        self.spec = MetricSpec(metric, **options)
        self.sync_dist = sync_dist
        self.process_group = process_group
        self.register_buffer("counts", self.spec.zero_counts())
        self.register_buffer("updates", torch.zeros((), dtype=torch.int64))

    def update(self, preds: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> None:
        """Adds one batch's counts to the state.

        Args:
            preds: probabilities (logits with ``from_logits=True``): binary any shape, multilabel /
                multiclass [N, C, ...]; float16, bfloat16, float32 or float64. The number of
                dimensions must stay that of the first update.
            target: binary / multilabel: preds' shape, {0, 1} or soft labels; multiclass: class
                indices [N, ...].
            weight: optional non-negative per-element weights of target's shape.

        Returns:
            None.

        Example:
            >>> metric = SoftSetMetric("accuracy", thresholds=[0.5])
            >>> metric.update(torch.tensor([0.7, 0.2, 0.4]), torch.tensor([1, 0, 1]))
            >>> metric.counts[0, 0].tolist()   # tp, fn, fp, tn
            [1.0, 1.0, 0.0, 1.0]
        """
        self._add(self.spec.batch_counts(preds, target, weight, self.counts.device))

    def forward(self, preds: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """``update`` plus the metric of this batch alone (local: not synced, not the accumulated value).

        Args:
            preds, target, weight: as in :meth:`update`.

        Returns:
            the metric of this batch's counts, shaped like :meth:`compute`'s result.

        Example:
            >>> metric = SoftSetMetric("recall", thresholds=[0.5])
            >>> metric(torch.tensor([0.7, 0.2]), torch.tensor([1, 1]))
            tensor(0.5000, dtype=torch.float64)
        """
        counts = self.spec.batch_counts(preds, target, weight, self.counts.device)
        self._add(counts)
        return self.spec.value(counts)

    def _add(self, counts: torch.Tensor) -> None:
        self.counts += counts
        self.updates += 1

    def _synced(self) -> bool:
        if self.sync_dist is None:
            return dist.is_available() and dist.is_initialized()
        return self.sync_dist

    @torch.no_grad()
    def compute(self) -> torch.Tensor:
        """The metric of the accumulated counts, summed over the ranks first when synced.

        The state itself stays local (updates may continue after ``compute``).

        Returns:
            float64: a scalar by default; [T] with threshold_average="none"; [C] (or [C, T]) with
            average="none" for multilabel / multiclass.

        Raises:
            RuntimeError: no rank has called ``update`` since the construction or the last ``reset``.

        Example:
            >>> metric = SoftSetMetric("f1", thresholds=[0.3, 0.6], threshold_average="none")
            >>> metric.update(torch.tensor([0.5, 0.9, 0.1]), torch.tensor([1, 1, 0]))
            >>> metric.compute()
            tensor([1.0000, 0.6667], dtype=torch.float64)
        """
        counts, updates = self.counts, self.updates
        if self._synced():
            # One collective for both: the update count decides the no-update error on every rank alike.
            packed = torch.cat([counts.flatten(), updates.to(torch.float64).reshape(1)])
            packed = all_reduce_counts(packed, self.process_group)
            counts, updates = packed[:-1].reshape(counts.shape), packed[-1]
        return self.spec.final_value(counts, updates)

    def reset(self) -> None:
        """Zeroes the state (counts and the number of updates).

        Returns:
            None.

        Example:
            >>> metric = SoftSetMetric()
            >>> metric.update(torch.rand(8), torch.randint(0, 2, (8,)))
            >>> metric.reset()
            >>> int(metric.updates), float(metric.counts.sum())
            (0, 0.0)
        """
        self.counts.zero_()
        self.updates.zero_()

    def _apply(self, fn, *args, **kwargs):
        # Module casts (.half(), .to(torch.bfloat16)) convert float buffers: the counts follow
        # the device only, so the sums stay exact.
        counts = self.counts
        super()._apply(fn, *args, **kwargs)
        self.counts = counts.to(self.counts.device)
        return self

    def extra_repr(self) -> str:
        return self.spec.describe()


class _FBeta:
    def __init__(self, beta: float = 1.0, **options):
        super().__init__("fbeta", metric_kwargs={"beta": beta}, **options)


class _Accuracy:
    def __init__(self, **options):
        super().__init__("accuracy", **options)


class _AUROC:
    def __init__(self, **options):
        super().__init__("auroc", **options)


class FBetaMetric(_FBeta, SoftSetMetric):
    """F_β over many batches (beta=1: F1), averaged over the threshold grid by default.

    Args:
        beta: the weight of recall (> 0); default 1.0 (F1).
        **options: the keywords of :class:`SoftSetMetric` (thresholds, approx="step", task, …).

    Returns:
        ``compute()``: F_β of the accumulated counts (see :meth:`SoftSetMetric.compute`).

    Example:
        >>> f1 = FBetaMetric(thresholds=[0.5])
        >>> f1.update(torch.tensor([0.8, 0.3, 0.6]), torch.tensor([1, 1, 0]))
        >>> f1.compute()
        tensor(0.5000, dtype=torch.float64)
    """


class AccuracyMetric(_Accuracy, SoftSetMetric):
    """Accuracy over many batches, averaged over the threshold grid by default.

    Args:
        **options: the keywords of :class:`SoftSetMetric`.

    Returns:
        ``compute()``: (tp + tn) / (tp + fn + fp + tn) of the accumulated counts.

    Example:
        >>> accuracy = AccuracyMetric(thresholds=[0.5])
        >>> accuracy.update(torch.tensor([0.8, 0.3, 0.6, 0.1]), torch.tensor([1, 1, 0, 0]))
        >>> accuracy.compute()
        tensor(0.5000, dtype=torch.float64)
    """


class AUROCMetric(_AUROC, SoftSetMetric):
    """AUROC over many batches: the trapezoid rule through the grid's ROC points, closed by (0, 0), (1, 1).

    The area is only as fine as the grid: with the default 9 thresholds it is a coarse estimate;
    pass e.g. ``thresholds=199`` for evaluation.

    Args:
        **options: the keywords of :class:`SoftSetMetric`.

    Returns:
        ``compute()``: the area (a scalar, or [C] with average="none").

    Example:
        >>> auroc = AUROCMetric(thresholds=99)
        >>> auroc.update(torch.tensor([0.9, 0.6, 0.4, 0.2]), torch.tensor([1, 0, 1, 0]))
        >>> auroc.compute()
        tensor(0.7500, dtype=torch.float64)
    """
