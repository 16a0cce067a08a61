// Op schemas of softset_fast, defined once. Kernels register per device in
// csrc/cpu/ and csrc/cuda/ (soft_set_loss, which calls the others: csrc/soft_set_loss.cpp),
// autograd in csrc/autograd.cpp; fake kernels in softset_fast/backends/extension.py.
#include <Python.h>
#include <torch/library.h>

extern "C" {
// An empty module: importing softset_fast._C runs the static registrations below.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(softset_fast, m) {
  // preds [N, C, L]; target [N, C, L] (num_classes == 0) or class indices [N, L] (num_classes == C);
  // weight None or target's shape; grid [T, 8] float64 (tau, a, b, m1, m2, m3, c2, c3).
  // Returns [G, C, T, 4] = (tp, fn, fp, tn), G = N if samplewise else 1;
  // float64 for float64 preds, else float32.
  m.def("soft_counts(Tensor preds, Tensor target, Tensor? weight, Tensor grid, str approx, float k, "
        "int num_classes, int? ignore_index, bool samplewise) -> Tensor");
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
        "str average, float beta, float zero_division) -> Tensor");
}
