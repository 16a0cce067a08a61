// softset_fast::soft_set_loss: a training step's forward in one dispatched op.
//
// preds and target in their public shapes are viewed as the [N, C, L] layout of
// soft_counts (no copy for contiguous inputs), the values are checked when asked
// (validate), then counts = soft_counts(...) and loss = metric_loss(counts, ...).
// Its autograd (csrc/autograd.cpp) saves the counts and runs metric_loss_backward
// and _soft_counts_backward: one node. So a loss step is one forward op and one
// backward node instead of ~40 small ones; the math stays in the two ops it calls.
#include "soft_set_loss.h"

#include "op_calls.h"
#include "cpu/soft_counts_cpu.h"

#include <torch/library.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <string>

namespace softset {
namespace {

std::string fmt_g(double x) {  // Python's f"{x:g}"
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%g", x);
  return buffer;
}

// x in dtype: x itself when it already is (ops below autograd must not return their input, which
// Tensor::to would).
at::Tensor as_dtype(const at::Tensor& x, at::ScalarType dtype) {
  return x.scalar_type() == dtype ? x : x.to(dtype);
}

// Minimum and maximum of x where keep (all of x when keep is undefined), as float64 scalars on x's device.
std::pair<at::Tensor, at::Tensor> kept_range(const at::Tensor& x, const at::Tensor& keep) {
  const at::Tensor values = as_dtype(x, at::kDouble);
  if (!keep.defined()) {
    auto [low, high] = at::aminmax(values);
    return {low, high};
  }
  const double inf = std::numeric_limits<double>::infinity();
  return {at::where(keep, values, inf).min(), at::where(keep, values, -inf).max()};
}

}  // namespace

namespace {

// Which tensors the value checks read (an empty one, or a bool target, has nothing to check).
struct CheckedParts {
  bool preds, target, weight;
};

CheckedParts checked_parts(const at::Tensor& preds, const at::Tensor& target,
                           const c10::optional<at::Tensor>& weight) {
  return {preds.numel() > 0, target.numel() > 0 && target.scalar_type() != at::kBool,
          weight.has_value() && weight->defined() && weight->numel() > 0};
}

// The public API's errors for out-of-range values, with its messages.
void report_bad_values(const LossLayout& layout, const CheckedParts& c, const ValueStats& s,
                       at::ScalarType preds_dtype, at::ScalarType target_dtype) {
  if (c.preds) {
    TORCH_CHECK_VALUE(!s.preds_nan && std::isfinite(s.preds_low) && std::isfinite(s.preds_high),
                      "preds contains NaN or inf");
    TORCH_CHECK_VALUE(s.preds_low >= 0 && s.preds_high <= 1,
                      "preds must be probabilities in [0, 1] (or pass from_logits=True), got values in [",
                      fmt_g(s.preds_low), ", ", fmt_g(s.preds_high), "]");
  }
  if (c.target && (s.target_nan || s.target_low <= s.target_high)) {  // else every element is ignored
    const double low = s.target_nan ? std::numeric_limits<double>::quiet_NaN() : s.target_low;
    const double high = s.target_high;
    if (layout.task == "multiclass") {
      TORCH_CHECK_VALUE(low >= 0 && high < layout.classes, "target must hold class indices in [0, ", layout.classes,
                        ") or ignore_index, got values in [", static_cast<int64_t>(low), ", ",
                        static_cast<int64_t>(high), "]");
    } else if (at::isFloatingType(target_dtype)) {
      TORCH_CHECK_VALUE(low >= 0 && high <= 1, "target must lie in [0, 1] (soft labels allowed) for task='",
                        layout.task, "', got values in [", fmt_g(low), ", ", fmt_g(high), "]");
    } else {
      TORCH_CHECK_VALUE(low >= 0 && high <= 1, "target must hold 0 or 1 for task='", layout.task,
                        "' (or ignore_index)");
    }
  }
  if (c.weight) {
    TORCH_CHECK_VALUE(!s.weight_nan && std::isfinite(s.weight_low) && std::isfinite(s.weight_high),
                      "weight contains NaN or inf");
    TORCH_CHECK_VALUE(s.weight_low >= 0, "weight must be non-negative");
    const bool float32_counts = counts_dtype(preds_dtype) == at::kFloat;
    TORCH_CHECK_VALUE(!float32_counts || s.weight_high <= std::numeric_limits<float>::max(),
                      "weight must be finite in float32, the dtype the counts of ", dtype_name(preds_dtype),
                      " preds accumulate in; got values up to ", fmt_g(s.weight_high));
  }
}

// The counts of a CPU call, by the CPU kernel itself: the value checks (validate) in its counting pass,
// the cells recorded into codes when given.
at::Tensor counts_on_cpu(const LossLayout& layout, const LossInputs& in, const c10::optional<at::Tensor>& weight,
                         const at::Tensor& grid, c10::string_view approx, double k,
                         c10::optional<int64_t> ignore_index, bool validate, cpu::CellCodes* codes) {
  ValueStats stats;
  at::Tensor counts = cpu::soft_counts_with_stats(in.preds, in.target, weight, grid, approx, k, layout.num_classes,
                                                  ignore_index, layout.samplewise, validate ? &stats : nullptr, codes);
  if (validate) {
    report_bad_values(layout, checked_parts(in.preds, in.target, weight), stats, in.preds.scalar_type(),
                      in.target.scalar_type());
  }
  return counts;
}

}  // namespace

void check_loss_values(const LossLayout& layout, const at::Tensor& preds, const at::Tensor& target,
                       const c10::optional<at::Tensor>& weight, c10::optional<int64_t> ignore_index) {
  // Every statistic goes into one small tensor, read with one copy to the host (one
  // synchronisation on a GPU).
  const CheckedParts c = checked_parts(preds, target, weight);
  std::vector<at::Tensor> ranges;
  if (c.preds) {
    auto [low, high] = at::aminmax(preds);
    ranges.push_back(as_dtype(low, at::kDouble));
    ranges.push_back(as_dtype(high, at::kDouble));
  }
  if (c.target) {
    at::Tensor keep;
    if (ignore_index.has_value()) keep = target.ne(*ignore_index);
    auto [low, high] = kept_range(target, keep);
    ranges.push_back(low);
    ranges.push_back(high);
  }
  if (c.weight) {
    auto [low, high] = kept_range(*weight, at::Tensor());
    ranges.push_back(low);
    ranges.push_back(high);
  }
  if (ranges.empty()) return;
  const at::Tensor host = at::stack(ranges).to(at::kCPU);
  const double* v = host.data_ptr<double>();
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

LossInputs view_inputs(const LossLayout& layout, const at::Tensor& preds, const at::Tensor& target,
                       const c10::optional<at::Tensor>& weight) {
  const int64_t N = layout.shape[0], C = layout.shape[1], L = layout.shape[2];
  // No numel check here (sizes may be symbolic while torch.compile traces): reshape refuses a
  // shape that does not hold preds, and the fake kernel names the argument.
  LossInputs in;
  in.preds = preds.reshape({N, C, L});
  const std::vector<int64_t> target_shape =
      layout.num_classes > 0 ? std::vector<int64_t>{N, L} : std::vector<int64_t>{N, C, L};
  in.target = target.reshape(target_shape);
  if (weight.has_value() && weight->defined()) {
    in.weight = as_dtype(weight->reshape(target_shape), counts_dtype(preds.scalar_type()));
  }
  return in;
}

LossParts soft_set_loss_parts(const LossLayout& layout, const at::Tensor& preds, const at::Tensor& target,
                              const c10::optional<at::Tensor>& weight, const at::Tensor& grid,
                              c10::string_view approx, double k, c10::optional<int64_t> ignore_index, bool validate,
                              const LossOptions& options, cpu::CellCodes* codes) {
  LossParts parts;
  parts.inputs = view_inputs(layout, preds, target, weight);
  const c10::optional<at::Tensor> w =
      parts.inputs.weight.defined() ? c10::optional<at::Tensor>(parts.inputs.weight) : c10::nullopt;
  if (codes != nullptr) codes->forget();
  // CPU: the checks in the counting pass.
  if (readable_on_cpu(preds) && (validate || codes != nullptr)) {
    parts.counts = counts_on_cpu(layout, parts.inputs, w, grid, approx, k, ignore_index, validate, codes);
  } else {
    if (validate) check_loss_values(layout, parts.inputs.preds, parts.inputs.target, w, ignore_index);
    parts.counts = call_soft_counts(parts.inputs.preds, parts.inputs.target, w, grid, approx, k, layout.num_classes,
                                    ignore_index, layout.samplewise);
  }
  parts.loss =
      call_metric_loss(parts.counts, options.metric, options.average, options.beta, options.zero_division);
  return parts;
}

namespace {

at::Tensor soft_set_loss(const at::Tensor& preds, const at::Tensor& target, const c10::optional<at::Tensor>& weight,
                         const at::Tensor& grid, c10::string_view approx, double k, int64_t num_classes,
                         c10::optional<int64_t> ignore_index, bool samplewise, at::IntArrayRef shape,
                         c10::string_view task, bool validate, c10::string_view metric, c10::string_view average,
                         double beta, double zero_division) {
  const LossLayout layout = make_layout(shape, task, num_classes, samplewise);
  const LossOptions options{std::string(metric), std::string(average), beta, zero_division};
  return soft_set_loss_parts(layout, preds, target, weight, grid, approx, k, ignore_index, validate, options).loss;
}

}  // namespace

LossLayout make_layout(at::IntArrayRef shape, c10::string_view task, int64_t num_classes, bool samplewise) {
  TORCH_CHECK(shape.size() == 3, "soft_set_loss: shape must be [N, C, L], got ", shape);
  TORCH_CHECK(task == "binary" || task == "multilabel" || task == "multiclass",
              "soft_set_loss: task must be 'binary', 'multilabel' or 'multiclass', got '", std::string(task), "'");
  LossLayout layout;
  layout.shape = shape.vec();
  layout.task = std::string(task);
  layout.num_classes = num_classes;
  layout.classes = shape[1];
  layout.samplewise = samplewise;
  return layout;
}

}  // namespace softset

TORCH_LIBRARY_IMPL(softset_fast, CompositeExplicitAutograd, m) {
  m.impl("soft_set_loss", &softset::soft_set_loss);
}
