// Op schemas of softset_fast and the kernels of each device, registered once, through
// torch's stable ABI (torch_api.h). Kernels: csrc/cpu/, csrc/cuda/ (ops.h lists them) and
// csrc/soft_set_loss.cpp, which composes them. Autograd and fake kernels are Python:
// softset_fast/backends/loss_autograd.py, extension.py and loss_op.py.
#include <Python.h>

#include "loss_plans.h"
#include "ops.h"
#include "soft_set_loss.h"
#include "torch_api.h"

// An empty module: importing softset_fast._C runs the static registrations below. (The only
// exported symbol: setup.py compiles with -fvisibility=hidden.)
PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}

STABLE_TORCH_LIBRARY(softset_fast, m) {
  // preds [N, C, L]; target [N, C, L] (num_classes == 0) or class indices [N, L] (num_classes == C);
  // weight None or target's shape; grid [T, 8] float64 (tau, a, b, m1, m2, m3, c2, c3).
  // Returns [G, C, T, 4] = (tp, fn, fp, tn), G = N if samplewise else 1;
  // float64 for float64 preds, else float32.
  // deterministic: torch.are_deterministic_algorithms_enabled() of the caller (the stable ABI cannot read it):
  // on CUDA a fixed-order reduction instead of the histogram's float atomics; the CPU kernel always is.
  m.def("soft_counts(Tensor preds, Tensor target, Tensor? weight, Tensor grid, str approx, float k, "
        "int num_classes, int? ignore_index, bool samplewise, bool deterministic=False) -> Tensor");
  // Gradient of soft_counts with respect to preds, given grad [G, C, T, 4]; returns preds' shape and dtype.
  m.def("_soft_counts_backward(Tensor grad, Tensor preds, Tensor target, Tensor? weight, Tensor grid, "
        "str approx, float k, int num_classes, int? ignore_index, bool samplewise) -> Tensor");
  // The loss 1 - mean(metric) of counts [G, C, T, 4] float32/float64 (tp, fn, fp, tn; G = samples when
  // samplewise, else 1): metric one of f1, fbeta (beta > 0), accuracy, precision, recall, specificity,
  // balanced_accuracy, jaccard, gmean, mcc, auroc, as in softset_fast/metrics.py; average macro, micro or
  // weighted over classes gives a 0-d loss (mean over G and T), none the per-class loss [C]. Computed in
  // float64, returned in counts' dtype.
  m.def("metric_loss(Tensor counts, str metric, str average, float beta, float zero_division) -> Tensor");
  // Gradient of metric_loss in counts given grad (the loss's shape); returns counts' shape and dtype.
  m.def("metric_loss_backward(Tensor grad, Tensor counts, str metric, str average, float beta, "
        "float zero_division) -> Tensor");
  // A loss step's forward in one op: preds and target in their public shapes, viewed as soft_counts'
  // [N, C, L] layout by `shape` (target as [N, L] when num_classes > 0), the public API's value checks when
  // `validate` (task names the task in their messages), then metric_loss(soft_counts(...), ...).
  m.def("soft_set_loss(Tensor preds, Tensor target, Tensor? weight, Tensor grid, str approx, float k, "
        "int num_classes, int? ignore_index, bool samplewise, int[] shape, str task, bool validate, str metric, "
        "str average, float beta, float zero_division, bool deterministic=False) -> Tensor");
  // soft_set_loss for a training step: (loss, counts, dL/dpreds for an upstream gradient of 1 when with_grad,
  // else an empty tensor). with_grad needs a 0-d loss (average != 'none').
  m.def("_soft_set_loss_parts(Tensor preds, Tensor target, Tensor? weight, Tensor grid, str approx, float k, "
        "int num_classes, int? ignore_index, bool samplewise, int[] shape, str task, bool validate, str metric, "
        "str average, float beta, float zero_division, bool with_grad, bool deterministic=False) -> (Tensor, Tensor, Tensor)");
  // Planned training calls (loss_plans.h): the options of _soft_set_loss_parts after the tensors, stored once
  // under the number _soft_set_loss_plan returns; _planned_soft_set_loss(preds, target, weight, plan, ...) is
  // _soft_set_loss_parts with them; _drop_soft_set_loss_plan forgets one.
  m.def("_soft_set_loss_plan(Tensor grid, str approx, float k, int num_classes, int? ignore_index, bool samplewise, "
        "int[] shape, str task, bool validate, str metric, str average, float beta, float zero_division) -> int");
  m.def("_planned_soft_set_loss(Tensor preds, Tensor target, Tensor? weight, int plan, bool with_grad, "
        "bool deterministic=False) -> (Tensor, Tensor, Tensor)");
  m.def("_drop_soft_set_loss_plan(int plan) -> ()");
  // Build facts: the copy of the CPU sigmoid kernels that runs ("avx2+fma" or "baseline"), and the CUDA
  // version the kernels were compiled with (CUDA builds only).
  m.def("cpu_isa() -> str");
#ifdef SOFTSET_FAST_WITH_CUDA
  m.def("cuda_version() -> int");
#endif
}

STABLE_TORCH_LIBRARY_IMPL(softset_fast, CPU, m) {
  m.impl("soft_counts", TORCH_BOX(&softset::cpu::soft_counts_cpu));
  m.impl("_soft_counts_backward", TORCH_BOX(&softset::cpu::soft_counts_backward_cpu));
  m.impl("metric_loss", TORCH_BOX(&softset::cpu::metric_loss_cpu));
  m.impl("metric_loss_backward", TORCH_BOX(&softset::cpu::metric_loss_backward_cpu));
  m.impl("soft_set_loss", TORCH_BOX(&softset::soft_set_loss));
  m.impl("_soft_set_loss_parts", TORCH_BOX(&softset::soft_set_loss_training));
  m.impl("_soft_set_loss_plan", TORCH_BOX(&softset::soft_set_loss_plan));
  m.impl("_planned_soft_set_loss", TORCH_BOX(&softset::planned_soft_set_loss));
}

#ifdef SOFTSET_FAST_WITH_CUDA
STABLE_TORCH_LIBRARY_IMPL(softset_fast, CUDA, m) {
  m.impl("soft_counts", TORCH_BOX(&softset::cuda::soft_counts_cuda));
  m.impl("_soft_counts_backward", TORCH_BOX(&softset::cuda::soft_counts_backward_cuda));
  m.impl("metric_loss", TORCH_BOX(&softset::cuda::metric_loss_cuda));
  m.impl("metric_loss_backward", TORCH_BOX(&softset::cuda::metric_loss_backward_cuda));
  m.impl("soft_set_loss", TORCH_BOX(&softset::soft_set_loss));
  m.impl("_soft_set_loss_parts", TORCH_BOX(&softset::soft_set_loss_training));
  m.impl("_soft_set_loss_plan", TORCH_BOX(&softset::soft_set_loss_plan));
  m.impl("_planned_soft_set_loss", TORCH_BOX(&softset::planned_soft_set_loss));
}
#endif

// Ops without tensor arguments.
STABLE_TORCH_LIBRARY_IMPL(softset_fast, CompositeExplicitAutograd, m) {
  m.impl("cpu_isa", TORCH_BOX(&softset::cpu::cpu_isa));
  m.impl("_drop_soft_set_loss_plan", TORCH_BOX(&softset::drop_soft_set_loss_plan));
#ifdef SOFTSET_FAST_WITH_CUDA
  m.impl("cuda_version", TORCH_BOX(&softset::cuda::cuda_version));
#endif
}
