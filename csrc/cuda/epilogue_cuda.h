// Torch-free interface between the metric_loss kernels (epilogue.cu, CUDA headers only)
// and their dispatcher glue (epilogue_cuda.cpp). Plain pointers to contiguous device memory.
#pragma once

#include <cstddef>

#include <cuda_runtime.h>

#include "../epilogue.h"

namespace softset_cuda {

using softset::epilogue::Problem;

// scratch: Problem::scratch_size() doubles of device memory (at least one).
// Forward: counts [G, C, T, 4] -> out, the loss (one value, or [C] for average none).
void launch_metric_loss(const Problem& pr, const float* counts, double* scratch, float* out, cudaStream_t stream);
void launch_metric_loss(const Problem& pr, const double* counts, double* scratch, double* out, cudaStream_t stream);

// Backward: grad (the loss's shape, counts' dtype) -> grad_counts [G, C, T, 4].
void launch_metric_loss_backward(const Problem& pr, const float* counts, const float* grad, double* scratch,
                                 float* grad_counts, cudaStream_t stream);
void launch_metric_loss_backward(const Problem& pr, const double* counts, const double* grad, double* scratch,
                                 double* grad_counts, cudaStream_t stream);

}  // namespace softset_cuda
