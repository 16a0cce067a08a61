"""Repeated loss calls reuse their signature's checks (softset_fast/_loss_plans.py): the second
call of a signature gives what the first gives, still checks the data's values, and never lets
a bad option through because an equal-valued good one was seen before."""
import pytest
import torch

import softset_fast as sf
from softset_fast import _loss_plans
from softset_fast.backends.registry import fused_loss_runs, unavailable_reason

pytestmark = pytest.mark.skipif(unavailable_reason("cpu") is not None or not fused_loss_runs("cpu", torch.device("cpu")),
                                reason="the C++ CPU op is not built")


@pytest.fixture(autouse=True)
def no_plans():
    _loss_plans._PLANS.clear()
    yield
    _loss_plans._PLANS.clear()


def loss_and_grad(function, preds, target, **kwargs):
    preds = preds.detach().requires_grad_()
    loss = function(preds, target, **kwargs)
    loss.sum().backward()
    return loss.detach(), preds.grad


CASES = [
    (sf.f1_loss, dict()),
    (sf.fbeta_loss, dict(beta=2.0, thresholds=[0.2, 0.45, 0.7])),
    (sf.accuracy_loss, dict(from_logits=True, thresholds=17)),
    (sf.auroc_loss, dict(task="multilabel", average="none", approx="sigmoid")),
    (sf.f1_loss, dict(task="multiclass", average="weighted", ignore_index=-1)),
    (sf.f1_loss, dict(multidim_average="samplewise", validate_args=False)),
]


