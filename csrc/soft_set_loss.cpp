// softset_fast::soft_set_loss and _soft_set_loss_parts: a training step's forward in one
// dispatched op.
//
// preds and target in their public shapes are viewed as the [N, C, L] layout of
// soft_counts (no copy for contiguous inputs), the values are checked when asked
// (validate), then counts = soft_counts(...) and loss = metric_loss(counts, ...), each by
// the device's kernel (ops.h). _soft_set_loss_parts also returns the counts and, for a
// training call, dL/dpreds computed in the same call while the data is in cache: the
// backward (softset_fast/backends/loss_autograd.py) is then one multiplication. So a loss
// step is one forward op and one backward node instead of ~40 small ones; the math stays
// in the kernels it calls.
#include "soft_set_loss.h"

#include "ops.h"
#include "cpu/soft_counts_cpu.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <string>
#include <tuple>

namespace softset {
namespace {

std::string fmt_g(double x) {  // Python's f"{x:g}"
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%g", x);
  return buffer;
}

// A 0-d float64 tensor of value on x's device.
Tensor scalar_like(const Tensor& x, double value) {
  return torch::stable::full({}, value, ScalarType::Double, std::nullopt, x.device());
}

// Minimum and maximum of x (NaN when x holds one), as float64 scalars on x's device.
std::pair<Tensor, Tensor> value_range(const Tensor& x) {
  return call_aten<std::pair<Tensor, Tensor>>("aten::aminmax", "", as_dtype(x, ScalarType::Double),
                                              std::optional<int64_t>(), false);
}

// value_range of the elements of x that differ from ignore (x's integer labels).
std::pair<Tensor, Tensor> kept_range(const Tensor& x, int64_t ignore) {
  const Tensor values = as_dtype(x, ScalarType::Double);
  const Tensor keep = call_aten<Tensor>("aten::ne", "Tensor", x,
                                        torch::stable::full({}, static_cast<double>(ignore), ScalarType::Long,
                                                            std::nullopt, x.device()));
  const double inf = std::numeric_limits<double>::infinity();
  const Tensor low = call_aten<Tensor>("aten::where", "self", keep, values, scalar_like(x, inf));
  const Tensor high = call_aten<Tensor>("aten::where", "self", keep, values, scalar_like(x, -inf));
  return {call_aten<Tensor>("aten::min", "", low), call_aten<Tensor>("aten::max", "", high)};
}

// counts in float64: on the CPU converted here (one pass over G·C·T·4 values instead of a dispatched
// aten::to, whose schema look-up costs more than the conversion at a small batch).
Tensor counts_in_double(const Tensor& counts) {
  if (counts.scalar_type() == ScalarType::Double || !counts.is_cpu()) return as_dtype(counts, ScalarType::Double);
  const Tensor source = as_contiguous(counts);
  Tensor out = new_empty(counts, sizes_of(counts), ScalarType::Double);
  const float* from = static_cast<const float*>(source.data_ptr());
  double* to = static_cast<double*>(out.data_ptr());
  for (int64_t i = 0, n = counts.numel(); i < n; ++i) to[i] = from[i];
  return out;
}

}  // namespace

namespace {

// Which tensors the value checks read (an empty one, or a bool target, has nothing to check).
struct CheckedParts {
  bool preds, target, weight;
};

CheckedParts checked_parts(const Tensor& preds, const Tensor& target,
                           const OptionalTensor& weight) {
  return {preds.numel() > 0, target.numel() > 0 && target.scalar_type() != ScalarType::Bool,
          weight.has_value() && weight->defined() && weight->numel() > 0};
}

// The public API's errors for out-of-range values, with its messages.
void report_bad_values(const LossLayout& layout, const CheckedParts& c, const ValueStats& s,
                       ScalarType preds_dtype, ScalarType target_dtype) {
  if (c.preds) {
    SOFTSET_CHECK_VALUE(!s.preds_nan && std::isfinite(s.preds_low) && std::isfinite(s.preds_high),
                      "preds contains NaN or inf");
    SOFTSET_CHECK_VALUE(s.preds_low >= 0 && s.preds_high <= 1,
                      "preds must be probabilities in [0, 1] (or pass from_logits=True), got values in [",
                      fmt_g(s.preds_low), ", ", fmt_g(s.preds_high), "]");
  }
  if (c.target && (s.target_nan || s.target_low <= s.target_high)) {  // else every element is ignored
    const double low = s.target_nan ? std::numeric_limits<double>::quiet_NaN() : s.target_low;
    const double high = s.target_high;
    if (layout.task == "multiclass") {
      SOFTSET_CHECK_VALUE(low >= 0 && high < layout.classes, "target must hold class indices in [0, ", layout.classes,
                        ") or ignore_index, got values in [", static_cast<int64_t>(low), ", ",
                        static_cast<int64_t>(high), "]");
    } else if (is_floating(target_dtype)) {
      SOFTSET_CHECK_VALUE(low >= 0 && high <= 1, "target must lie in [0, 1] (soft labels allowed) for task='",
                        layout.task, "', got values in [", fmt_g(low), ", ", fmt_g(high), "]");
    } else {
      SOFTSET_CHECK_VALUE(low >= 0 && high <= 1, "target must hold 0 or 1 for task='", layout.task,
                        "' (or ignore_index)");
    }
  }
  if (c.weight) {
    SOFTSET_CHECK_VALUE(!s.weight_nan && std::isfinite(s.weight_low) && std::isfinite(s.weight_high),
                      "weight contains NaN or inf");
    SOFTSET_CHECK_VALUE(s.weight_low >= 0, "weight must be non-negative");
    const bool float32_counts = counts_dtype(preds_dtype) == ScalarType::Float;
    SOFTSET_CHECK_VALUE(!float32_counts || s.weight_high <= std::numeric_limits<float>::max(),
                      "weight must be finite in float32, the dtype the counts of ", dtype_name(preds_dtype),
                      " preds accumulate in; got values up to ", fmt_g(s.weight_high));
  }
}

// The counts of a CPU call, by the CPU kernel itself: the value checks (validate) in its counting pass,
// the cells recorded into codes when given.
Tensor counts_on_cpu(const LossLayout& layout, const LossInputs& in, const OptionalTensor& weight,
                         const Tensor& grid, std::string_view approx, double k,
                         std::optional<int64_t> ignore_index, bool validate, cpu::CellCodes* codes,
                         cpu::Problem* problem) {
  ValueStats stats;
  Tensor counts = cpu::soft_counts_with_stats(in.preds, in.target, weight, grid, approx, k, layout.num_classes,
                                                  ignore_index, layout.samplewise, validate ? &stats : nullptr, codes,
                                                  problem);
  if (validate) {
    report_bad_values(layout, checked_parts(in.preds, in.target, weight), stats, in.preds.scalar_type(),
                      in.target.scalar_type());
  }
  return counts;
}

}  // namespace

void check_loss_values(const LossLayout& layout, const Tensor& preds, const Tensor& target,
                       const OptionalTensor& weight, std::optional<int64_t> ignore_index) {
  // Every statistic goes into one small tensor, read with one copy to the host (one
  // synchronisation on a GPU).
  const CheckedParts c = checked_parts(preds, target, weight);
  std::vector<Tensor> ranges;
  const auto add = [&ranges](const std::pair<Tensor, Tensor>& range) {
    ranges.push_back(range.first);
    ranges.push_back(range.second);
  };
  if (c.preds) add(value_range(preds));
  if (c.target) add(ignore_index.has_value() ? kept_range(target, *ignore_index) : value_range(target));
  if (c.weight) add(value_range(*weight));
  if (ranges.empty()) return;
  const Tensor stacked = call_aten<Tensor>("aten::stack", "", ranges, int64_t{0});
  const Tensor host = torch::stable::to(stacked, torch::stable::Device(torch::headeronly::DeviceType::CPU));
  const double* v = static_cast<const double*>(host.data_ptr());
  // min / max propagate NaN: a NaN bound is a NaN value.
  auto read = [&v](double& low, double& high, bool& nan) {
    low = *v++, high = *v++;
    nan = std::isnan(low) || std::isnan(high);
  };
  ValueStats s;
  if (c.preds) read(s.preds_low, s.preds_high, s.preds_nan);
  if (c.target) read(s.target_low, s.target_high, s.target_nan);
  if (c.weight) read(s.weight_low, s.weight_high, s.weight_nan);
  report_bad_values(layout, c, s, preds.scalar_type(), target.scalar_type());
}

LossInputs view_inputs(const LossLayout& layout, const Tensor& preds, const Tensor& target,
                       const OptionalTensor& weight) {
  const int64_t N = layout.shape[0], C = layout.shape[1], L = layout.shape[2];
  LossInputs in;
  in.preds = view_as_sizes(preds, {N, C, L}, "soft_set_loss");
  const std::vector<int64_t> target_shape =
      layout.num_classes > 0 ? std::vector<int64_t>{N, L} : std::vector<int64_t>{N, C, L};
  in.target = view_as_sizes(target, target_shape, "soft_set_loss");
  if (weight.has_value() && weight->defined()) {
    in.weight = as_dtype(view_as_sizes(*weight, target_shape, "soft_set_loss"), counts_dtype(preds.scalar_type()));
  }
  return in;
}

LossParts soft_set_loss_parts(const LossLayout& layout, const Tensor& preds, const Tensor& target,
                              const OptionalTensor& weight, const Tensor& grid,
                              std::string_view approx, double k, std::optional<int64_t> ignore_index, bool validate,
                              bool deterministic, const LossOptions& options, cpu::CellCodes* codes) {
  LossParts parts;
  parts.inputs = view_inputs(layout, preds, target, weight);
  const OptionalTensor w = weight_of(parts.inputs);
  if (codes != nullptr) codes->forget();
  const DeviceKernels& kernels = kernels_for(preds, "soft_set_loss");
  // CPU: the checks in the counting pass.
  if (preds.is_cpu() && (validate || codes != nullptr)) {
    cpu::Problem* problem = nullptr;
    if (codes != nullptr) problem = &parts.cpu_problem.emplace();
    parts.counts = counts_on_cpu(layout, parts.inputs, w, grid, approx, k, ignore_index, validate, codes, problem);
  } else {
    if (validate) check_loss_values(layout, parts.inputs.preds, parts.inputs.target, w, ignore_index);
    parts.counts = kernels.soft_counts(parts.inputs.preds, parts.inputs.target, w, grid, approx, k,
                                       layout.num_classes, ignore_index, layout.samplewise, deterministic);
  }
  parts.loss = kernels.metric_loss(parts.counts, options.metric, options.average, options.beta,
                                   options.zero_division);
  return parts;
}

const DeviceKernels& kernels_for(const Tensor& x, const char* op) {
  if (x.is_cpu()) return cpu::kKernels;
#ifdef SOFTSET_FAST_WITH_CUDA
  if (x.is_cuda()) return cuda::kKernels;
#endif
  fail(op, ": preds must be a CPU or CUDA tensor, got ", device_name(x));
}

Tensor soft_set_loss(const Tensor& preds, const Tensor& target, const OptionalTensor& weight, const Tensor& grid,
                     std::string_view approx, double k, int64_t num_classes, std::optional<int64_t> ignore_index,
                     bool samplewise, const std::vector<int64_t>& shape, std::string_view task, bool validate,
                     std::string_view metric, std::string_view average, double beta, double zero_division,
                     bool deterministic) {
  const LossLayout layout = make_layout(shape, task, num_classes, samplewise);
  const LossOptions options{std::string(metric), std::string(average), beta, zero_division};
  return soft_set_loss_parts(layout, preds, target, weight, grid, approx, k, ignore_index, validate, deterministic,
                             options)
      .loss;
}

std::tuple<Tensor, Tensor, Tensor> soft_set_loss_training(
    const Tensor& preds, const Tensor& target, const OptionalTensor& weight, const Tensor& grid,
    std::string_view approx, double k, int64_t num_classes, std::optional<int64_t> ignore_index, bool samplewise,
    const std::vector<int64_t>& shape, std::string_view task, bool validate, std::string_view metric,
    std::string_view average, double beta, double zero_division, bool with_grad, bool deterministic) {
  const LossLayout layout = make_layout(shape, task, num_classes, samplewise);
  const LossOptions options{std::string(metric), std::string(average), beta, zero_division};
  // The counting pass records each element's cell for the gradient pass (CPU, linear): kept per
  // thread between calls, so a training loop does not allocate it every step.
  static thread_local cpu::CellCodes codes;
  const bool record = with_grad && preds.is_cpu();
  LossParts parts = soft_set_loss_parts(layout, preds, target, weight, grid, approx, k, ignore_index, validate,
                                        deterministic, options, record ? &codes : nullptr);
  if (!with_grad) return {parts.loss, parts.counts, new_empty(preds, {0}, preds.scalar_type())};
  SOFTSET_CHECK(options.average != "none", "_soft_set_loss_parts: with_grad needs a 0-d loss (average != 'none')");
  if (parts.cpu_problem.has_value()) {
    // The CPU: the problem checked by the counting pass, its recorded cells, and the 1 on the stack.
    const Tensor grad_counts = cpu::metric_loss_unit_backward_cpu(counts_in_double(parts.counts), options.metric,
                                                                  options.average, options.beta,
                                                                  options.zero_division);
    const Tensor grad_preds = cpu::soft_counts_backward_of(*parts.cpu_problem, grad_counts, codes.recorded());
    return {parts.loss, parts.counts, view_as_sizes(grad_preds, sizes_of(preds), "_soft_set_loss_parts")};
  }
  const DeviceKernels& kernels = kernels_for(preds, "_soft_set_loss_parts");
  // dL/dcounts in float64, from float64 counts, as the counts' backward reads it: from float32
  // counts it can overflow (2/fp for a subnormal fp) and become inf·0 = NaN for samples y = 0.
  Tensor unit = new_empty(preds, {}, ScalarType::Double);
  torch::stable::fill_(unit, 1.0);
  const Tensor grad_counts = kernels.metric_loss_backward(unit, counts_in_double(parts.counts),
                                                          options.metric, options.average, options.beta,
                                                          options.zero_division);
  const OptionalTensor w = weight_of(parts.inputs);
  Tensor grad_preds = kernels.soft_counts_backward(grad_counts, parts.inputs.preds, parts.inputs.target, w, grid,
                                                   approx, k, num_classes, ignore_index, samplewise);
  return {parts.loss, parts.counts, view_as_sizes(grad_preds, sizes_of(preds), "_soft_set_loss_parts")};
}

LossLayout make_layout(const std::vector<int64_t>& shape, std::string_view task, int64_t num_classes,
                       bool samplewise) {
  SOFTSET_CHECK(shape.size() == 3, "soft_set_loss: shape must be [N, C, L], got ", shape);
  SOFTSET_CHECK(task == "binary" || task == "multilabel" || task == "multiclass",
                "soft_set_loss: task must be 'binary', 'multilabel' or 'multiclass', got '", task, "'");
  LossLayout layout;
  layout.shape = shape;
  layout.task = std::string(task);
  layout.num_classes = num_classes;
  layout.classes = shape[1];
  layout.samplewise = samplewise;
  return layout;
}

}  // namespace softset
