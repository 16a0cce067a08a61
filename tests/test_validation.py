"""Each bad input raises an error that names the argument."""
import pytest
import torch

import softset_fast as sf

ref = sf.reference.soft_confusion_matrix
P = torch.rand(10)
Y = torch.rand(10) < 0.5


@pytest.mark.parametrize("kwargs, error, match", [
    ({"approx": "cubic"}, ValueError, "approx"),
    ({"task": "regression"}, ValueError, "task"),
    ({"multidim_average": "mean"}, ValueError, "multidim_average"),
    ({"delta": 0.0}, ValueError, "delta"),
    ({"delta": 0.5}, ValueError, "delta"),
    ({"delta": -0.1}, ValueError, "delta"),
    ({"approx": "sigmoid", "k": 0.0}, ValueError, "k must"),
    ({"approx": "sigmoid", "k": -3.0}, ValueError, "k must"),
    ({"approx": "sigmoid", "k": float("inf")}, ValueError, "k must"),
    ({"thresholds": [0.5, 0.3]}, ValueError, "thresholds"),
    ({"thresholds": [0.3, 0.3]}, ValueError, "thresholds"),
    ({"thresholds": [0.0, 0.5]}, ValueError, "thresholds"),
    ({"thresholds": [0.5, 1.0]}, ValueError, "thresholds"),
    ({"thresholds": torch.rand(2, 3)}, ValueError, "thresholds"),
    ({"thresholds": []}, ValueError, "thresholds"),
    ({"thresholds": 0}, ValueError, "thresholds"),
    ({"thresholds": "nine"}, TypeError, "thresholds"),
    ({"thresholds": [0.2, float("nan")]}, ValueError, "thresholds"),
    ({"weight": -torch.ones(10)}, ValueError, "weight"),
    ({"weight": torch.ones(9)}, ValueError, "weight"),
    ({"weight": torch.full((10,), float("nan"))}, ValueError, "weight"),
    ({"ignore_index": 1}, ValueError, "ignore_index"),
    ({"ignore_index": 0.5}, TypeError, "ignore_index"),
    ({"backend": "tpu"}, ValueError, "backend"),
])
def test_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        sf.soft_confusion_matrix(P, Y, **kwargs)


@pytest.mark.parametrize("preds, match", [
    (torch.tensor([0.5, 1.5]), r"preds must be probabilities in \[0, 1\]"),
    (torch.tensor([-0.1, 0.5]), r"preds must be probabilities"),
    (torch.tensor([0.5, float("nan")]), "NaN"),
    (torch.tensor([0.5, float("inf")]), "NaN or inf"),
])
def test_bad_preds_values(preds, match):
    with pytest.raises(ValueError, match=match):
        ref(preds, torch.tensor([0, 1]))


def test_logits_must_be_finite_but_unbounded():
    ref(torch.tensor([-5.0, 7.0]), torch.tensor([0, 1]), from_logits=True)
    with pytest.raises(ValueError, match="NaN or inf"):
        ref(torch.tensor([-5.0, float("nan")]), torch.tensor([0, 1]), from_logits=True)


def test_validate_args_false_skips_value_checks():
    ref(torch.tensor([0.5, 1.5]), torch.tensor([0, 1]), validate_args=False)