@pytest.mark.parametrize("function, kwargs", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_repeated_call_equals_the_first_on_fresh_data(function, kwargs, dtype):
    task = kwargs.get("task", "binary")
    shape = (29, 3, 5) if task != "binary" else (29, 7)
    results = []
    for _ in range(3):
        preds = torch.rand(shape, dtype=dtype)
        if kwargs.get("from_logits"):
            preds = (preds - 0.5) * 8
        if task == "multiclass":
            target = torch.randint(-1, 3, (29, 5))
        else:
            target = torch.rand(shape) < 0.4
        weight = torch.rand(target.shape, dtype=dtype)
        first = loss_and_grad(function, preds, target, weight=weight, **kwargs)
        plans = len(_loss_plans._PLANS)
        # The same call with the plan cache emptied runs every check and the whole resolution again.
        _loss_plans._PLANS.clear()
        again = loss_and_grad(function, preds, target, weight=weight, **kwargs)
        results.append(plans)
        torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert results[1:] == [1, 1], "the first call records one plan, which the later ones use"


def test_the_plan_still_checks_the_values():
    preds, target = torch.rand(64), torch.rand(64) < 0.5
    sf.f1_loss(preds, target)
    assert len(_loss_plans._PLANS) == 1
    with pytest.raises(ValueError, match="preds contains NaN or inf"):
        sf.f1_loss(torch.full((64,), float("nan")), target)
    with pytest.raises(ValueError, match=r"preds must be probabilities in \[0, 1\]"):
        sf.f1_loss(preds + 1, target)
    with pytest.raises(ValueError, match="target must hold 0 or 1"):
        sf.f1_loss(preds, torch.full((64,), 2))
    sf.f1_loss(preds, torch.zeros(64, dtype=torch.int64))
    with pytest.raises(ValueError, match="target must hold 0 or 1"):
        sf.f1_loss(preds, torch.full((64,), 2))
    logits = torch.randn(64)
    sf.f1_loss(logits, target, from_logits=True)
    logits[3] = float("inf")
    with pytest.raises(ValueError, match="preds contains NaN or inf"):
        sf.f1_loss(logits, target, from_logits=True)


@pytest.mark.parametrize("good, bad, error", [
    (dict(k=1), dict(k=True), "k must be"),
    (dict(validate_args=True), dict(validate_args=1), "validate_args must be True or False"),
    (dict(from_logits=False), dict(from_logits=0), "from_logits must be True or False"),
    (dict(beta=1.0), dict(beta=True), "beta must be"),
    (dict(thresholds=[0, 1]), dict(thresholds=[False, True]), None),
])
def test_an_equal_valued_option_of_another_type_is_checked_anew(good, bad, error):
    preds, target = torch.rand(16), torch.rand(16) < 0.5
    kwargs = dict(approx="sigmoid")
    sf.fbeta_loss(preds, target, **kwargs, **good)
    if error is None:  # no error either way, but its own signature
        sf.fbeta_loss(preds, target, **kwargs, **bad)
        assert len(_loss_plans._PLANS) == 2
        return
    with pytest.raises((TypeError, ValueError), match=error):
        sf.fbeta_loss(preds, target, **kwargs, **bad)


def test_calls_that_depend_on_more_than_the_signature_record_no_plan(monkeypatch):
    monkeypatch.setattr(sf.losses, "_step_warned", False)  # the warning shows once per process
    preds, target = torch.rand(16, 3), torch.randint(0, 3, (16,))
    sf.f1_loss(preds, target, task="multiclass", ignore_index=1)  # the target is remapped from the data
    sf.f1_loss(preds[:, 0], target > 0, thresholds=torch.tensor([0.3, 0.6]))
    sf.f1_loss(preds, target, task="multiclass", classes=[0, 2])
    sf.metric_loss(preds[:, 0], target > 0, lambda cm: cm[..., 0])
    with pytest.warns(sf.StepGradientWarning):
        sf.f1_loss(preds[:, 0].requires_grad_(), target > 0, approx="step")
    assert len(_loss_plans._PLANS) == 0


def test_target_requiring_grad_is_rejected_after_a_plan():
    preds, target = torch.rand(16), torch.rand(16)
    sf.f1_loss(preds, target)
    with pytest.raises(ValueError, match="target must not require grad"):
        sf.f1_loss(preds, target.requires_grad_())


def test_a_plan_holds_its_options_in_cpp_while_it_lives():
    """A plan's options go to C++ once (_soft_set_loss_plan); the planned op gives the unplanned op's
    results bitwise, and a dropped plan's number is a clear error, never another plan's options."""
    import gc

    ops = torch.ops.softset_fast
    preds, target = torch.rand(3, 2, 5, dtype=torch.float64), torch.rand(3, 2, 5) < 0.5
    sf.f1_loss(preds, target, task="multilabel", average="weighted")
    plan, = _loss_plans._PLANS.values()
    assert _loss_plans.PLANNED_OPTIONS == {plan.number: plan.op_args}
    fresh = torch.rand(preds.shape, dtype=torch.float64)
    for with_grad in (False, True):
        planned = ops._planned_soft_set_loss(fresh, target, None, plan.number, with_grad)
        direct = ops._soft_set_loss_parts(fresh, target, None, *plan.op_args, with_grad)
        for a, b in zip(planned, direct):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    number = plan.number
    del plan
    _loss_plans._PLANS.clear()
    gc.collect()
    assert _loss_plans.PLANNED_OPTIONS == {}
    with pytest.raises(RuntimeError, match=f"no loss plan numbered {number}"):
        ops._planned_soft_set_loss(fresh, target, None, number, False)
    sf.f1_loss(preds, target, task="multilabel", average="weighted")
    assert next(iter(_loss_plans._PLANS.values())).number != number, "numbers are not reused"


def test_opcheck_planned_soft_set_loss():
    preds = torch.rand(5, 3, 7, dtype=torch.float64, requires_grad=True)
    target = torch.rand(5, 3, 7) < 0.4
    for average, samplewise in [("macro", False), ("weighted", True), ("none", False)]:
        # validate_args=False: the value checks read data, which tracing (the aot_dispatch checks) cannot
        kwargs = dict(task="multilabel", average=average, validate_args=False,
                      multidim_average="samplewise" if samplewise else "global")
        sf.f1_loss(preds.detach(), target, **kwargs)
        plan = _loss_plans._PLANS[max(_loss_plans._PLANS, key=lambda key: _loss_plans._PLANS[key].number)]
        for with_grad in (False, True) if average != "none" else (False,):
            torch.library.opcheck(torch.ops.softset_fast._planned_soft_set_loss.default,
                                  (preds.detach(), target, None, plan.number, with_grad))
