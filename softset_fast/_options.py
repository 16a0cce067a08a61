"""The public keyword options: their types, their checks and their documentation, in one place.

Every public function and loss module spells its options out in its own signature, so that
help(), inspect.signature and type checkers see them. What they share lives here: the
``Literal`` types, the checks a loss runs at the call and at module construction, the
``strict_keywords`` decorator (an unknown keyword names the valid ones) and the docstring
text of each option, filled into every docstring by :func:`document`.
"""
from __future__ import annotations

import functools
import inspect
import math
from typing import Literal, Sequence, Union, get_args

import torch

from ._grid import grid_for
from ._prepare import check_bool, check_options

Approx = Literal["linear", "sigmoid", "step"]
Task = Literal["binary", "multilabel", "multiclass"]
MultidimAverage = Literal["global", "samplewise"]
Average = Literal["none", "macro", "micro", "weighted"]
Backend = Literal["auto", "reference", "cpu", "cuda", "triton"]
Thresholds = Union[None, int, Sequence[float], torch.Tensor]
ClassWeight = Union[torch.Tensor, Sequence[float], None]

AVERAGES = get_args(Average)
BACKEND_NAMES = get_args(Backend)

# soft_confusion_matrix's keywords, in its signature's order.
CONFUSION_OPTIONS = ("thresholds", "approx", "delta", "k", "task", "num_classes", "weight", "ignore_index",
                     "multidim_average", "from_logits", "backend", "validate_args", "sync_dist", "process_group")
# The class-average keywords every loss adds, then the keywords a loss module keeps (weight goes to forward()).
AVERAGE_OPTIONS = ("average", "classes", "class_weight", "ignore_absent_classes")
LOSS_OPTIONS = AVERAGE_OPTIONS + CONFUSION_OPTIONS
MODULE_OPTIONS = tuple(name for name in LOSS_OPTIONS if name != "weight")


def pick(namespace: dict, names: Sequence[str]) -> dict:
    """The entries ``names`` of a function's ``locals()``: passes explicit keywords on without listing them again."""
    return {name: namespace[name] for name in names}


# ---- checks ------------------------------------------------------------------------------------

def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_average(average, task: str) -> str:
    """The average as one of AVERAGES (None is "none", as in torchmetrics); any other value is an error."""
    if average is None:
        return "none"
    if not isinstance(average, str) or average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES} (or None for 'none'), got {average!r}"
                         + (" (task='binary' has one class, so every average gives the same loss)"
                            if task == "binary" else ""))
    return average


def check_metric_kwargs(metric_kwargs: dict) -> None:
    """beta and zero_division, the two numbers every built-in metric takes."""
    if "beta" in metric_kwargs:
        beta = metric_kwargs["beta"]
        if not _is_number(beta) or not (math.isfinite(beta) and beta > 0):
            raise ValueError(f"beta must be a finite number > 0, got {beta!r}")
    if "zero_division" in metric_kwargs:
        zero_division = metric_kwargs["zero_division"]
        if not _is_number(zero_division) or not math.isfinite(zero_division):
            raise ValueError(f"zero_division must be a finite number (the value of 0/0), got {zero_division!r}")
    if "average" in metric_kwargs:
        raise TypeError("pass average= to the loss itself, not in metric_kwargs")


def check_classes(classes, task: str, num_classes: int | None) -> tuple | None:
    """``classes`` as a tuple of distinct class indices (checked against the class count when known)."""
    if classes is None:
        return None
    if task == "binary":
        raise ValueError("classes needs task='multilabel' or 'multiclass' (a binary task has one class)")
    if isinstance(classes, torch.Tensor):
        if classes.dim() != 1 or classes.is_floating_point() or classes.is_complex() or classes.dtype == torch.bool:
            raise TypeError(f"classes must be a sequence (or 1-D integer tensor) of class indices, got {classes!r}")
        classes = classes.tolist()
    if isinstance(classes, (str, bytes)) or not isinstance(classes, (Sequence, range)):
        raise TypeError(f"classes must be a sequence of class indices, got {classes!r}")
    classes = tuple(classes)
    if not classes or not all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        raise ValueError(f"classes must be a non-empty sequence of int class indices, got {classes!r}")
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes must not repeat a class, got {classes!r}")
    if num_classes is not None and not all(0 <= c < num_classes for c in classes):
        raise ValueError(f"classes must lie in [0, {num_classes}) (the number of classes), got {classes!r}")
    return classes


