// One definition of the soft_counts ops' argument checks (see op_checks.h).
#include "op_checks.h"

#include <c10/util/intrusive_ptr.h>

#include <cmath>
#include <mutex>
#include <string>

namespace softset {
namespace {

bool floating_preds(at::ScalarType t) {
  return t == at::kHalf || t == at::kBFloat16 || t == at::kFloat || t == at::kDouble;
}

bool kernel_target_dtype(at::ScalarType t) {
  return t == at::kBool || t == at::kByte || t == at::kInt || t == at::kLong || floating_preds(t);
}

Approx parse_approx(const char* op, c10::string_view approx, double k) {
  if (approx == "linear") return Approx::kLinear;
  if (approx == "step") return Approx::kStep;
  if (approx == "sigmoid") {
    TORCH_CHECK(std::isfinite(k) && k > 0, op, ": k must be a finite number > 0 for approx='sigmoid', got ", k);
    return Approx::kSigmoid;
  }
  TORCH_CHECK(false, op, ": approx must be 'linear', 'sigmoid' or 'step', got '", std::string(approx), "'");
}

void check_grid_values(const char* op, const double* g, int64_t T, Approx approx) {
  for (int64_t t = 0; t < T; ++t) {
    const double* row = g + t * kGridColumns;
    for (int col = 0; col < kGridColumns; ++col) {
      TORCH_CHECK(std::isfinite(row[col]), op,
                  ": grid must be finite in every column (tau, a, b, m1, m2, m3, c2, c3); row ", t, " column ", col,
                  " is ", row[col]);
    }
    if (approx == Approx::kLinear) {
      TORCH_CHECK(row[kA] <= row[kTau] && row[kTau] <= row[kB], op, ": grid row ", t,
                  " must have a <= tau <= b (columns 1, 0, 2); build grid with softset_fast._grid.coefficient_table");
    }
    if (t == 0) continue;
    const double* prev = row - kGridColumns;
    TORCH_CHECK(row[kTau] > prev[kTau], op, ": grid thresholds (column 0) must be strictly ascending");
    if (approx == Approx::kLinear) {
      TORCH_CHECK(row[kA] >= prev[kA] && row[kB] >= prev[kB], op,
                  ": grid breakpoints a, b (columns 1, 2) must be ascending; build grid with "
                  "softset_fast._grid.coefficient_table");
    }
  }
}

}  // namespace

std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kBool: return "bool";
    case at::kByte: return "uint8";
    case at::kChar: return "int8";
    case at::kShort: return "int16";
    case at::kInt: return "int32";
    case at::kLong: return "int64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    default: return c10::toString(t);
  }
}

void check_grid(const char* op, const at::Tensor& grid, Approx approx) {
  static std::mutex mutex;
  static c10::weak_intrusive_ptr<c10::TensorImpl> last_grid{c10::intrusive_ptr<c10::TensorImpl>()};
  static int64_t last_version = -1;
  static bool last_linear = false;
  const bool linear = approx == Approx::kLinear;
  {
    std::lock_guard<std::mutex> lock(mutex);
    const auto alive = last_grid.lock();
    if (alive.get() == grid.unsafeGetTensorImpl() && last_version == static_cast<int64_t>(grid._version()) &&
        (last_linear || !linear))
      return;
  }
  // No aten::to for a CPU grid: it would return its input, which an op called below autograd must not.
  const at::Tensor host = (grid.is_cpu() ? grid : grid.to(at::kCPU)).contiguous();
  check_grid_values(op, host.data_ptr<double>(), host.size(0), approx);
  std::lock_guard<std::mutex> lock(mutex);
  last_grid = c10::weak_intrusive_ptr<c10::TensorImpl>(grid.getIntrusivePtr());
  last_version = static_cast<int64_t>(grid._version());
  last_linear = linear;
}

