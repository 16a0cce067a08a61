// Dispatcher glue of the CUDA kernels: argument checks, device guard, current
// stream, outputs and workspaces from torch's caching allocator, and the
// TORCH_LIBRARY_IMPL(softset_fast, CUDA) registration. The kernels themselves
// (forward.cu, backward.cu) see plain pointers only.
//
// Determinism: under torch.use_deterministic_algorithms(True) the forward runs a
// fixed-order reduction (bit-identical run to run, O(N·T) work); by default
// linear/step use an O(N + T) histogram with float atomics, whose last bits can
// vary from run to run. The backward never uses atomics.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda.h>
#include <cuda_runtime.h>
#include <torch/library.h>


#include <cmath>
#include <limits>
#include <string>

#include "../op_checks.h"
#include "soft_counts_cuda.h"

namespace {

using softset_cuda::DType;

// The kernels' name of a dtype the checks (csrc/op_checks.cpp) already accepted.
DType to_dtype(at::ScalarType t) {
  switch (t) {
    case at::kBool: return DType::Bool;
    case at::kByte: return DType::UInt8;
    case at::kInt: return DType::Int32;
    case at::kLong: return DType::Int64;
    case at::kHalf: return DType::Half;
    case at::kBFloat16: return DType::BFloat16;
    case at::kFloat: return DType::Float;
    case at::kDouble: return DType::Double;
    default: TORCH_INTERNAL_ASSERT(false, "unchecked dtype ", t);
  }
}

void check_attr(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, op, ": cannot read the device's attributes: ", cudaGetErrorString(err));
}

// Holds the contiguous tensors the Problem points into.
struct Inputs {
  at::Tensor preds, target, weight, grid;
  softset_cuda::Problem problem;
};

Inputs make_inputs(const at::Tensor& preds, const at::Tensor& target, const c10::optional<at::Tensor>& weight,
                   const at::Tensor& grid, c10::string_view approx, double k, int64_t num_classes,
                   c10::optional<int64_t> ignore_index, bool samplewise, c10::cuda::OptionalCUDAGuard& guard,
                   const char* op) {
  // The argument checks read host metadata only and run before any device work, except the
  // grid's values: read once per grid tensor (a cached check, csrc/op_checks.cpp).
  TORCH_CHECK(preds.is_cuda(), op, ": preds must be a CUDA tensor, got ", preds.device());
  const softset::OpShape shape =
      softset::check_op_args(op, preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise);
  const int64_t N = shape.N, C = shape.C, L = shape.L;
  TORCH_CHECK((samplewise ? N * C : C) < std::numeric_limits<int32_t>::max() / 2, op, ": too many groups (",
              samplewise ? N * C : C, ") for one launch");
  const at::ScalarType pt = preds.scalar_type();
  const bool has_weight = weight.has_value() && weight->defined();

  guard.set_device(preds.device());
  Inputs in;
  if (has_weight) in.weight = weight->to(softset::counts_dtype(pt)).contiguous();
  in.preds = preds.contiguous();
  in.target = target.contiguous();
  in.grid = grid.contiguous();

  softset_cuda::Problem& p = in.problem;
  p.preds = in.preds.data_ptr();
  p.preds_dtype = to_dtype(pt);
  p.target = in.target.data_ptr();
  p.target_dtype = to_dtype(target.scalar_type());
  p.weight = in.weight.defined() ? in.weight.data_ptr() : nullptr;
  p.grid = in.grid.data_ptr<double>();
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
  // Device attributes straight from the runtime (ATen/cuda/CUDAContext.h would pull in the
  // cuBLAS/cuSPARSE headers, which minimal toolkits lack).
  const int device = preds.get_device();
  check_attr(cudaDeviceGetAttribute(&p.sm_count, cudaDevAttrMultiProcessorCount, device), op);
  check_attr(cudaDeviceGetAttribute(&p.max_smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device), op);
  p.stream = c10::cuda::getCurrentCUDAStream(device).stream();
  return in;
}

void check(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, op, ": CUDA error: ", cudaGetErrorString(err));
}

at::Tensor soft_counts_cuda(const at::Tensor& preds, const at::Tensor& target, const c10::optional<at::Tensor>& weight,
                            const at::Tensor& grid, c10::string_view approx, double k, int64_t num_classes,
                            c10::optional<int64_t> ignore_index, bool samplewise) {
  const char* op = "soft_counts";
  c10::cuda::OptionalCUDAGuard guard;  // set by make_inputs once the arguments are checked
  Inputs in = make_inputs(preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise, guard, op);
  const softset_cuda::Problem& p = in.problem;
  const at::ScalarType out_type = softset::counts_dtype(preds.scalar_type());
  const int64_t G = samplewise ? p.N : 1;
  if (preds.numel() == 0) return at::zeros({G, p.C, p.T, 4}, preds.options().dtype(out_type));
  at::Tensor out = at::empty({G, p.C, p.T, 4}, preds.options().dtype(out_type));
  const bool deterministic = at::globalContext().deterministicAlgorithms();
  const size_t ws_bytes = softset_cuda::forward_workspace_bytes(p, deterministic);
  at::Tensor ws = at::empty({static_cast<int64_t>(ws_bytes)}, preds.options().dtype(at::kByte));
  check(softset_cuda::forward(p, deterministic, ws.data_ptr(), out.data_ptr()), op);
  return out;
}

at::Tensor soft_counts_backward_cuda(const at::Tensor& grad, const at::Tensor& preds, const at::Tensor& target,
                                     const c10::optional<at::Tensor>& weight, const at::Tensor& grid,
                                     c10::string_view approx, double k, int64_t num_classes,
                                     c10::optional<int64_t> ignore_index, bool samplewise) {
  const char* op = "_soft_counts_backward";
  c10::cuda::OptionalCUDAGuard guard;  // set by make_inputs once the arguments are checked
  Inputs in = make_inputs(preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise, guard, op);
  const softset_cuda::Problem& p = in.problem;
  softset::check_backward_grad(op, grad, preds,
                               softset::OpShape{p.N, p.C, p.L, p.T, samplewise ? p.N : 1, p.approx});
  at::Tensor grad_preds = at::empty(preds.sizes(), preds.options().memory_format(at::MemoryFormat::Contiguous));
  if (preds.numel() == 0) return grad_preds;
  const at::Tensor grad64 = grad.to(at::kDouble).contiguous();
  const size_t ws_bytes = softset_cuda::backward_workspace_bytes(p);
  at::Tensor ws = at::empty({static_cast<int64_t>(ws_bytes)}, preds.options().dtype(at::kByte));
  check(softset_cuda::backward(p, grad64.data_ptr<double>(), ws.data_ptr(), grad_preds.data_ptr()), op);
  return grad_preds;
}

// CUDA version the extension was compiled with (e.g. 13000), for the import-time check.
int64_t cuda_version() { return CUDA_VERSION; }

}  // namespace

TORCH_LIBRARY_FRAGMENT(softset_fast, m) {
  m.def("cuda_version() -> int", &cuda_version);
}

TORCH_LIBRARY_IMPL(softset_fast, CUDA, m) {
  m.impl("soft_counts", &soft_counts_cuda);
  m.impl("_soft_counts_backward", &soft_counts_backward_cuda);
}
