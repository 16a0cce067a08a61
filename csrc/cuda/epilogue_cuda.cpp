// Glue of the metric_loss CUDA kernels (epilogue.cu), on torch's stable ABI (../torch_api.h):
// the argument checks of epilogue_args.h, device guard, current stream, outputs and scratch
// from torch's caching allocator, and the launch check. softset.cpp registers these functions
// for the CUDA dispatch key.
#include <cuda_runtime.h>

#include <algorithm>

#include <torch/csrc/stable/accelerator.h>

#include "../epilogue_args.h"
#include "../ops.h"
#include "../torch_api.h"
#include "epilogue_cuda.h"

namespace softset {
namespace cuda {
namespace {

using epilogue::Problem;

Tensor scratch_for(const Problem& pr, const Tensor& counts) {
  return new_empty(counts, {std::max<int64_t>(1, pr.scratch_size())}, ScalarType::Double);
}

// The C shim's current stream of device (torch::stable::accelerator::Stream::nativeHandle needs torch 2.13).
cudaStream_t current_stream(int32_t device) {
  void* stream = nullptr;
  STABLE_TORCH_ERROR_CODE_CHECK(aoti_torch_get_current_cuda_stream(device, &stream));
  return static_cast<cudaStream_t>(stream);
}

// The launches' error, if any (what C10_CUDA_KERNEL_LAUNCH_CHECK read).
void check_launch(const char* op) {
  const cudaError_t err = cudaGetLastError();
  SOFTSET_CHECK(err == cudaSuccess, op, ": CUDA error: ", cudaGetErrorString(err));
}

template <typename S>
S* ptr(const Tensor& x) {
  return static_cast<S*>(x.data_ptr());
}

}  // namespace

Tensor metric_loss_cuda(const Tensor& counts, std::string_view metric, std::string_view average, double beta,
                        double zero_division) {
  const char* op = "metric_loss";
  const Problem pr = epilogue::make_problem(counts, metric, average, beta, zero_division, op);
  SOFTSET_CHECK(counts.is_cuda(), op, ": counts must be a CUDA tensor, got ", device_name(counts));
  const int32_t device = counts.get_device_index();
  const torch::stable::accelerator::DeviceGuard guard(device);
  const cudaStream_t stream = current_stream(device);
  const Tensor cm = as_contiguous(counts);
  Tensor out = new_empty(cm, epilogue::loss_shape(pr), cm.scalar_type());
  Tensor scratch = scratch_for(pr, cm);
  if (cm.scalar_type() == ScalarType::Double) {
    softset_cuda::launch_metric_loss(pr, ptr<double>(cm), ptr<double>(scratch), ptr<double>(out), stream);
  } else {
    softset_cuda::launch_metric_loss(pr, ptr<float>(cm), ptr<double>(scratch), ptr<float>(out), stream);
  }
  check_launch(op);
  return out;
}

Tensor metric_loss_backward_cuda(const Tensor& grad, const Tensor& counts, std::string_view metric,
                                 std::string_view average, double beta, double zero_division) {
  const char* op = "metric_loss_backward";
  const Problem pr = epilogue::make_problem(counts, metric, average, beta, zero_division, op);
  epilogue::check_grad(grad, counts, pr, average, op);
  SOFTSET_CHECK(counts.is_cuda(), op, ": counts must be a CUDA tensor, got ", device_name(counts));
  const int32_t device = counts.get_device_index();
  const torch::stable::accelerator::DeviceGuard guard(device);
  const cudaStream_t stream = current_stream(device);
  const Tensor cm = as_contiguous(counts);
  const Tensor upstream = as_contiguous(as_dtype(grad, cm.scalar_type()));
  Tensor grad_counts = new_empty(cm, sizes_of(cm), cm.scalar_type());
  Tensor scratch = scratch_for(pr, cm);
  if (cm.scalar_type() == ScalarType::Double) {
    softset_cuda::launch_metric_loss_backward(pr, ptr<double>(cm), ptr<double>(upstream), ptr<double>(scratch),
                                              ptr<double>(grad_counts), stream);
  } else {
    softset_cuda::launch_metric_loss_backward(pr, ptr<float>(cm), ptr<float>(upstream), ptr<double>(scratch),
                                              ptr<float>(grad_counts), stream);
  }
  check_launch(op);
  return grad_counts;
}

}  // namespace cuda
}  // namespace softset