@pytest.mark.parametrize("target, kwargs, match", [
    (torch.tensor([0, 2]), {}, "target must hold 0 or 1"),
    (torch.tensor([0.0, 1.2]), {}, r"target must lie in \[0, 1\]"),
    (torch.tensor([0, 1, 0]), {}, "target must have the shape of preds"),
])
def test_bad_binary_target(target, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ref(torch.tensor([0.2, 0.7]), target, **kwargs)


def test_bad_preds_type_and_dtype():
    with pytest.raises(TypeError, match="preds must be a torch.Tensor"):
        ref([0.1, 0.2], torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="preds must be float16"):
        ref(torch.tensor([0, 1]), torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="target must be a torch.Tensor"):
        ref(torch.tensor([0.1, 0.2]), [0, 1])


def test_device_mismatch_is_reported():
    meta = torch.zeros(2, device="meta")
    with pytest.raises(ValueError, match="target must be on the same device as preds"):
        ref(torch.tensor([0.1, 0.2]), meta)


class TestMulticlass:
    preds = torch.rand(6, 3).softmax(1)

    def test_index_out_of_range(self):
        with pytest.raises(ValueError, match=r"class indices in \[0, 3\)"):
            ref(self.preds, torch.tensor([0, 1, 2, 3, 0, 1]), task="multiclass")
        with pytest.raises(ValueError, match="class indices"):
            ref(self.preds, torch.tensor([0, 1, 2, -1, 0, 1]), task="multiclass")

    def test_ignore_index_naming_a_class_still_checks_the_other_targets(self):
        """ignore_index may name a class (tests/test_api.py); a stray -1 is still an error, not ignored."""
        with pytest.raises(ValueError, match="class indices"):
            ref(self.preds, torch.tensor([0, 1, 2, -1, 0, 1]), task="multiclass", ignore_index=2)

    def test_wrong_target_shape_and_dtype(self):
        with pytest.raises(ValueError, match="class indices of shape"):
            ref(self.preds, torch.randint(0, 3, (6, 3)), task="multiclass")
        with pytest.raises(TypeError, match="integer tensor of class indices"):
            ref(self.preds, torch.rand(6), task="multiclass")

    def test_num_classes_mismatch(self):
        with pytest.raises(ValueError, match="num_classes=4 does not match"):
            ref(self.preds, torch.tensor([0, 1, 2, 2, 0, 1]), task="multiclass", num_classes=4)

    def test_preds_need_class_axis(self):
        with pytest.raises(ValueError, match=r"preds must have shape \[N, C, ...\]"):
            ref(torch.rand(6), torch.tensor([0, 1, 2, 2, 0, 1]), task="multiclass")


def test_unavailable_backend_names_it_and_how_to_get_it():
    missing = [b for b in ("cpu", "cuda", "triton") if b not in sf.available_backends()]
    for name in missing:
        with pytest.raises(RuntimeError, match=f"backend='{name}' is not available"):
            sf.soft_confusion_matrix(P, Y, backend=name)
    assert "reference" in sf.available_backends()


def test_metric_arguments():
    cm = ref(P, Y)
    with pytest.raises(ValueError, match="average"):
        sf.metrics.f1(cm, average="samples")
    with pytest.raises(ValueError, match="needs a class axis"):
        sf.metrics.f1(cm, average="macro")
    with pytest.raises(ValueError, match=r"cm must have shape \[..., T, 4\]"):
        sf.metrics.f1(torch.rand(9, 3))
    with pytest.raises(ValueError, match="beta"):
        sf.metrics.fbeta(cm, beta=0.0)
    with pytest.raises(ValueError, match="metric must be one of"):
        sf.metric_loss(P, Y, metric="nope")


# ---- answers that used to be silently wrong (each case failed before its fix) ----------------

@pytest.mark.parametrize("dtype, ignore_index", [(torch.uint8, 256), (torch.int32, 2**32), (torch.bool, 7)])
@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_ignore_index_outside_the_target_dtype_ignores_nothing(dtype, ignore_index, backend):
    if backend not in sf.available_backends():
        pytest.skip(f"{backend} not built")
    preds = torch.rand(301)
    target = (torch.rand(301) < 0.4).to(dtype)
    with_ignore = sf.soft_confusion_matrix(preds, target, ignore_index=ignore_index, backend=backend)
    torch.testing.assert_close(with_ignore, sf.soft_confusion_matrix(preds, target, backend=backend))


def test_ignore_index_beyond_int64_is_a_clear_error():
    with pytest.raises(ValueError, match="ignore_index must fit in int64"):
        sf.soft_confusion_matrix(torch.rand(5), torch.rand(5) < 0.5, ignore_index=2**70)


def test_weight_overflowing_the_accumulation_dtype_is_rejected():
    weight = torch.full((5,), 1e39, dtype=torch.float64)
    with pytest.raises(ValueError, match="weight must be finite in float32"):
        sf.soft_confusion_matrix(torch.rand(5), torch.rand(5) < 0.5, weight=weight)
    counts = sf.soft_confusion_matrix(torch.rand(5, dtype=torch.float64), torch.rand(5) < 0.5, weight=weight)
    assert bool(torch.isfinite(counts).all())  # float64 preds accumulate in float64: fine


def test_vmap_with_validation_names_validate_args():
    target = torch.rand(20) < 0.5
    with pytest.raises(ValueError, match="validate_args=False"):
        torch.func.vmap(lambda q: sf.fbeta_loss(q, target, backend="reference"))(torch.rand(3, 20))
    losses = torch.func.vmap(lambda q: sf.fbeta_loss(q, target, backend="reference", validate_args=False))(
        torch.rand(3, 20))
    assert losses.shape == (3,)


def test_torch_func_transforms_run_the_reference_under_auto():
    """grad and vmap cannot run the fused loss's autograd.Function: backend='auto' takes the reference there."""
    target = torch.rand(41) < 0.4
    preds = torch.rand(41, dtype=torch.float64)
    grad = torch.func.grad(lambda q: sf.fbeta_loss(q, target))(preds)
    leaf = preds.clone().requires_grad_(True)
    expected, = torch.autograd.grad(sf.fbeta_loss(leaf, target, backend="reference"), leaf)
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-12)
    batch = torch.rand(3, 41, dtype=torch.float64)
    losses = torch.func.vmap(lambda q: sf.fbeta_loss(q, target, validate_args=False))(batch)
    torch.testing.assert_close(losses, torch.stack([sf.fbeta_loss(q, target) for q in batch]), rtol=1e-12, atol=1e-12)
    counts = torch.func.vmap(lambda q: sf.soft_confusion_matrix(q, target, validate_args=False))(batch)
    torch.testing.assert_close(counts, torch.stack([sf.soft_confusion_matrix(q, target) for q in batch]))


