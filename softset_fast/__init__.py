"""softset_fast: confusion-matrix metrics (F1, accuracy, AUROC, …) as differentiable losses.

Implements Tsoi et al., "Bridging the Gap: Unifying the Training and Evaluation
of Neural Network Binary Classifiers" (NeurIPS 2022) with fused kernels.
"""
from . import metrics, reference
from .backends.registry import available_backends
from ._config import show_config
from ._version import __version__
from .confusion import soft_confusion_matrix
from .losses import (AccuracyLoss, AUROCLoss, FBetaLoss, SoftSetLoss, StepGradientWarning, accuracy_loss, auroc_loss,
                     f1_loss, fbeta_loss, metric_loss)
from .stateful import AccuracyMetric, AUROCMetric, FBetaMetric, SoftSetMetric


__all__ = [
    "soft_confusion_matrix", "available_backends", "metrics", "reference",
    "metric_loss", "fbeta_loss", "f1_loss", "accuracy_loss", "auroc_loss",
    "SoftSetLoss", "FBetaLoss", "AccuracyLoss", "AUROCLoss", "StepGradientWarning",
    "SoftSetMetric", "FBetaMetric", "AccuracyMetric", "AUROCMetric", "show_config", "__version__",
]
