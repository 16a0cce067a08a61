// The metric_loss kernels: the passes of csrc/epilogue.h in one block of threads, each
// pass a strided loop over its items with a barrier between passes. The data is tiny
// (G·C·T·4 numbers), so one block is enough and keeps every sum in a fixed order:
// deterministic, no atomics. One launch per call.
#include "epilogue_cuda.h"

namespace softset_cuda {
namespace {

using softset::epilogue::Average;
using softset::epilogue::Metric;
using softset::epilogue::Scratch;
namespace ep = softset::epilogue;

constexpr int kThreads = 256;

template <Metric M, typename S>
__global__ void __launch_bounds__(kThreads)
    metric_loss_kernel(const Problem pr, const S* __restrict__ counts, double* __restrict__ scratch, S* out) {
  const Scratch s = Scratch::at(pr, scratch);
  const int64_t first = threadIdx.x, stride = blockDim.x;
  if (pr.average == Average::kMicro) {
    for (int64_t g = first; g < pr.G; g += stride) ep::micro_pass<M>(pr, counts, g, s);
  } else {
    for (int64_t i = first; i < pr.G * pr.C; i += stride) ep::class_pass<M>(pr, counts, i, s);
  }
  __syncthreads();
  if (pr.average == Average::kNone) {
    for (int64_t c = first; c < pr.C; c += stride) out[c] = static_cast<S>(ep::class_loss_value(pr, s, c));
    return;
  }
  for (int64_t g = first; g < pr.G; g += stride) ep::group_pass(pr, g, s);
  __syncthreads();
  if (first == 0) out[0] = static_cast<S>(ep::loss_value(pr, s));
}

template <Metric M, typename S>
__global__ void __launch_bounds__(kThreads)
    metric_loss_backward_kernel(const Problem pr, const S* __restrict__ counts, const S* __restrict__ grad,
                                double* __restrict__ scratch, S* __restrict__ grad_counts) {
  const Scratch s = Scratch::at(pr, scratch);
  const int64_t first = threadIdx.x, stride = blockDim.x;
  if (pr.average == Average::kMicro) {
    for (int64_t g = first; g < pr.G; g += stride) ep::micro_backward<M>(pr, counts, grad, g, grad_counts);
    return;
  }
  if (pr.average == Average::kWeighted) {  // the class weights and rows first
    for (int64_t i = first; i < pr.G * pr.C; i += stride) ep::class_pass<M>(pr, counts, i, s);
    __syncthreads();
    for (int64_t g = first; g < pr.G; g += stride) ep::group_pass(pr, g, s);
    __syncthreads();
  }
  for (int64_t i = first; i < pr.G * pr.C; i += stride) ep::class_backward<M>(pr, counts, grad, i, s, grad_counts);
}

template <typename S>
void forward(const Problem& pr, const S* counts, double* scratch, S* out, cudaStream_t stream) {
  ep::dispatch_metric(pr.metric, [&](auto kind) {
    metric_loss_kernel<decltype(kind)::value, S><<<1, kThreads, 0, stream>>>(pr, counts, scratch, out);
  });
}

template <typename S>
void backward(const Problem& pr, const S* counts, const S* grad, double* scratch, S* grad_counts,
              cudaStream_t stream) {
  ep::dispatch_metric(pr.metric, [&](auto kind) {
    metric_loss_backward_kernel<decltype(kind)::value, S>
        <<<1, kThreads, 0, stream>>>(pr, counts, grad, scratch, grad_counts);
  });
}

}  // namespace

void launch_metric_loss(const Problem& pr, const float* counts, double* scratch, float* out, cudaStream_t stream) {
  forward(pr, counts, scratch, out, stream);
}

void launch_metric_loss(const Problem& pr, const double* counts, double* scratch, double* out, cudaStream_t stream) {
  forward(pr, counts, scratch, out, stream);
}

void launch_metric_loss_backward(const Problem& pr, const float* counts, const float* grad, double* scratch,
                                 float* grad_counts, cudaStream_t stream) {
  backward(pr, counts, grad, scratch, grad_counts, stream);
}

void launch_metric_loss_backward(const Problem& pr, const double* counts, const double* grad, double* scratch,
                                 double* grad_counts, cudaStream_t stream) {
  backward(pr, counts, grad, scratch, grad_counts, stream);
}

}  // namespace softset_cuda
