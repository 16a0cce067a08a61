// Op schemas of softset_fast, defined once. Kernels register per device in
// csrc/cpu/ and csrc/cuda/; fake kernels and autograd live in softset_fast/ops.py.
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
  m.def("soft_counts_backward(Tensor grad, Tensor preds, Tensor target, Tensor? weight, Tensor grid, "
        "str approx, float k, int num_classes, int? ignore_index, bool samplewise) -> Tensor");
}
