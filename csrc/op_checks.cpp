// One definition of the soft_counts ops' argument checks (see op_checks.h).
#include "op_checks.h"

#include <cmath>
#include <memory>
#include <mutex>
#include <string>

namespace softset {
namespace {

bool kernel_target_dtype(ScalarType t) {
  return t == ScalarType::Bool || t == ScalarType::Byte || t == ScalarType::Int || t == ScalarType::Long ||
         is_floating(t);
}

Approx parse_approx(const char* op, std::string_view approx, double k) {
  if (approx == "linear") return Approx::kLinear;
  if (approx == "step") return Approx::kStep;
  if (approx == "sigmoid") {
    SOFTSET_CHECK(std::isfinite(k) && k > 0, op, ": k must be a finite number > 0 for approx='sigmoid', got ", k);
    return Approx::kSigmoid;
  }
  fail(op, ": approx must be 'linear', 'sigmoid' or 'step', got '", approx, "'");
}

void check_grid_values(const char* op, const double* g, int64_t T, Approx approx) {
  for (int64_t t = 0; t < T; ++t) {
    const double* row = g + t * kGridColumns;
    for (int col = 0; col < kGridColumns; ++col) {
      SOFTSET_CHECK(std::isfinite(row[col]), op,
                  ": grid must be finite in every column (tau, a, b, m1, m2, m3, c2, c3); row ", t, " column ", col,
                  " is ", row[col]);
    }
    if (approx == Approx::kLinear) {
      SOFTSET_CHECK(row[kA] <= row[kTau] && row[kTau] <= row[kB], op, ": grid row ", t,
                  " must have a <= tau <= b (columns 1, 0, 2); build grid with softset_fast._grid.coefficient_table");
    }
    if (t == 0) continue;
    const double* prev = row - kGridColumns;
    SOFTSET_CHECK(row[kTau] > prev[kTau], op, ": grid thresholds (column 0) must be strictly ascending");
    if (approx == Approx::kLinear) {
      SOFTSET_CHECK(row[kA] >= prev[kA] && row[kB] >= prev[kB], op,
                  ": grid breakpoints a, b (columns 1, 2) must be ascending; build grid with "
                  "softset_fast._grid.coefficient_table");
    }
  }
}

}  // namespace

std::string dtype_name(ScalarType t) {
  switch (t) {
    case ScalarType::Bool: return "bool";
    case ScalarType::Byte: return "uint8";
    case ScalarType::Char: return "int8";
    case ScalarType::Short: return "int16";
    case ScalarType::Int: return "int32";
    case ScalarType::Long: return "int64";
    case ScalarType::Half: return "float16";
    case ScalarType::BFloat16: return "bfloat16";
    case ScalarType::Float: return "float32";
    case ScalarType::Double: return "float64";
    default: return c10::toString(t);
  }
}

std::string device_name(const Tensor& x) {
  const torch::stable::Device device = x.device();
  if (device.is_cpu()) return "cpu";
  const std::string type = device.is_cuda() ? "cuda" : "device type " + std::to_string(static_cast<int>(device.type()));
  return device.has_index() ? type + ":" + std::to_string(device.index()) : type;
}

void check_grid(const char* op, const Tensor& grid, Approx approx) {
  if (grid.is_cpu()) {
    const Tensor host = as_contiguous(grid);
    check_grid_values(op, static_cast<const double*>(host.data_ptr()), host.size(0), approx);
    return;
  }
  // The last device grid that passed, held (so no other tensor can take its memory) and never freed
  // (a static tensor destroyed at exit could outlive the device runtime).
  static std::mutex mutex;
  static Tensor* last_grid = new Tensor();
  static bool last_linear = false;
  const bool linear = approx == Approx::kLinear;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (last_grid->defined() && last_grid->data_ptr() == grid.data_ptr() && same_device(*last_grid, grid) &&
        sizes_of(*last_grid) == sizes_of(grid) && last_grid->strides()[0] == grid.strides()[0] &&
        (last_linear || !linear))
      return;
  }
  const Tensor host = as_contiguous(torch::stable::to(grid, torch::stable::Device(torch::headeronly::DeviceType::CPU)));
  check_grid_values(op, static_cast<const double*>(host.data_ptr()), host.size(0), approx);
  std::lock_guard<std::mutex> lock(mutex);
  *last_grid = grid;
  last_linear = linear;
}

