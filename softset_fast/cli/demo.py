"""``python -m softset_fast demo``: the protocol of Tsoi et al. (NeurIPS 2022) §5.1.

An MLP is trained on an imbalanced binary dataset with BCE and with the soft-set
F1, accuracy, AUROC and F2 losses, over several seeds. On the test split it reports
F1, accuracy, precision and recall averaged over τ = 0.1, …, 0.9 with HARD counts
(approx="step"), and the exact AUROC (hard counts at every distinct test score), as mean ± std
over seeds.

The default dataset is generated deterministically in plain torch (no download);
``--dataset mammography | adult | creditcard`` trains on one of the paper's public datasets,
downloaded from OpenML on first use (datasets.py), ``--csv PATH --label-col NAME`` on the
user's numeric CSV.
"""
from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import os
import time
import warnings
from dataclasses import dataclass

import torch
from torch import nn

import softset_fast as sf
from softset_fast.backends.registry import resolve_backend, unavailable_reason
from softset_fast.cli import datasets, extras
from softset_fast.cli.progress import progress_bar

REPORTED = ("f1", "accuracy", "auroc", "precision", "recall")
CURVES = ("f1", "accuracy", "precision", "recall")   # metric-vs-threshold curves in the plot
REPORT_THRESHOLDS = [t / 10 for t in range(1, 10)]   # the paper's τ = 0.1 … 0.9
CURVE_THRESHOLDS = [t / 100 for t in range(1, 100)]  # τ = 0.01 … 0.99 for the plot

# The losses of the paper's comparison: name -> loss(logits, target) on a batch.
LOSSES = {
    "bce": lambda logits, y: nn.functional.binary_cross_entropy_with_logits(logits, y.float()),
    "f1": lambda logits, y: sf.fbeta_loss(logits, y, beta=1.0, from_logits=True),
    "accuracy": lambda logits, y: sf.accuracy_loss(logits, y, from_logits=True),
    "auroc": lambda logits, y: sf.auroc_loss(logits, y, from_logits=True),
    "f2": lambda logits, y: sf.fbeta_loss(logits, y, beta=2.0, from_logits=True),
}


@dataclass
class Dataset:
    name: str
    x: torch.Tensor        # [N, F] float32, numeric columns standardised with the train split's statistics
    y: torch.Tensor        # [N] bool
    train: torch.Tensor    # index tensors of the 60 / 20 / 20 split (stratified for the OpenML datasets)
    val: torch.Tensor
    test: torch.Tensor


