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

#include <c10/util/intrusive_ptr.h>

#include <cmath>
#include <limits>
#include <mutex>
#include <string>

#include "soft_counts_cuda.h"

namespace {

using softset_cuda::Approx;
using softset_cuda::DType;

DType to_dtype(at::ScalarType t, const char* op, const char* name) {
  switch (t) {
    case at::kBool: return DType::Bool;
    case at::kByte: return DType::UInt8;
    case at::kInt: return DType::Int32;
    case at::kLong: return DType::Int64;
    case at::kHalf: return DType::Half;
    case at::kBFloat16: return DType::BFloat16;
    case at::kFloat: return DType::Float;
    case at::kDouble: return DType::Double;
    default:
      TORCH_CHECK(false, op, ": ", name, " must be bool, uint8, int32, int64, float16, bfloat16, float32 or float64, got ",
                  t);
  }
}

Approx to_approx(c10::string_view approx, double k, const char* op) {
  if (approx == "linear") return Approx::Linear;
  if (approx == "step") return Approx::Step;
  if (approx == "sigmoid") {
    TORCH_CHECK(std::isfinite(k) && k > 0, op, ": k must be a finite number > 0 for approx='sigmoid', got ", k);
    return Approx::Sigmoid;
  }
  TORCH_CHECK(false, op, ": approx must be 'linear', 'sigmoid' or 'step', got '", std::string(approx), "'");
}

void check_attr(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, op, ": cannot read the device's attributes: ", cudaGetErrorString(err));
}