OpShape check_op_args(const char* op, const Tensor& preds, const Tensor& target, const OptionalTensor& weight,
                      const Tensor& grid, std::string_view approx, double k, int64_t num_classes,
                      std::optional<int64_t> ignore_index, bool samplewise) {
  SOFTSET_CHECK(preds.dim() == 3, op, ": preds must have shape [N, C, L], got ", sizes_of(preds));
  SOFTSET_CHECK(is_floating(preds.scalar_type()), op, ": preds must be float16, bfloat16, float32 or float64, got ",
              dtype_name(preds.scalar_type()));
  SOFTSET_CHECK(same_device(target, preds), op, ": target must be on preds' device ", device_name(preds), ", got ",
              device_name(target));
  SOFTSET_CHECK(same_device(grid, preds), op, ": grid must be on preds' device ", device_name(preds), ", got ",
              device_name(grid));
  SOFTSET_CHECK(kernel_target_dtype(target.scalar_type()), op,
              ": target must be bool, uint8, int32, int64, float16, bfloat16, float32 or float64, got ",
              dtype_name(target.scalar_type()));
  SOFTSET_CHECK(num_classes >= 0, op, ": num_classes must be >= 0, got ", num_classes);
  const int64_t N = preds.size(0), C = preds.size(1), L = preds.size(2);
  if (num_classes > 0) {
    SOFTSET_CHECK(num_classes == C, op, ": num_classes=", num_classes, " does not match preds.shape[1]=", C);
    SOFTSET_CHECK(target.dim() == 2 && target.size(0) == N && target.size(1) == L, op,
                ": target must hold class indices of shape [N, L] = [", N, ", ", L, "], got ", sizes_of(target));
    SOFTSET_CHECK(is_integral(target.scalar_type()), op,
                ": target must be an integer tensor of class indices when num_classes > 0, got ",
              dtype_name(target.scalar_type()));
    SOFTSET_CHECK(!ignore_index.has_value() || *ignore_index < 0 || *ignore_index >= C, op,
                ": ignore_index=", ignore_index.value_or(0), " lies inside the class range [0, ", C,
                "); choose a value outside it (e.g. -100 or 255)");
  } else {
    SOFTSET_CHECK(sizes_of(target) == sizes_of(preds), op, ": target must have the shape of preds ", sizes_of(preds),
                ", got ", sizes_of(target));
  }
  if (weight.has_value() && weight->defined()) {
    SOFTSET_CHECK(same_device(*weight, preds), op, ": weight must be on preds' device ", device_name(preds),
                ", got ", device_name(*weight));
    SOFTSET_CHECK(sizes_of(*weight) == sizes_of(target), op, ": weight must have the shape of target ", sizes_of(target),
                ", got ", sizes_of(*weight));
    SOFTSET_CHECK(is_floating(weight->scalar_type()), op, ": weight must be floating point, got ",
              dtype_name(weight->scalar_type()));
  }
  SOFTSET_CHECK(grid.dim() == 2 && grid.size(1) == kGridColumns && grid.size(0) >= 1, op,
              ": grid must be the coefficient table [T, 8] with T >= 1, got ", sizes_of(grid));
  SOFTSET_CHECK(grid.scalar_type() == ScalarType::Double, op, ": grid must be float64, got ",
              dtype_name(grid.scalar_type()));
  SOFTSET_CHECK(grid.size(0) < (int64_t{1} << 28), op, ": grid has too many thresholds (", grid.size(0), ")");
  const Approx kind = parse_approx(op, approx, k);
  check_grid(op, grid, kind);
  return OpShape{N, C, L, grid.size(0), samplewise ? N : 1, kind};
}

void check_backward_grad(const char* op, const Tensor& grad, const Tensor& preds, const OpShape& s) {
  SOFTSET_CHECK(same_device(grad, preds), op, ": grad must be on preds' device ", device_name(preds), ", got ",
              device_name(grad));
  SOFTSET_CHECK(grad.dim() == 4 && grad.size(0) == s.G && grad.size(1) == s.C && grad.size(2) == s.T &&
                  grad.size(3) == 4,
              op, ": grad must have shape [", s.G, ", ", s.C, ", ", s.T, ", 4], got ", sizes_of(grad));
  SOFTSET_CHECK(is_floating(grad.scalar_type()), op, ": grad must be floating point, got ",
              dtype_name(grad.scalar_type()));
}

}  // namespace softset
