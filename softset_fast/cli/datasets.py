"""The paper's public tabular datasets for ``demo --dataset``, downloaded from OpenML on first use.

scikit-learn's ``fetch_openml`` downloads each dataset once into a cache folder: ``--data-home``,
else ``$SOFTSET_FAST_DATA``, else scikit-learn's own data home (``$SCIKIT_LEARN_DATA`` or
``~/scikit_learn_data``). Preprocessing: numeric features as they are (a missing value: the
column's median), for the demo to standardise with the train split's statistics; categorical
features one-hot (a missing category: all zeros); the target mapped to {0, 1} with the minority
class positive, the imbalanced setting of Tsoi et al. §5.1.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass

import torch

from softset_fast.cli import extras

# OpenML data ids rather than names: one name can cover several uploads and versions.
OPENML_IDS = {
    "mammography": 310,   # 11,183 samples, 6 numeric features, 2.3 % positive (class '1')
    "adult": 1590,        # 48,842 samples, 6 numeric + 8 categorical features, 24 % positive ('>50K')
    "creditcard": 1597,   # 284,807 samples, 29 numeric features (V1..V28, Amount), 0.17 % positive (fraud)
}
DATA_HOME_ENV = "SOFTSET_FAST_DATA"


@dataclass
class Table:
    name: str
    x: torch.Tensor   # [N, F] float32: the numeric columns first, then the one-hot columns
    y: torch.Tensor   # [N] bool, True for the minority class
    numeric: int      # how many leading columns of x are numeric (the ones to standardise)
    positive: str     # the target value mapped to 1


def data_home(option: str | None) -> str | None:
    """The cache folder: the option, else $SOFTSET_FAST_DATA, else None (scikit-learn's default)."""
    return option or os.environ.get(DATA_HOME_ENV) or None


def load(name: str, home: str | None = None) -> Table:
    """Dataset ``name`` of :data:`OPENML_IDS`, downloaded into the cache on first use, preprocessed."""
    if name not in OPENML_IDS:
        raise ValueError(f"--dataset must be one of {', '.join(OPENML_IDS)}, got {name!r}")
    try:
        from sklearn.datasets import fetch_openml
    except ImportError:
        raise SystemExit(f"demo --dataset {name}: downloading from OpenML needs scikit-learn (to add: "
                         f"{extras.INSTALL})") from None
    home = data_home(home)
    try:
        # as_frame=False with the liac-arff parser: numpy arrays and no pandas needed; categorical
        # columns come as category codes (NaN when missing), their names in bunch.categories.
        bunch = fetch_openml(data_id=OPENML_IDS[name], data_home=home, as_frame=False, parser="liac-arff")
    except OSError as err:   # no network, OpenML down: the first use needs the network
        cache = home or "scikit-learn's data home"
        raise SystemExit(f"demo --dataset {name}: downloading OpenML dataset {OPENML_IDS[name]} failed ({err}); the "
                         f"first use needs the network, later ones read the cache in {cache}") from None
    return preprocess(f"{name} (OpenML {OPENML_IDS[name]})", bunch.data, bunch.target, list(bunch.feature_names),
                      bunch.categories or {})


def preprocess(name: str, data, target, feature_names: list[str], categories: dict[str, list]) -> Table:
    """Features [N, F] (categorical columns as codes, as fetch_openml gives them) and target labels -> a Table."""
    data = torch.as_tensor(data, dtype=torch.float64)
    labels = [str(label) for label in target]
    counts = Counter(labels)
    if len(counts) != 2:
        raise ValueError(f"dataset {name}: expected a binary target, got {len(counts)} classes "
                         f"{sorted(counts)[:5]}")
    positive = min(sorted(counts), key=counts.__getitem__)   # the minority (ties: the first in sorted order)
    y = torch.tensor([label == positive for label in labels])
    numeric = [i for i, feature in enumerate(feature_names) if feature not in categories]
    values = data[:, numeric]
    values = torch.where(values.isnan(), values.nanmedian(0).values.nan_to_num(0.0), values)
    one_hot = [data[:, i, None] == torch.arange(len(categories[feature]), dtype=torch.float64)  # NaN: all False
               for i, feature in enumerate(feature_names) if feature in categories]
    x = torch.cat([values] + one_hot, dim=1).float()
    return Table(name, x, y, len(numeric), positive)
