"""examples/lightning_train.py: a few epochs on the CPU under bf16 autocast (needs lightning)."""
from __future__ import annotations

import importlib.util
import math
import os

import pytest
import torch

import softset_fast as sf

pytest.importorskip("lightning")
EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "lightning_train.py")


def _load_example():
    spec = importlib.util.spec_from_file_location("lightning_train", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lightning_example_trains_and_logs_the_global_f1():
    example = _load_example()
    result = example.main(["--epochs", "3", "--samples", "1501", "--batch-size", "128", "--quiet"])
    logged, losses, model = result["logged"], result["epoch_losses"], result["model"]
    for name in ("val_f1", "val_auroc", "train_loss"):
        assert name in logged and math.isfinite(logged[name]), (name, logged)
    assert 0 <= logged["val_f1"] <= 1 and 0.5 < logged["val_auroc"] <= 1
    assert len(losses) == 3 and losses[-1] < losses[0] - 0.02, losses  # the soft F1 loss went down

    # The logged F1 is that of the whole validation set (counts of all 3 batches), recomputed here
    # with the trained model under the same bf16 autocast, and not the mean of per-batch F1s.
    assert len(result["val"]) == 3
    recount, per_batch = sf.FBetaMetric(thresholds=[0.5]), []
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for x, y in result["val"]:
            per_batch.append(recount(model(x).sigmoid(), y).item())
    assert logged["val_f1"] == pytest.approx(recount.compute().item(), abs=1e-6)
    assert logged["val_f1"] != pytest.approx(sum(per_batch) / len(per_batch), abs=1e-9)