def synthetic_data(samples: int = 6000, features: int = 16, positive_rate: float = 0.1, seed: int = 0):
    """A fixed imbalanced tabular problem: exactly ``positive_rate`` positives, noisy and non-linear.

    The score mixes a linear term, an interaction and a square so that an MLP beats a linear
    model, plus Gaussian noise so that no classifier is perfect; the top ``positive_rate``
    fraction of scores is labelled positive.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, features, generator=g)
    w = torch.randn(features, generator=g) / math.sqrt(features)
    score = x @ w + 0.8 * torch.sin(2 * x[:, 0]) * x[:, 1] + 0.4 * (x[:, 2] ** 2 - 1)
    score = score + 0.6 * torch.randn(samples, generator=g)
    positives = round(positive_rate * samples)
    y = torch.zeros(samples, dtype=torch.bool)
    y[score.argsort(descending=True)[:positives]] = True
    return x, y


def read_csv(path: str, label_col: str):
    """Numeric feature columns and a 0/1 label column from a CSV file with a header row."""
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise ValueError(f"--csv {path!r} is empty")
    header, body = rows[0], [row for row in rows[1:] if row]
    if label_col not in header:
        raise ValueError(f"--label-col {label_col!r} is not a column of {path!r}; columns: {header}")
    label_at = header.index(label_col)
    features = [name for name in header if name != label_col]
    if not features or not body:
        raise ValueError(f"--csv {path!r} needs at least one feature column and one data row")
    values = []
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ValueError(f"--csv {path!r} line {line}: {len(row)} fields, the header has {len(header)}")
        try:
            values.append([float(v) for v in row])
        except ValueError as err:
            raise ValueError(f"--csv {path!r} line {line}: every column must be numeric ({err})") from None
    table = torch.tensor(values, dtype=torch.float32)
    labels = table[:, label_at]
    if not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError(f"--label-col {label_col!r} must hold 0/1 labels, got values {labels.unique().tolist()[:10]}")
    keep = [i for i in range(len(header)) if i != label_at]
    return table[:, keep], labels.bool()


def split_and_standardise(name: str, x: torch.Tensor, y: torch.Tensor, seed: int = 0, numeric: int | None = None,
                          stratify: bool = False) -> Dataset:
    """A fixed 60 / 20 / 20 split (the same for every training seed); the first ``numeric`` features (default:
    all) standardised with the train split's statistics, the others (one-hot) kept as they are.

    ``stratify``: split the positives and the negatives 60 / 20 / 20 each, so that every split has the
    dataset's positive rate (with 0.17 % positives a plain split can leave a split nearly without any).
    """
    generator = torch.Generator().manual_seed(seed)
    groups = [y.nonzero().squeeze(1), (~y).nonzero().squeeze(1)] if stratify else [torch.arange(len(y))]
    splits = ([], [], [])
    for group in groups:
        order = group[torch.randperm(len(group), generator=generator)]
        n_train, n_val = int(0.6 * len(order)), int(0.2 * len(order))
        for split, part in zip(splits, (order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:])):
            split.append(part)
    train, val, test = (torch.cat(split) for split in splits)
    numeric = x.shape[1] if numeric is None else numeric
    mean, std = x[train][:, :numeric].mean(0), x[train][:, :numeric].std(0).clamp_min(1e-12)
    x = torch.cat([(x[:, :numeric] - mean) / std, x[:, numeric:]], dim=1)
    return Dataset(name, x, y, train, val, test)


def make_model(features: int, hidden: int = 64) -> nn.Module:
    return nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, 1))


def train(data: Dataset, loss_name: str, seed: int, epochs: int, batch_size: int, lr: float, patience: int,
          device: torch.device):
    """Adam on mini-batches; keeps the weights of the epoch with the lowest validation loss."""
    torch.manual_seed(seed)
    model = make_model(data.x.shape[1]).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = LOSSES[loss_name]
    x, y = data.x.to(device), data.y.to(device)
    x_val, y_val = x[data.val], y[data.val]
    best_loss, best_state, best_epoch, epochs_run = math.inf, None, 0, 0
    for epoch in range(epochs):
        model.train()
        order = data.train[torch.randperm(len(data.train))].to(device)
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            optimiser.zero_grad(set_to_none=True)
            loss_fn(model(x[batch]).squeeze(1), y[batch]).backward()
            optimiser.step()
        epochs_run = epoch + 1
        model.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(model(x_val).squeeze(1), y_val))
        if val_loss < best_loss:
            best_loss, best_state, best_epoch = val_loss, copy.deepcopy(model.state_dict()), epoch + 1
        elif epoch + 1 - best_epoch >= patience:
            break
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        probs = torch.sigmoid(model(x[data.test]).squeeze(1)).cpu()
    return probs, {"best_epoch": best_epoch, "epochs_run": epochs_run, "best_val_loss": best_loss}


def evaluate(probs: torch.Tensor, target: torch.Tensor) -> tuple[dict, dict]:
    """Test metrics with hard counts: ({metric: value}, {metric: per-threshold curve})."""
    probs = probs.double()
    cm = sf.soft_confusion_matrix(probs, target, thresholds=REPORT_THRESHOLDS, approx="step")
    values = {name: float(sf.metrics.METRICS[name](cm).mean()) for name in CURVES}
    # Hard counts at every distinct score give every vertex of the ROC curve: the exact AUROC
    # (a fixed grid cannot separate the scores a metric loss pushes to within 1e-3 of 0 or 1).
    every_score = sf.soft_confusion_matrix(probs, target, thresholds=probs.unique(), approx="step")
    values["auroc"] = float(sf.metrics.auroc(every_score))
    curve_cm = sf.soft_confusion_matrix(probs, target, thresholds=CURVE_THRESHOLDS, approx="step")
    curves = {name: sf.metrics.METRICS[name](curve_cm).tolist() for name in CURVES}
    return values, curves


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single seed)."""
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