// The grid must be ascending (tau strictly; a, b for linear), as the CPU kernel checks:
// the segment indices assume it. The kernels stay in bounds on any grid (every index is
// clamped to [0, T]), but the sums would be wrong. Reading the grid costs a
// device-to-host copy (a sync), so the last grid that passed is remembered by identity
// (a weak reference, so a freed grid's address cannot alias) and version counter
// (bumped by in-place writes): a cached coefficient table is checked once.
void check_grid_order(const at::Tensor& grid, Approx approx, const char* op) {
  static std::mutex mutex;
  static c10::weak_intrusive_ptr<c10::TensorImpl> last_grid{c10::intrusive_ptr<c10::TensorImpl>()};
  static int64_t last_version = -1;
  static bool last_linear = false;
  const bool linear = approx == Approx::Linear;
  {
    std::lock_guard<std::mutex> lock(mutex);
    const auto alive = last_grid.lock();
    if (alive.get() == grid.unsafeGetTensorImpl() && last_version == static_cast<int64_t>(grid._version()) &&
        (last_linear || !linear))
      return;
  }
  const at::Tensor host = grid.to(at::kCPU).contiguous();
  const double* g = host.data_ptr<double>();
  const int64_t T = host.size(0);
  for (int64_t t = 1; t < T; ++t) {
    TORCH_CHECK(g[t * 8] > g[(t - 1) * 8], op, ": grid thresholds (column 0) must be strictly ascending");
    if (linear) {
      TORCH_CHECK(g[t * 8 + 1] >= g[(t - 1) * 8 + 1] && g[t * 8 + 2] >= g[(t - 1) * 8 + 2], op,
                  ": grid breakpoints a, b (columns 1, 2) must be ascending; build grid with "
                  "softset_fast._grid.coefficient_table");
    }
  }
  std::lock_guard<std::mutex> lock(mutex);
  last_grid = c10::weak_intrusive_ptr<c10::TensorImpl>(grid.getIntrusivePtr());
  last_version = static_cast<int64_t>(grid._version());
  last_linear = linear;
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
  // The argument checks read host metadata only and run before any device work.
  TORCH_CHECK(preds.is_cuda(), op, ": preds must be a CUDA tensor, got ", preds.device());
  TORCH_CHECK(preds.dim() == 3, op, ": preds must have shape [N, C, L], got ", preds.sizes());
  const at::ScalarType pt = preds.scalar_type();
  TORCH_CHECK(pt == at::kHalf || pt == at::kBFloat16 || pt == at::kFloat || pt == at::kDouble, op,
              ": preds must be float16, bfloat16, float32 or float64, got ", pt);
  (void)to_dtype(target.scalar_type(), op, "target");
  TORCH_CHECK(target.device() == preds.device(), op, ": target must be on preds' device ", preds.device(), ", got ",
              target.device());
  TORCH_CHECK(grid.device() == preds.device(), op, ": grid must be on preds' device ", preds.device(), ", got ",
              grid.device());
  TORCH_CHECK(grid.dim() == 2 && grid.size(1) == 8 && grid.size(0) >= 1, op,
              ": grid must be the coefficient table [T, 8] with T >= 1, got ", grid.sizes());
  TORCH_CHECK(grid.scalar_type() == at::kDouble, op, ": grid must be float64, got ", grid.scalar_type());
  TORCH_CHECK(grid.size(0) < (1 << 28), op, ": grid has too many thresholds (", grid.size(0), ")");
  TORCH_CHECK(num_classes >= 0, op, ": num_classes must be >= 0, got ", num_classes);
  const int64_t N = preds.size(0), C = preds.size(1), L = preds.size(2);
  if (num_classes > 0) {
    TORCH_CHECK(num_classes == C, op, ": num_classes=", num_classes, " does not match preds.shape[1]=", C);
    TORCH_CHECK(target.dim() == 2 && target.size(0) == N && target.size(1) == L, op,
                ": target must hold class indices of shape [N, L] = [", N, ", ", L, "], got ", target.sizes());
    TORCH_CHECK(at::isIntegralType(target.scalar_type(), /*includeBool=*/false), op,
                ": target must be an integer tensor of class indices when num_classes > 0, got ",
                target.scalar_type());
    TORCH_CHECK(!ignore_index.has_value() || *ignore_index < 0 || *ignore_index >= C, op,
                ": ignore_index=", ignore_index.value_or(0), " lies inside the class range [0, ", C,
                "); choose a value outside it (e.g. -100 or 255)");
  } else {
    TORCH_CHECK(target.sizes() == preds.sizes(), op, ": target must have the shape of preds ", preds.sizes(), ", got ",
                target.sizes());
  }
  const bool has_weight = weight.has_value() && weight->defined();
  if (has_weight) {
    TORCH_CHECK(weight->device() == preds.device(), op, ": weight must be on preds' device ", preds.device(), ", got ",
                weight->device());
    TORCH_CHECK(weight->sizes() == target.sizes(), op, ": weight must have the shape of target ", target.sizes(),
                ", got ", weight->sizes());
    TORCH_CHECK(at::isFloatingType(weight->scalar_type()), op, ": weight must be floating point, got ",
                weight->scalar_type());
  }
  const Approx approx_kind = to_approx(approx, k, op);
  TORCH_CHECK((samplewise ? N * C : C) < std::numeric_limits<int32_t>::max() / 2, op, ": too many groups (",
              samplewise ? N * C : C, ") for one launch");

  guard.set_device(preds.device());
  Inputs in;
  const at::ScalarType acc = pt == at::kDouble ? at::kDouble : at::kFloat;
  if (has_weight) in.weight = weight->to(acc).contiguous();
  in.preds = preds.contiguous();
  in.target = target.contiguous();
  in.grid = grid.contiguous();
  check_grid_order(in.grid, approx_kind, op);

  softset_cuda::Problem& p = in.problem;
  p.preds = in.preds.data_ptr();
  p.preds_dtype = to_dtype(pt, op, "preds");
  p.target = in.target.data_ptr();
  p.target_dtype = to_dtype(target.scalar_type(), op, "target");
  p.weight = in.weight.defined() ? in.weight.data_ptr() : nullptr;
  p.grid = in.grid.data_ptr<double>();
  p.T = grid.size(0);
  p.approx = approx_kind;
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
  const at::ScalarType out_type = preds.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
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
  const char* op = "soft_counts_backward";
  c10::cuda::OptionalCUDAGuard guard;  // set by make_inputs once the arguments are checked
  Inputs in = make_inputs(preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise, guard, op);
  const softset_cuda::Problem& p = in.problem;
  TORCH_CHECK(grad.device() == preds.device(), op, ": grad must be on preds' device ", preds.device(), ", got ",
              grad.device());
  const int64_t G = samplewise ? p.N : 1;
  TORCH_CHECK(grad.dim() == 4 && grad.size(0) == G && grad.size(1) == p.C && grad.size(2) == p.T && grad.size(3) == 4,
              op, ": grad must have shape [", G, ", ", p.C, ", ", p.T, ", 4], got ", grad.sizes());
  TORCH_CHECK(at::isFloatingType(grad.scalar_type()), op, ": grad must be floating point, got ", grad.scalar_type());
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
  m.impl("soft_counts_backward", &soft_counts_backward_cuda);
}
