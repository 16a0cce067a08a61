"""Train a small classifier with the soft F1 loss in Lightning; evaluate it with the stateful F1.

    python examples/lightning_train.py                      # bf16 autocast on the CPU, a few seconds
    python examples/lightning_train.py --compile            # the network through torch.compile
    python examples/lightning_train.py --precision 32-true --epochs 10

Needs ``pip install lightning`` (and torchmetrics, which lightning installs). The loss is
``softset_fast.FBetaLoss`` (1 − F1 averaged over the thresholds 0.1 … 0.9, differentiable); the
validation F1 is ``softset_fast.integrations.torchmetrics.FBetaMetric``, a torchmetrics.Metric,
so ``self.log`` computes it once per epoch from the counts of every validation batch (and
every rank), never as a mean of per-batch F1s.
"""
from __future__ import annotations

import argparse
import warnings

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import softset_fast as sf
from softset_fast.integrations.torchmetrics import AUROCMetric, FBetaMetric


def make_data(samples: int, seed: int) -> TensorDataset:
    """Two noisy rings in 6 dimensions: the outer one (about 20% of the points) is the positive class.

    Args:
        samples: how many points.
        seed: the generator's seed (the same data for the same seed).

    Returns:
        a TensorDataset of (x [samples, 6] float32, y [samples] float32 in {0, 1}).

    Example:
        >>> x, y = make_data(10, seed=0)[:]
        >>> tuple(x.shape), tuple(y.shape)
        ((10, 6), (10,))
    """
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(samples, generator=g) < 0.2).float()
    direction = nn.functional.normalize(torch.randn(samples, 6, generator=g), dim=1)
    radius = 1.0 + 0.8 * y + 0.35 * torch.randn(samples, generator=g)
    return TensorDataset(direction * radius.unsqueeze(1), y)


class SoftF1Classifier(L.LightningModule):
    """An MLP trained on 1 − soft F1; logs the exact validation F1 at τ = 0.5 and the AUROC.

    Args:
        lr: Adam's learning rate.
        compile_net: run the network through torch.compile.

    Returns:
        ``forward(x)``: logits [N].

    Example:
        >>> SoftF1Classifier()(torch.zeros(3, 6)).shape
        torch.Size([3])
    """

    def __init__(self, lr: float = 0.01, compile_net: bool = False):
        super().__init__()
        self.lr = lr
        self.net = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))
        if compile_net:
            self.net = torch.compile(self.net)
        self.loss_fn = sf.FBetaLoss(beta=1.0, from_logits=True)
        self.val_f1 = FBetaMetric(thresholds=[0.5])      # hard counts (approx="step"), summed over batches
        self.val_auroc = AUROCMetric(thresholds=199)
        self.epoch_losses: list[float] = []               # mean training loss of each epoch
        self._loss_sum, self._steps = 0.0, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss_fn(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        self._loss_sum, self._steps = self._loss_sum + loss.item(), self._steps + 1
        return loss

    def on_train_epoch_end(self):
        self.epoch_losses.append(self._loss_sum / self._steps)
        self._loss_sum, self._steps = 0.0, 0

    def validation_step(self, batch, batch_idx):
        x, y = batch
        probs = self(x).sigmoid()
        self.val_f1.update(probs, y)
        self.val_auroc.update(probs, y)
        # Logging the metric objects: Lightning calls compute() at the epoch's end, then reset().
        self.log("val_f1", self.val_f1, prog_bar=True)
        self.log("val_auroc", self.val_auroc)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def main(argv: list[str] | None = None) -> dict:
    """Trains and validates.

    Args:
        argv: command-line arguments (None: sys.argv), e.g. ["--epochs", "3", "--quiet"].

    Returns:
        {"logged": Lightning's callback metrics as floats (val_f1, val_auroc, train_loss),
        "epoch_losses": the mean training loss of each epoch, "model": the trained module,
        "val": the validation DataLoader}.

    Example:
        >>> result = main(["--epochs", "1", "--quiet"])   # doctest: +SKIP
        >>> 0 <= result["logged"]["val_f1"] <= 1          # doctest: +SKIP
        True
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=4001, help="training samples (validation: a quarter)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--precision", default="bf16-mixed", help="Lightning precision, e.g. bf16-mixed, 32-true")
    parser.add_argument("--compile", action="store_true", help="run the network through torch.compile")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    warnings.filterwarnings("ignore", ".*does not have many workers.*")  # in-memory tensors need none
    L.seed_everything(args.seed, verbose=False)
    train = DataLoader(make_data(args.samples, args.seed), batch_size=args.batch_size, shuffle=True)
    val = DataLoader(make_data(args.samples // 4, args.seed + 1), batch_size=args.batch_size)
    model = SoftF1Classifier(lr=args.lr, compile_net=args.compile)
    trainer = L.Trainer(accelerator="cpu", devices=1, precision=args.precision, max_epochs=args.epochs,
                        logger=False, enable_checkpointing=False, enable_model_summary=False,
                        enable_progress_bar=not args.quiet, num_sanity_val_steps=0)
    trainer.fit(model, train, val)
    logged = {name: float(value) for name, value in trainer.callback_metrics.items()}
    print(f"training loss per epoch: {[round(x, 4) for x in model.epoch_losses]}")
    print(f"validation F1 at 0.5: {logged['val_f1']:.4f}   AUROC: {logged['val_auroc']:.4f}")
    return {"logged": logged, "epoch_losses": model.epoch_losses, "model": model, "val": val}


if __name__ == "__main__":
    main()