def format_table(summary: dict) -> str:
    """The results table: one row per loss, mean ± std over seeds for each reported metric."""
    header = f"{'loss':<10}" + "".join(f"{name:>18}" for name in REPORTED)
    lines = [header, "-" * len(header)]
    for loss_name, metrics in summary.items():
        cells = "".join(f"{metrics[name]['mean']:>10.4f} ± {metrics[name]['std']:.4f}" for name in REPORTED)
        lines.append(f"{loss_name:<10}{cells}")
    return "\n".join(lines)


def plot(result: dict, path: str) -> None:
    """Metric vs threshold per loss (mean over seeds), one panel per metric."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(10, 7.5), sharex=True)
    for axis, metric in zip(axes.flat, CURVES):
        for loss_name, entry in result["losses"].items():
            curves = torch.tensor(entry["curves"][metric])          # [seeds, T]
            mean = curves.mean(0)
            axis.plot(CURVE_THRESHOLDS, mean.tolist(), label=loss_name)
            if len(curves) > 1:
                std = curves.std(0)
                axis.fill_between(CURVE_THRESHOLDS, (mean - std).tolist(), (mean + std).tolist(), alpha=0.15)
        axis.axvspan(0.1, 0.9, color="grey", alpha=0.05)
        axis.set_title(f"test {metric} (hard counts)")
        axis.set_xlabel("threshold τ")
        axis.grid(alpha=0.3)
    axes[0, 0].legend()
    figure.suptitle(f"{result['dataset']['name']}\n{result['config']['seeds']} seeds, mean ± std; "
                    f"grey band: τ = 0.1..0.9, the range the table averages", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def load_data(args: argparse.Namespace) -> Dataset:
    """The dataset the options name, split and standardised."""
    if args.csv:
        if not args.label_col:
            raise SystemExit("demo: --csv needs --label-col NAME")
        x, y = read_csv(args.csv, args.label_col)
        return split_and_standardise(os.path.basename(args.csv), x, y, seed=args.data_seed)
    if args.dataset == "synthetic":
        x, y = synthetic_data(seed=args.data_seed)
        return split_and_standardise("synthetic (6000 samples, 16 features, 10% positive)", x, y, seed=args.data_seed)
    table = datasets.load(args.dataset, args.data_home)
    name = (f"{table.name}: {len(table.y)} samples, {table.numeric} numeric + {table.x.shape[1] - table.numeric} "
            f"one-hot features, positive class {table.positive!r}")
    return split_and_standardise(name, table.x, table.y, seed=args.data_seed, numeric=table.numeric, stratify=True)


def run(args: argparse.Namespace, plots: bool = True) -> dict:
    device = torch.device(args.device)
    data = load_data(args)
    name = data.name
    seeds = list(range(args.seeds))
    losses = args.losses
    with warnings.catch_warnings():  # the header below names the backend and why
        warnings.simplefilter("ignore", RuntimeWarning)
        backend = resolve_backend("auto", device)
    if backend == "reference":
        preferred = "cpu" if device.type == "cpu" else "cuda"
        backend = f"reference (no fused kernel: {unavailable_reason(preferred)})"
    print(f"softset_fast {sf.__version__} demo: {name}; train/val/test {len(data.train)}/{len(data.val)}/"
          f"{len(data.test)}, positive rate {data.y.float().mean():.3f}; soft-set backend: {backend}; "
          f"device: {device}; torch threads: {torch.get_num_threads()}")
    print(f"losses {', '.join(losses)} × seeds {seeds}; up to {args.epochs} epochs (early stopping, patience "
          f"{args.patience}), batch {args.batch_size}, Adam lr {args.lr}")

    result = {"config": {"seeds": len(seeds), "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                         "patience": args.patience, "device": str(device), "backend": backend,
                         "report_thresholds": REPORT_THRESHOLDS, "auroc": "exact: hard counts at every distinct test score",
                         "curve_thresholds": CURVE_THRESHOLDS},
              "dataset": {"name": name, "samples": len(data.y), "features": data.x.shape[1],
                          "positive_rate": float(data.y.float().mean()), "train": len(data.train),
                          "val": len(data.val), "test": len(data.test)},
              "test_target": data.y[data.test].int().tolist(),
              "losses": {}}
    start = time.perf_counter()
    with progress_bar(len(losses) * len(seeds), "demo", disable=args.no_progress) as bar:
        for loss_name in losses:
            runs, curves = [], {m: [] for m in CURVES}
            for seed in seeds:
                bar.set_postfix_str(f"loss={loss_name} seed={seed}")
                probs, info = train(data, loss_name, seed, args.epochs, args.batch_size, args.lr, args.patience,
                                    device)
                values, curve = evaluate(probs, data.y[data.test])
                runs.append({"seed": seed, **info, "metrics": values, "test_probs": probs.tolist()})
                for metric in CURVES:
                    curves[metric].append(curve[metric])
                bar.update()
            summary = {}
            for metric in REPORTED:
                mean, std = mean_std([r["metrics"][metric] for r in runs])
                summary[metric] = {"mean": mean, "std": std}
            result["losses"][loss_name] = {"summary": summary, "runs": runs, "curves": curves}
    result["seconds"] = time.perf_counter() - start

    table = format_table({name: entry["summary"] for name, entry in result["losses"].items()})
    print(f"\nTest set, mean ± std over {len(seeds)} seeds; F1 / accuracy / precision / recall averaged over "
          f"τ = 0.1..0.9 with hard counts; AUROC exact (hard counts at every distinct test score):")
    print(table)
    os.makedirs(args.out, exist_ok=True)
    json_path, png_path = os.path.join(args.out, "demo.json"), os.path.join(args.out, "demo.png")
    with open(json_path, "w") as handle:
        json.dump(result, handle)
    if plots:
        plot(result, png_path)
    print(f"\n{result['seconds']:.1f} s; wrote {json_path}" + (f" and {png_path}" if plots else ""))
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="2 seeds, 15 epochs: under a minute")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dataset", default="synthetic", choices=["synthetic", *datasets.OPENML_IDS],
                        help="synthetic: the embedded dataset (default); the others: the paper's public datasets, "
                             "downloaded from OpenML on first use (needs scikit-learn), split 60/20/20 stratified")
    source.add_argument("--csv", metavar="PATH", help="train on this CSV (numeric columns, header row) instead")
    parser.add_argument("--label-col", metavar="NAME", help="the 0/1 label column of --csv")
    parser.add_argument("--data-home", metavar="PATH",
                        help=f"cache folder of --dataset downloads (default: ${datasets.DATA_HOME_ENV}, else "
                             "scikit-learn's data home, ~/scikit_learn_data)")
    parser.add_argument("--out", default=os.path.join("out", "demo"), help="folder for demo.json and demo.png")
    parser.add_argument("--seeds", type=int, help="training seeds (default 3; --quick 2)")
    parser.add_argument("--epochs", type=int, help="maximum epochs (default 60; --quick 15)")
    parser.add_argument("--patience", type=int, default=10, help="early-stopping patience in epochs")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--losses", nargs="+", default=list(LOSSES), choices=list(LOSSES))
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic data and of the split")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: the model is tiny, so parallel regions cost more than "
                             "they save, and far more on a busy machine)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    if args.seeds is None:
        args.seeds = 2 if args.quick else 3
    if args.epochs is None:
        args.epochs = 15 if args.quick else 60
    if args.seeds < 1 or args.epochs < 1:
        raise SystemExit("demo: --seeds and --epochs must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    missing = extras.missing("demo", {"matplotlib": "no demo.png", "tqdm": "a plain progress bar"})
    run(args, plots="matplotlib" not in missing)
    return 0
