// Torch-free interface between the CUDA kernels (*.cu, CUDA/CUB headers only) and the
// dispatcher glue (soft_counts_cuda.cpp). Plain pointers, int64 sizes.
#pragma once

#include <cuda_runtime.h>

#include "plan.h"  // Problem; forward_workspace_bytes, backward_workspace_bytes

namespace softset_cuda {

// Forward. Writes out [groups, T, 4] (float32, or float64 for float64 preds).
// deterministic = true: fixed-order reduction, bit-identical run to run, O(N*T) work.
// deterministic = false: O(N + T) histogram with atomics for linear/step.
// The workspace (forward_workspace_bytes(p, deterministic) bytes) is device scratch memory.
cudaError_t forward(const Problem& p, bool deterministic, void* workspace, void* out);

// Backward. grad [groups, T, 4] float64; writes grad_preds [N, C, L] in preds' dtype.
// Elementwise once the per-threshold tables are built: always deterministic.
// The workspace holds backward_workspace_bytes(p) bytes.
cudaError_t backward(const Problem& p, const double* grad, void* workspace, void* grad_preds);

}  // namespace softset_cuda