@pytest.mark.skipif("cpu" not in sf.available_backends(), reason="the C++ CPU op is not built")
def test_the_cpp_backend_under_torch_func_is_a_clear_error():
    target = torch.rand(41) < 0.4
    with pytest.raises(RuntimeError, match="backend='cpu' cannot run under torch.func transforms"):
        torch.func.grad(lambda q: sf.fbeta_loss(q, target, backend="cpu"))(torch.rand(41, dtype=torch.float64))


def test_meta_tensors_give_shapes_or_a_clear_error():
    preds = torch.rand(20, device="meta")
    assert sf.soft_confusion_matrix(preds, preds > 0.5, backend="reference").shape == (9, 4)
    with pytest.raises(ValueError, match="thresholds is a meta tensor"):
        sf.soft_confusion_matrix(torch.rand(20), torch.rand(20) < 0.5, thresholds=torch.rand(3, device="meta"))


def test_loss_modules_with_a_metric_function_pickle():
    import pickle
    loss = pickle.loads(pickle.dumps(sf.SoftSetLoss(sf.metrics.mcc)))
    preds, target = torch.rand(30), torch.rand(30) < 0.5
    assert torch.equal(loss(preds, target), sf.SoftSetLoss(sf.metrics.mcc)(preds, target))


@pytest.mark.parametrize("batch", [1, 3])
def test_multiclass_without_classes_is_a_clear_error(batch):
    for validate in (True, False):
        with pytest.raises(ValueError, match="at least one class"):
            sf.soft_confusion_matrix(torch.rand(batch, 0, 3), torch.zeros(batch, 3, dtype=torch.long),
                                     task="multiclass", validate_args=validate)


@pytest.mark.parametrize("tau", [1 - 1e-14, 1 - 1e-9, 1e-9, 5e-5])
def test_linear_thresholds_too_close_to_0_or_1_are_rejected(tau):
    """There the slopes' cancellation made TP wrong on the fused backends (e.g. 19968 vs 20039.65)."""
    with pytest.raises(ValueError, match="thresholds must lie in \\[0.0001, 1 - 0.0001\\]"):
        sf.soft_confusion_matrix(torch.rand(10), torch.rand(10) < 0.5, thresholds=sorted([0.5, tau]))
    # sigmoid and step have no such slopes
    sf.soft_confusion_matrix(torch.rand(10), torch.rand(10) < 0.5, thresholds=sorted([0.5, tau]), approx="step")


def test_linear_thresholds_at_the_margin_stay_accurate():
    preds = torch.rand(100000, dtype=torch.float64)
    preds[::3] = 1.0
    target = torch.rand(100000) < 0.5
    grid = [1e-4, 0.5, 1 - 1e-4]
    fused = sf.soft_confusion_matrix(preds, target, thresholds=grid)
    torch.testing.assert_close(fused, sf.reference.soft_confusion_matrix(preds, target, thresholds=grid),
                               rtol=1e-10, atol=1e-8)