def check_class_weight(class_weight, task: str, average: str, num_classes: int | None, validate_args: bool = True):
    """``class_weight`` as a 1-D tensor of non-negative finite weights (or None); its values are
    read only with ``validate_args`` (on a GPU that synchronises)."""
    if class_weight is None:
        return None
    if task == "binary":
        raise ValueError("class_weight needs task='multilabel' or 'multiclass'; for a binary task weight the "
                         "samples instead: weight=torch.where(target == 1, w1, w0)")
    if average != "macro":
        raise ValueError(f"class_weight weights the classes of the macro average and needs average='macro', "
                         f"got average={average!r}")
    try:
        values = torch.as_tensor(class_weight).detach()
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"class_weight must be a 1-D tensor or sequence of numbers, got {class_weight!r}") from err
    if values.dim() != 1 or values.dtype == torch.bool or values.is_complex():
        raise TypeError(f"class_weight must be a 1-D tensor or sequence of real numbers, one per class, "
                        f"got {class_weight!r}")
    if validate_args and values.device.type != "meta":
        values64 = values.to(torch.float64)
        if not bool(torch.isfinite(values64).all()) or bool((values64 < 0).any()):
            raise ValueError(f"class_weight must hold finite, non-negative numbers, got {class_weight!r}")
        if not bool((values64 > 0).any()):
            raise ValueError("class_weight must give at least one class a weight > 0")
    if num_classes is not None and values.shape[0] != num_classes:
        raise ValueError(f"class_weight must have one weight per class ({num_classes}), got {values.shape[0]}")
    return values


def check_absent(ignore_absent_classes, task: str, average: str) -> None:
    check_bool("ignore_absent_classes", ignore_absent_classes)
    if ignore_absent_classes and task == "binary":
        raise ValueError("ignore_absent_classes needs task='multilabel' or 'multiclass'")
    if ignore_absent_classes and average != "macro":
        raise ValueError(f"ignore_absent_classes leaves classes out of the macro average and needs "
                         f"average='macro', got average={average!r}")


def check_loss_options(*, average, classes, class_weight, ignore_absent_classes, thresholds, approx, delta, k,
                       task, num_classes, ignore_index, multidim_average, from_logits, backend, validate_args,
                       sync_dist, **_ignored) -> dict:
    """Every option of a loss module that can be checked without the data (at construction, so that
    a bad one fails there and not at the first forward); returns the normalised class options."""
    check_options(approx, delta, k, task, multidim_average)
    if not isinstance(thresholds, torch.Tensor) or thresholds.device.type == "cpu":
        grid_for(thresholds, approx, float(delta), "cpu")   # the grid's checks (cached for Python grids)
    for name, value in (("from_logits", from_logits), ("validate_args", validate_args)):
        check_bool(name, value)
    if not isinstance(backend, str) or backend not in BACKEND_NAMES:
        raise ValueError(f"backend must be one of {BACKEND_NAMES}, got {backend!r}")
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                    or num_classes < 1):
        raise ValueError(f"num_classes must be a positive int or None, got {num_classes!r}")
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise TypeError(f"ignore_index must be an int or None, got {ignore_index!r}")
    return check_class_options(average, classes, class_weight, ignore_absent_classes, task, num_classes,
                               validate_args, sync_dist)


def check_class_options(average, classes, class_weight, ignore_absent_classes, task, num_classes, validate_args,
                        sync_dist) -> dict:
    """The options a loss call checks itself (_prepare.resolve checks the others): the average and the
    class options, normalised. The common call (built-in average, no class options) costs a few tests."""
    check_bool("sync_dist", sync_dist)
    if classes is None and class_weight is None and ignore_absent_classes is False and average in AVERAGES:
        return dict(average=average, classes=None, class_weight=None)
    average = check_average(average, task)
    check_absent(ignore_absent_classes, task, average)
    return dict(average=average, classes=check_classes(classes, task, num_classes),
                class_weight=check_class_weight(class_weight, task, average, num_classes, validate_args))


# ---- keywords ----------------------------------------------------------------------------------

