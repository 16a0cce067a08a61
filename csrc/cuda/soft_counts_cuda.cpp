// Glue of the soft_counts CUDA kernels (forward.cu, backward.cu), on torch's stable ABI
// (../torch_api.h): argument checks, device guard, current stream, outputs and workspaces
// from torch's caching allocator. The kernels see plain pointers only; softset.cpp
// registers these functions for the CUDA dispatch key.
//
// Determinism: with deterministic = true (the caller's torch.are_deterministic_algorithms_enabled(),
// a schema argument because the stable ABI cannot read torch's global context) the forward runs a
// fixed-order reduction (bit-identical run to run, O(N·T) work); otherwise linear/step use an
// O(N + T) histogram with float atomics, whose last bits can vary from run to run. The backward
// never uses atomics.
#include <cuda.h>
#include <cuda_runtime.h>

#include <cmath>
#include <limits>
#include <optional>
#include <string>

#include <torch/csrc/stable/accelerator.h>

#include "../op_checks.h"
#include "../ops.h"
#include "../torch_api.h"
#include "soft_counts_cuda.h"

namespace softset {
namespace cuda {
namespace {

using softset_cuda::DType;
using DeviceGuard = torch::stable::accelerator::DeviceGuard;

// The kernels' name of a dtype the checks (csrc/op_checks.cpp) already accepted.
DType to_dtype(ScalarType t) {
  switch (t) {
    case ScalarType::Bool: return DType::Bool;
    case ScalarType::Byte: return DType::UInt8;
    case ScalarType::Int: return DType::Int32;
    case ScalarType::Long: return DType::Int64;
    case ScalarType::Half: return DType::Half;
    case ScalarType::BFloat16: return DType::BFloat16;
    case ScalarType::Float: return DType::Float;
    case ScalarType::Double: return DType::Double;
    default: fail("unchecked dtype ", dtype_name(t));
  }
}

void check_attr(cudaError_t err, const char* op) {
  SOFTSET_CHECK(err == cudaSuccess, op, ": cannot read the device's attributes: ", cudaGetErrorString(err));
}

void check(cudaError_t err, const char* op) {
  SOFTSET_CHECK(err == cudaSuccess, op, ": CUDA error: ", cudaGetErrorString(err));
}

// Holds the contiguous tensors the Problem points into.
struct Inputs {
  Tensor preds, target, grid;
  OptionalTensor weight;
  softset_cuda::Problem problem;
};

Inputs make_inputs(const Tensor& preds, const Tensor& target, const OptionalTensor& weight, const Tensor& grid,
                   std::string_view approx, double k, int64_t num_classes, std::optional<int64_t> ignore_index,
                   bool samplewise, std::optional<DeviceGuard>& guard, const char* op) {
  // The argument checks read host metadata only and run before any device work, except the
  // grid's values: read once per grid tensor (a cached check, csrc/op_checks.cpp).
  SOFTSET_CHECK(preds.is_cuda(), op, ": preds must be a CUDA tensor, got ", device_name(preds));
  const OpShape shape = check_op_args(op, preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise);
  const int64_t N = shape.N, C = shape.C, L = shape.L;
  SOFTSET_CHECK((samplewise ? N * C : C) < std::numeric_limits<int32_t>::max() / 2, op, ": too many groups (",
                samplewise ? N * C : C, ") for one launch");
  const ScalarType pt = preds.scalar_type();
  const bool has_weight = weight.has_value() && weight->defined();

  const int32_t device = preds.get_device_index();
  guard.emplace(device);
  Inputs in{as_contiguous(preds), as_contiguous(target), as_contiguous(grid), std::nullopt, {}};
  if (has_weight) in.weight = as_contiguous(as_dtype(*weight, counts_dtype(pt)));

  softset_cuda::Problem& p = in.problem;
  p.preds = in.preds.data_ptr();
  p.preds_dtype = to_dtype(pt);
  p.target = in.target.data_ptr();
  p.target_dtype = to_dtype(target.scalar_type());
  p.weight = in.weight.has_value() ? in.weight->data_ptr() : nullptr;
  p.grid = static_cast<const double*>(in.grid.data_ptr());
  p.T = grid.size(0);
  p.approx = shape.approx;
  p.k = k;
  p.N = N;
  p.C = C;
  p.L = L;
  p.multiclass = num_classes > 0;
  p.has_ignore = ignore_index.has_value();
  p.ignore_index = ignore_index.value_or(0);
  p.samplewise = samplewise;
  // Device attributes straight from the runtime.
  check_attr(cudaDeviceGetAttribute(&p.sm_count, cudaDevAttrMultiProcessorCount, device), op);
  check_attr(cudaDeviceGetAttribute(&p.max_smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device), op);
  // The C shim's current stream (torch::stable::accelerator::Stream::nativeHandle needs torch 2.13).
  void* stream = nullptr;
  STABLE_TORCH_ERROR_CODE_CHECK(aoti_torch_get_current_cuda_stream(device, &stream));
  p.stream = static_cast<cudaStream_t>(stream);
  return in;
}

}  // namespace

Tensor soft_counts_cuda(const Tensor& preds, const Tensor& target, const OptionalTensor& weight, const Tensor& grid,
                        std::string_view approx, double k, int64_t num_classes, std::optional<int64_t> ignore_index,
                        bool samplewise, bool deterministic) {
  const char* op = "soft_counts";
  std::optional<DeviceGuard> guard;  // set by make_inputs once the arguments are checked
  Inputs in = make_inputs(preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise, guard, op);
  const softset_cuda::Problem& p = in.problem;
  const ScalarType out_type = counts_dtype(preds.scalar_type());
  const std::vector<int64_t> out_sizes{samplewise ? p.N : 1, p.C, p.T, 4};
  if (preds.numel() == 0) return new_zeros(preds, out_sizes, out_type);
  Tensor out = new_empty(preds, out_sizes, out_type);
  const size_t ws_bytes = softset_cuda::forward_workspace_bytes(p, deterministic);
  Tensor ws = new_empty(preds, {static_cast<int64_t>(ws_bytes)}, ScalarType::Byte);
  check(softset_cuda::forward(p, deterministic, ws.data_ptr(), out.data_ptr()), op);
  return out;
}

Tensor soft_counts_backward_cuda(const Tensor& grad, const Tensor& preds, const Tensor& target,
                                 const OptionalTensor& weight, const Tensor& grid, std::string_view approx, double k,
                                 int64_t num_classes, std::optional<int64_t> ignore_index, bool samplewise) {
  const char* op = "_soft_counts_backward";
  std::optional<DeviceGuard> guard;  // set by make_inputs once the arguments are checked
  Inputs in = make_inputs(preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise, guard, op);
  const softset_cuda::Problem& p = in.problem;
  check_backward_grad(op, grad, preds, OpShape{p.N, p.C, p.L, p.T, samplewise ? p.N : 1, p.approx});
  Tensor grad_preds = new_empty(preds, sizes_of(preds), preds.scalar_type());
  if (preds.numel() == 0) return grad_preds;
  const Tensor grad64 = as_contiguous(as_dtype(grad, ScalarType::Double));
  const size_t ws_bytes = softset_cuda::backward_workspace_bytes(p);
  Tensor ws = new_empty(preds, {static_cast<int64_t>(ws_bytes)}, ScalarType::Byte);
  check(softset_cuda::backward(p, static_cast<const double*>(grad64.data_ptr()), ws.data_ptr(), grad_preds.data_ptr()),
        op);
  return grad_preds;
}

int64_t cuda_version() { return CUDA_VERSION; }

}  // namespace cuda
}  // namespace softset