OpShape check_op_args(const char* op, const at::Tensor& preds, const at::Tensor& target,
                      const c10::optional<at::Tensor>& weight, const at::Tensor& grid, c10::string_view approx,
                      double k, int64_t num_classes, c10::optional<int64_t> ignore_index, bool samplewise) {
  TORCH_CHECK(preds.dim() == 3, op, ": preds must have shape [N, C, L], got ", preds.sizes());
  TORCH_CHECK(floating_preds(preds.scalar_type()), op, ": preds must be float16, bfloat16, float32 or float64, got ",
              dtype_name(preds.scalar_type()));
  TORCH_CHECK(target.device() == preds.device(), op, ": target must be on preds' device ", preds.device(), ", got ",
              target.device());
  TORCH_CHECK(grid.device() == preds.device(), op, ": grid must be on preds' device ", preds.device(), ", got ",
              grid.device());
  TORCH_CHECK(kernel_target_dtype(target.scalar_type()), op,
              ": target must be bool, uint8, int32, int64, float16, bfloat16, float32 or float64, got ",
              dtype_name(target.scalar_type()));
  TORCH_CHECK(num_classes >= 0, op, ": num_classes must be >= 0, got ", num_classes);
  const int64_t N = preds.size(0), C = preds.size(1), L = preds.size(2);
  if (num_classes > 0) {
    TORCH_CHECK(num_classes == C, op, ": num_classes=", num_classes, " does not match preds.shape[1]=", C);
    TORCH_CHECK(target.dim() == 2 && target.size(0) == N && target.size(1) == L, op,
                ": target must hold class indices of shape [N, L] = [", N, ", ", L, "], got ", target.sizes());
    TORCH_CHECK(at::isIntegralType(target.scalar_type(), /*includeBool=*/false), op,
                ": target must be an integer tensor of class indices when num_classes > 0, got ",
              dtype_name(target.scalar_type()));
    TORCH_CHECK(!ignore_index.has_value() || *ignore_index < 0 || *ignore_index >= C, op,
                ": ignore_index=", ignore_index.value_or(0), " lies inside the class range [0, ", C,
                "); choose a value outside it (e.g. -100 or 255)");
  } else {
    TORCH_CHECK(target.sizes() == preds.sizes(), op, ": target must have the shape of preds ", preds.sizes(),
                ", got ", target.sizes());
  }
  if (weight.has_value() && weight->defined()) {
    TORCH_CHECK(weight->device() == preds.device(), op, ": weight must be on preds' device ", preds.device(),
                ", got ", weight->device());
    TORCH_CHECK(weight->sizes() == target.sizes(), op, ": weight must have the shape of target ", target.sizes(),
                ", got ", weight->sizes());
    TORCH_CHECK(at::isFloatingType(weight->scalar_type()), op, ": weight must be floating point, got ",
              dtype_name(weight->scalar_type()));
  }
  TORCH_CHECK(grid.dim() == 2 && grid.size(1) == kGridColumns && grid.size(0) >= 1, op,
              ": grid must be the coefficient table [T, 8] with T >= 1, got ", grid.sizes());
  TORCH_CHECK(grid.scalar_type() == at::kDouble, op, ": grid must be float64, got ",
              dtype_name(grid.scalar_type()));
  TORCH_CHECK(grid.size(0) < (int64_t{1} << 28), op, ": grid has too many thresholds (", grid.size(0), ")");
  const Approx kind = parse_approx(op, approx, k);
  check_grid(op, grid, kind);
  return OpShape{N, C, L, grid.size(0), samplewise ? N : 1, kind};
}

void check_backward_grad(const char* op, const at::Tensor& grad, const at::Tensor& preds, const OpShape& s) {
  TORCH_CHECK(grad.device() == preds.device(), op, ": grad must be on preds' device ", preds.device(), ", got ",
              grad.device());
  TORCH_CHECK(grad.dim() == 4 && grad.size(0) == s.G && grad.size(1) == s.C && grad.size(2) == s.T &&
                  grad.size(3) == 4,
              op, ": grad must have shape [", s.G, ", ", s.C, ", ", s.T, ", 4], got ", grad.sizes());
  TORCH_CHECK(at::isFloatingType(grad.scalar_type()), op, ": grad must be floating point, got ",
              dtype_name(grad.scalar_type()));
}

}  // namespace softset
