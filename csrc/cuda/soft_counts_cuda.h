// Torch-free interface between the CUDA kernels (*.cu, CUDA/CUB headers only)
// and the dispatcher glue (soft_counts_cuda.cpp). Plain pointers, int64 sizes.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

namespace softset_cuda {

// Element types the kernels read directly.
enum class DType : int { Bool, UInt8, Int32, Int64, Half, BFloat16, Float, Double };
enum class Approx : int { Linear, Sigmoid, Step };

// One call of soft_counts / soft_counts_backward on [N, C, L] contiguous inputs.
// Group g (one output row of [G*C, T, 4]) is c for global sums, n*C + c for samplewise.
struct Problem {
  const void* preds = nullptr;   // [N, C, L]
  DType preds_dtype = DType::Float;
  const void* target = nullptr;  // [N, C, L] (num_classes == 0) or class indices [N, L]
  DType target_dtype = DType::Bool;
  const void* weight = nullptr;  // nullptr or target's shape; float64 for float64 preds, else float32
  const double* grid = nullptr;  // [T, 8]: tau, a, b, m1, m2, m3, c2, c3
  int64_t T = 0;
  Approx approx = Approx::Linear;
  double k = 10.0;
  int64_t N = 0, C = 0, L = 0;
  bool multiclass = false;       // num_classes > 0: y = (target[n, l] == c)
  bool has_ignore = false;
  int64_t ignore_index = 0;
  bool samplewise = false;
  // Device facts the launcher needs (read by the glue from the current device).
  int sm_count = 1;
  int max_smem_optin = 48 * 1024;  // cudaDevAttrMaxSharedMemoryPerBlockOptin
  cudaStream_t stream = nullptr;

  int64_t groups() const { return samplewise ? N * C : C; }
  int64_t group_len() const { return samplewise ? L : N * L; }
};

// Forward. Writes out [groups, T, 4] (float32, or float64 for float64 preds).
// deterministic = true: fixed-order reduction, bit-identical run to run, O(N*T) work.
// deterministic = false: O(N + T) histogram with float atomics for linear/step.
// The workspace (bytes from forward_workspace_bytes) is scratch memory on the device.
size_t forward_workspace_bytes(const Problem& p, bool deterministic);
cudaError_t forward(const Problem& p, bool deterministic, void* workspace, void* out);

// Backward. grad [groups, T, 4] float64; writes grad_preds [N, C, L] in preds' dtype.
// Elementwise once the per-threshold tables are built: always deterministic.
size_t backward_workspace_bytes(const Problem& p);
cudaError_t backward(const Problem& p, const double* grad, void* workspace, void* grad_preds);

}  // namespace softset_cuda
