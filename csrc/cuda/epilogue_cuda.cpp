// Dispatcher glue of the metric_loss CUDA kernels (epilogue.cu): the argument checks of
// epilogue_args.h, device guard, current stream, outputs and scratch from torch's
// caching allocator, the launch check, and TORCH_LIBRARY_IMPL(softset_fast, CUDA).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>

#include "../epilogue_args.h"
#include "epilogue_cuda.h"

namespace {

using softset::epilogue::Problem;

at::Tensor scratch_for(const Problem& pr, const at::Tensor& counts) {
  return at::empty({std::max<int64_t>(1, pr.scratch_size())}, counts.options().dtype(at::kDouble));
}

at::Tensor metric_loss_cuda(const at::Tensor& counts, c10::string_view metric, c10::string_view average, double beta,
                            double zero_division) {
  const char* op = "metric_loss";
  const Problem pr = softset::epilogue::make_problem(counts, metric, average, beta, zero_division, op);
  TORCH_CHECK(counts.is_cuda(), op, ": counts must be a CUDA tensor, got ", counts.device());
  const c10::cuda::CUDAGuard guard(counts.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(counts.get_device()).stream();
  const at::Tensor cm = counts.contiguous();
  at::Tensor out = at::empty(softset::epilogue::loss_shape(pr), cm.options());
  at::Tensor scratch = scratch_for(pr, cm);
  if (cm.scalar_type() == at::kDouble) {
    softset_cuda::launch_metric_loss(pr, cm.data_ptr<double>(), scratch.data_ptr<double>(), out.data_ptr<double>(),
                                     stream);
  } else {
    softset_cuda::launch_metric_loss(pr, cm.data_ptr<float>(), scratch.data_ptr<double>(), out.data_ptr<float>(),
                                     stream);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

at::Tensor metric_loss_backward_cuda(const at::Tensor& grad, const at::Tensor& counts, c10::string_view metric,
                                     c10::string_view average, double beta, double zero_division) {
  const char* op = "metric_loss_backward";
  const Problem pr = softset::epilogue::make_problem(counts, metric, average, beta, zero_division, op);
  softset::epilogue::check_grad(grad, counts, pr, average, op);
  TORCH_CHECK(counts.is_cuda(), op, ": counts must be a CUDA tensor, got ", counts.device());
  const c10::cuda::CUDAGuard guard(counts.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(counts.get_device()).stream();
  const at::Tensor cm = counts.contiguous();
  const at::Tensor upstream = grad.to(cm.scalar_type()).contiguous();
  at::Tensor grad_counts = at::empty(cm.sizes(), cm.options());
  at::Tensor scratch = scratch_for(pr, cm);
  if (cm.scalar_type() == at::kDouble) {
    softset_cuda::launch_metric_loss_backward(pr, cm.data_ptr<double>(), upstream.data_ptr<double>(),
                                              scratch.data_ptr<double>(), grad_counts.data_ptr<double>(), stream);
  } else {
    softset_cuda::launch_metric_loss_backward(pr, cm.data_ptr<float>(), upstream.data_ptr<float>(),
                                              scratch.data_ptr<double>(), grad_counts.data_ptr<float>(), stream);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return grad_counts;
}

}  // namespace

TORCH_LIBRARY_IMPL(softset_fast, CUDA, m) {
  m.impl("metric_loss", &metric_loss_cuda);
  m.impl("metric_loss_backward", &metric_loss_backward_cuda);
}