def strict_keywords(function):
    """An unknown keyword raises a TypeError that names it and lists the valid ones
    (Python's own message lists none). Costs nothing on a good call."""
    parameters = inspect.signature(function).parameters
    valid = [name for name, p in parameters.items()
             if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and name != "self"]

    @functools.wraps(function)
    def checked(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except TypeError:
            unknown = sorted(set(kwargs) - set(valid))
            if not unknown:
                raise
            name = function.__qualname__.removesuffix(".__init__")
            hint = "; a loss module takes weight in forward(preds, target, weight)" if "weight" in unknown else ""
            raise TypeError(f"{name}() got unexpected keyword argument(s) {unknown}; valid keywords: "
                            f"{', '.join(valid)}{hint}") from None
    return checked


# ---- documentation -----------------------------------------------------------------------------

OPTION_DOCS = {
    "preds": "probabilities in [0, 1] (logits with ``from_logits=True``); float16, bfloat16, float32\n"
             "or float64.",
    "target": "binary / multilabel: preds' shape, bool, {0, 1} integers or soft labels in [0, 1];\n"
              "multiclass: integer class indices (no one-hot).",
    "metric": "a name of :data:`softset_fast.metrics.METRICS` (e.g. \"f1\", \"mcc\", \"auroc\"; default \"f1\")\n"
              "or a callable taking counts [..., C, T, 4] and returning [..., C, T] (or [..., C]).",
    "cm": "counts [..., T, 4] holding (tp, fn, fp, tn) per threshold, e.g. from\n"
          ":func:`softset_fast.soft_confusion_matrix`; [..., C, T, 4] with a class axis.",
    "zero_division": "the value where a denominator is zero (e.g. no positives), with a zero gradient;\n"
                     "default 0.0. Must be a finite number.",
    "beta": "β > 0, the weight of recall against precision (β = 2: recall counts twice); default 1.0.",
    "metric_kwargs": "more keywords of the metric (e.g. {\"beta\": 2.0, \"zero_division\": 1.0}).",
    "average": "how the class axis is reduced (task \"multilabel\" / \"multiclass\"; a binary task has one\n"
               "class and any valid average gives the same loss): \"macro\" (default) the unweighted mean of\n"
               "the per-class losses, \"weighted\" weighted by each class's support tp + fn, \"micro\" the\n"
               "counts summed over classes first, \"none\" (or None) the per-class losses, shape [C].",
    "classes": "the class indices that enter the average (default None: all), e.g. range(1, C) to\n"
               "leave out a background class 0; with average=\"none\" the result has one loss per entry,\n"
               "in this order. Multilabel / multiclass only.",
    "class_weight": "a weight ≥ 0 per class, [C] (default None: equal weights), for average=\"macro\":\n"
                    "the loss is Σ_c w_c·loss_c / Σ_c w_c over the classes in the average.",
    "ignore_absent_classes": "leave out of the macro average each class with no positives in the\n"
                             "batch (tp + fn = 0; per sample with multidim_average=\"samplewise\"), whose\n"
                             "F1 / Jaccard loss is a constant 1 without gradient. Default False, as\n"
                             "torchmetrics; True is like segmentation_models_pytorch's Dice / Jaccard losses,\n"
                             "but the mean is over the present classes only. A batch with no class present\n"
                             "gives a loss of 0.",
    "thresholds": "None (default: 0.1, 0.2, …, 0.9), an int T (T evenly spaced points in (0, 1)),\n"
                  "a list or a 1-D tensor, strictly ascending.",
    "approx": "the step's approximation: \"linear\" (default; paper Eq. 5, parameter ``delta``),\n"
              "\"sigmoid\" (slope ``k``) or \"step\" (exact counts, zero gradient: evaluation only; a\n"
              "loss on preds that require grad warns once).",
    "delta": "δ in (0, 0.5) of approx=\"linear\": H̃ = δ where the middle segment starts; default 0.2.",
    "k": "the slope k > 0 of approx=\"sigmoid\", H̃ = 1 / (1 + exp(−k (p − τ))); default 10.0.",
    "task": "\"binary\" (default; any shape), \"multilabel\" (preds and target [N, C, ...]) or\n"
            "\"multiclass\" (preds [N, C, ...], target class indices [N, ...]).",
    "num_classes": "optional, checked against preds.shape[1] (multilabel / multiclass).",
    "weight": "non-negative per-element weights of target's shape (default None: all 1).",
    "ignore_index": "a target value whose elements are left out entirely (default None). Binary /\n"
                    "multilabel: a value outside {0, 1}. Multiclass: any int, also a class (e.g. a\n"
                    "segmentation's background 0); that class then has no positives and enters the\n"
                    "average as an absent class unless ``classes`` or ``ignore_absent_classes`` leave it out.",
    "multidim_average": "\"global\" (default) sums over the batch; \"samplewise\" keeps one count per\n"
                        "sample (losses average over the samples).",
    "from_logits": "apply sigmoid (binary, multilabel) or softmax over dim 1 (multiclass) to preds\n"
                   "first; default False (preds are probabilities in [0, 1]).",
    "backend": "\"auto\" (default: the fused kernel for the tensors' device when built, else the\n"
               "reference with a warning), \"reference\", \"cpu\", \"cuda\" or \"triton\".",
    "validate_args": "check the data's values (ranges, NaN); one extra read of the inputs. Default True.",
    "sync_dist": "sum the counts over ``process_group`` with a differentiable all-reduce (DDP\n"
                 "training; needs an initialised process group and multidim_average=\"global\").\n"
                 "Default False.",
    "process_group": "the group of ``sync_dist`` (default None: the world).",
}

BLOCKS = {
    "loss_shape": "preds [N] or any shape (binary), [N, C, ...] (multilabel, multiclass); target as\n"
                  "preds (binary, multilabel) or [N, ...] class indices (multiclass); weight as target.",
    "loss_returns": "a 0-d tensor, 1 − the metric averaged over the thresholds (and classes, and\n"
                    "samples with multidim_average=\"samplewise\"); [C] per-class losses (or\n"
                    "[len(classes)]) with average=\"none\" for task multilabel / multiclass.",
    "metric_shape": "cm [..., T, 4] → [..., T]; with a class axis cm [..., C, T, 4] → [..., C, T]\n"
                    "(average=\"none\") or [..., T] (any other average).",
}


def _documented(doc: str) -> set:
    return {line.strip().split(":")[0] for line in doc.splitlines() if ":" in line}


def _options_text(names, doc: str, docs: dict) -> str:
    documented = _documented(doc)
    entries = []
    for name in names:
        if name in docs and name not in documented:
            first, *rest = docs[name].splitlines()
            entries += [f"{name}: {first}"] + ["    " + line for line in rest]
    return "\n".join(entries)


# Docstring lines "{metric_sections}" / "{loss_sections}": Args, then these (title, BLOCKS key) sections.
SECTIONS = {
    "metric_sections": [("Shape", "metric_shape")],
    "loss_sections": [("Shape", "loss_shape"), ("Returns", "loss_returns")],
}

METRIC_DOCS = {
    **OPTION_DOCS,
    "average": "how a class axis (the one before T) is reduced: \"none\" (default, or None) keeps it,\n"
               "\"macro\" the unweighted mean over classes, \"weighted\" weighted by each class's support\n"
               "tp + fn (uniform when no class has positives), \"micro\" the counts summed over classes first.",
}


def document(obj, docs: dict = OPTION_DOCS):
    """Fills ``obj``'s docstring: a line ``{options}`` becomes the Args entries of its signature's
    shared options (those not documented by hand, texts from ``docs``), ``{metric_sections}`` a
    metric's Args and Shape, ``{name}`` a block of BLOCKS."""
    signature = inspect.signature(obj.__init__ if isinstance(obj, type) else obj)
    doc = obj.__doc__
    lines = []
    for line in doc.splitlines():
        key = line.strip()[1:-1] if line.strip().startswith("{") and line.strip().endswith("}") else None
        if key == "options":
            text = _options_text(signature.parameters, doc, docs)
        elif key in SECTIONS:  # Args (the options), then the sections of BLOCKS
            sections = [("Args", _options_text(signature.parameters, doc, docs))]
            sections += [(title, BLOCKS[block]) for title, block in SECTIONS[key]]
            text = "\n\n".join("\n".join([f"{title}:"] + ["    " + entry for entry in body.splitlines()])
                               for title, body in sections if body)
        elif key in BLOCKS:
            text = BLOCKS[key]
        else:
            lines.append(line)
            continue
        indent = line[:len(line) - len(line.lstrip())]
        lines += [indent + entry if entry else "" for entry in text.splitlines()]
    obj.__doc__ = "\n".join(lines)
    return obj

