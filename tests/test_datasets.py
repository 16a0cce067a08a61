"""``demo --dataset``: the OpenML loader and its preprocessing (softset_fast/cli/datasets.py), on a
small table built here in the shape scikit-learn's fetch_openml returns (there is no network in CI;
the real download is not exercised), and the stratified split of the demo."""
import json
import sys
import urllib.error

import pytest
import sklearn.datasets
import torch
from sklearn.utils import Bunch

from softset_fast.cli import datasets
from softset_fast.cli.demo import split_and_standardise
from softset_fast.cli.main import main

N, POSITIVES = 400, 40


def openml_bunch(positive="1", negative="-1"):
    """What fetch_openml(as_frame=False, parser="liac-arff") returns: float64 features with a
    categorical column as codes into bunch.categories (NaN when missing), string class labels."""
    g = torch.Generator().manual_seed(3)
    age = torch.rand(N, generator=g, dtype=torch.float64) * 50 + 20
    dose = torch.randn(N, generator=g, dtype=torch.float64) * 3 + 10
    colour = torch.randint(0, 3, (N,), generator=g).double()
    age[5], dose[7], colour[9] = float("nan"), float("nan"), float("nan")   # missing values
    target = [positive if i % (N // POSITIVES) == 0 else negative for i in range(N)]
    return Bunch(data=torch.stack([age, colour, dose], 1).numpy(), target=target,
                 feature_names=["age", "colour", "dose"], categories={"colour": ["red", "green", "blue"]})


@pytest.fixture
def fake_openml(monkeypatch):
    """Replaces fetch_openml; records each call's keywords."""
    calls = []

    def fetch_openml(**kwargs):
        calls.append(kwargs)
        return openml_bunch()

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", fetch_openml)
    monkeypatch.delenv(datasets.DATA_HOME_ENV, raising=False)
    return calls


def test_load_preprocesses(fake_openml, tmp_path):
    table = datasets.load("mammography", str(tmp_path))
    assert fake_openml == [{"data_id": 310, "data_home": str(tmp_path), "as_frame": False, "parser": "liac-arff"}]
    raw = torch.as_tensor(openml_bunch().data)
    assert table.name == "mammography (OpenML 310)" and table.positive == "1"
    assert table.x.shape == (N, 2 + 3) and table.x.dtype == torch.float32 and table.numeric == 2
    assert not table.x.isnan().any()
    # numeric columns first (age, dose), a missing value replaced by the column's median
    assert table.x[5, 0] == pytest.approx(float(raw[:, 0].nanmedian()))
    assert table.x[7, 1] == pytest.approx(float(raw[:, 2].nanmedian()))
    assert torch.allclose(table.x[:4, :2].double(), raw[:4][:, [0, 2]], rtol=1e-6)
    # one-hot colour: one 1 per row, none for the missing category
    one_hot = table.x[:, 2:]
    assert set(one_hot.unique().tolist()) == {0.0, 1.0}
    assert one_hot.sum(1).tolist() == [0.0 if i == 9 else 1.0 for i in range(N)]
    assert one_hot[0].argmax() == raw[0, 1]
    assert table.y.dtype == torch.bool and int(table.y.sum()) == POSITIVES
    assert table.y.tolist() == [label == "1" for label in openml_bunch().target]


@pytest.mark.parametrize("positive, negative", [("1", "-1"), (">50K", "<=50K"), ("a", "b")])
def test_minority_class_is_positive(positive, negative):
    bunch = openml_bunch(positive, negative)
    table = datasets.preprocess("t", bunch.data, bunch.target, bunch.feature_names, bunch.categories)
    assert table.positive == positive and int(table.y.sum()) == POSITIVES


def test_target_must_be_binary():
    bunch = openml_bunch()
    bunch.target[1] = "2"
    with pytest.raises(ValueError, match=r"dataset t: expected a binary target, got 3 classes"):
        datasets.preprocess("t", bunch.data, bunch.target, bunch.feature_names, bunch.categories)


def test_stratified_split():
    table = datasets.preprocess("t", *(openml_bunch()[key] for key in ("data", "target", "feature_names",
                                                                           "categories")))
    data = split_and_standardise("t", table.x, table.y, seed=0, numeric=table.numeric, stratify=True)
    # 60 / 20 / 20 of the positives and of the negatives: each split has the dataset's positive rate
    assert [int(data.y[split].sum()) for split in (data.train, data.val, data.test)] == [24, 8, 8]
    assert [len(split) for split in (data.train, data.val, data.test)] == [240, 80, 80]
    assert sorted(torch.cat([data.train, data.val, data.test]).tolist()) == list(range(N))
    # numeric columns standardised on train; one-hot columns untouched
    train = data.x[data.train]
    assert torch.allclose(train[:, :2].mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(train[:, :2].std(0), torch.ones(2), atol=1e-5)
    assert torch.equal(data.x[:, 2:], table.x[:, 2:])
    again = split_and_standardise("t", table.x, table.y, seed=0, numeric=table.numeric, stratify=True)
    other = split_and_standardise("t", table.x, table.y, seed=1, numeric=table.numeric, stratify=True)
    assert torch.equal(again.test, data.test) and not torch.equal(other.test, data.test)


def test_plain_split_is_unchanged():
    """The synthetic demo's split: one permutation of all samples, as before --dataset existed."""
    x, y = torch.randn(50, 3), torch.arange(50) % 5 == 0
    data = split_and_standardise("s", x, y, seed=4)
    order = torch.randperm(50, generator=torch.Generator().manual_seed(4))
    assert torch.equal(torch.cat([data.train, data.val, data.test]), order)
    assert torch.equal(data.x, (x - x[order[:30]].mean(0)) / x[order[:30]].std(0))


def test_data_home_option_then_env(fake_openml, monkeypatch, tmp_path):
    datasets.load("adult")
    monkeypatch.setenv(datasets.DATA_HOME_ENV, str(tmp_path / "env"))
    datasets.load("adult")
    datasets.load("creditcard", str(tmp_path / "option"))
    assert [(call["data_id"], call["data_home"]) for call in fake_openml] == [
        (1590, None), (1590, str(tmp_path / "env")), (1597, str(tmp_path / "option"))]


def test_without_scikit_learn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(SystemExit) as exit_info:
        datasets.load("adult")
    message = str(exit_info.value)
    assert "\n" not in message and "needs scikit-learn" in message and 'pip install "softset_fast[bench]"' in message


def test_download_failure(monkeypatch):
    def offline(**kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", offline)
    with pytest.raises(SystemExit, match=r"downloading OpenML dataset 310 failed \(.*no network.*cache in /nowhere"):
        datasets.load("mammography", "/nowhere")


def test_bad_dataset_options(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["demo", "--dataset", "iris"])
    error = capsys.readouterr().err
    assert "argument --dataset: invalid choice: 'iris'" in error
    assert all(name in error for name in ("synthetic", "mammography", "adult", "creditcard"))
    with pytest.raises(SystemExit):
        main(["demo", "--dataset", "adult", "--csv", str(tmp_path / "x.csv")])
    assert "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--dataset must be one of mammography, adult, creditcard, got 'iris'"):
        datasets.load("iris")


def test_demo_on_a_dataset(fake_openml, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["demo", "--dataset", "mammography", "--data-home", str(tmp_path / "cache"), "--seeds", "1",
                 "--epochs", "2", "--losses", "bce", "f1", "--out", str(out), "--no-progress"]) == 0
    assert fake_openml[0]["data_home"] == str(tmp_path / "cache")
    result = json.loads((out / "demo.json").read_text())
    assert result["dataset"]["samples"] == N and result["dataset"]["features"] == 5
    assert (result["dataset"]["train"], result["dataset"]["val"], result["dataset"]["test"]) == (240, 80, 80)
    assert sum(result["test_target"]) == 8                   # stratified
    assert set(result["losses"]) == {"bce", "f1"}
    for entry in result["losses"].values():
        assert len(entry["runs"][0]["test_probs"]) == 80
    assert ("mammography (OpenML 310): 400 samples, 2 numeric + 3 one-hot features, positive class '1'"
            in capsys.readouterr().out)
