// softset_fast::metric_loss and metric_loss_backward on the CPU: the passes of
// csrc/epilogue.h run per group g (all classes of g in one task), in parallel over
// groups only when there are many. Deterministic: every per-group value is computed
// in a fixed order, and the sums over groups run sequentially afterwards.
#include <algorithm>
#include <vector>

#include "../epilogue.h"
#include "../epilogue_args.h"
#include "../ops.h"

namespace softset {
namespace cpu {
namespace {

using epilogue::Average;
using epilogue::Metric;
using epilogue::Problem;
using epilogue::Scratch;

// Groups per task: about this many counts each, so small problems run inline.
constexpr int64_t kGrainCounts = 1 << 15;

int64_t group_grain(const Problem& pr) { return std::max<int64_t>(1, kGrainCounts / std::max<int64_t>(1, pr.C * pr.T)); }

// Class (or micro) pass and group pass of group g.
template <Metric M, typename S>
void rows_of_group(const Problem& pr, const S* counts, int64_t g, const Scratch& s) {
  if (pr.average == Average::kMicro) {
    epilogue::micro_pass<M>(pr, counts, g, s);
  } else {
    for (int64_t c = 0; c < pr.C; ++c) epilogue::class_pass<M>(pr, counts, g * pr.C + c, s);
  }
  if (pr.average != Average::kNone) epilogue::group_pass(pr, g, s);
}

template <Metric M, typename S>
void forward(const Problem& pr, const S* counts, S* out) {
  std::vector<double> scratch(pr.scratch_size());
  const Scratch s = Scratch::at(pr, scratch.data());
  torch::stable::parallel_for(0, pr.G, group_grain(pr), [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) rows_of_group<M>(pr, counts, g, s);
  });
  if (pr.average == Average::kNone) {
    for (int64_t c = 0; c < pr.C; ++c) out[c] = static_cast<S>(epilogue::class_loss_value(pr, s, c));
  } else {
    out[0] = static_cast<S>(epilogue::loss_value(pr, s));
  }
}

template <Metric M, typename S>
void backward(const Problem& pr, const S* counts, const S* grad, S* grad_counts) {
  std::vector<double> scratch(pr.scratch_size());
  const Scratch s = Scratch::at(pr, scratch.data());
  torch::stable::parallel_for(0, pr.G, group_grain(pr), [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) {
      if (pr.average == Average::kMicro) {
        epilogue::micro_backward<M>(pr, counts, grad, g, grad_counts);
        continue;
      }
      if (pr.average == Average::kWeighted) rows_of_group<M>(pr, counts, g, s);  // weights and rows
      for (int64_t c = 0; c < pr.C; ++c) epilogue::class_backward<M>(pr, counts, grad, g * pr.C + c, s, grad_counts);
    }
  });
}

template <typename F>
void dispatch_float(ScalarType t, F&& f) {
  if (t == ScalarType::Double) {
    f(double());
  } else {
    f(float());
  }
}

}  // namespace

Tensor metric_loss_cpu(const Tensor& counts, std::string_view metric, std::string_view average, double beta,
                       double zero_division) {
  const char* op = "metric_loss";
  const Problem pr = epilogue::make_problem(counts, metric, average, beta, zero_division, op);
  const Tensor cm = as_contiguous(counts);
  Tensor out = new_empty(counts, epilogue::loss_shape(pr), counts.scalar_type());
  dispatch_float(cm.scalar_type(), [&](auto zero) {
    using S = decltype(zero);
    epilogue::dispatch_metric(pr.metric, [&](auto kind) {
      forward<decltype(kind)::value>(pr, static_cast<const S*>(cm.data_ptr()), static_cast<S*>(out.data_ptr()));
    });
  });
  return out;
}

namespace {

// dL/dcounts of the contiguous counts cm for the upstream gradient at `upstream` (cm's dtype).
Tensor grad_counts_of(const Problem& pr, const Tensor& cm, const void* upstream) {
  Tensor grad_counts = new_empty(cm, sizes_of(cm), cm.scalar_type());
  dispatch_float(cm.scalar_type(), [&](auto zero) {
    using S = decltype(zero);
    epilogue::dispatch_metric(pr.metric, [&](auto kind) {
      backward<decltype(kind)::value>(pr, static_cast<const S*>(cm.data_ptr()), static_cast<const S*>(upstream),
                                      static_cast<S*>(grad_counts.data_ptr()));
    });
  });
  return grad_counts;
}

}  // namespace

Tensor metric_loss_backward_cpu(const Tensor& grad, const Tensor& counts, std::string_view metric,
                                std::string_view average, double beta, double zero_division) {
  const char* op = "metric_loss_backward";
  const Problem pr = epilogue::make_problem(counts, metric, average, beta, zero_division, op);
  epilogue::check_grad(grad, counts, pr, average, op);
  const Tensor upstream = as_contiguous(as_dtype(grad, counts.scalar_type()));
  return grad_counts_of(pr, as_contiguous(counts), upstream.data_ptr());
}

Tensor metric_loss_unit_backward_cpu(const Tensor& counts, std::string_view metric, std::string_view average,
                                     double beta, double zero_division) {
  const char* op = "metric_loss_backward";
  const Problem pr = epilogue::make_problem(counts, metric, average, beta, zero_division, op);
  SOFTSET_CHECK(pr.average != Average::kNone, op, ": an upstream gradient of 1 needs a 0-d loss (average != 'none')");
  const double one64 = 1.0;
  const float one32 = 1.0f;
  const bool float64 = counts.scalar_type() == ScalarType::Double;
  return grad_counts_of(pr, as_contiguous(counts), float64 ? static_cast<const void*>(&one64) : &one32);
}

}  // namespace cpu
}  // namespace softset
