// The light end of a loss step, shared by the CPU kernel (cpu/epilogue_cpu.cpp) and the
// CUDA kernel (cuda/epilogue.cu): from counts [G, C, T, 4] = (tp, fn, fp, tn), the metric
// per threshold, its average over classes and 1 - mean, and the gradient of that loss in
// the counts. Float64 throughout. No torch includes.
//
// Conventions of softset_fast/metrics.py, which the tensor path and this code share:
// a zero denominator gives zero_division with a zero gradient; sqrt has a zero gradient
// at 0; auroc is the trapezoid through (1, 1), (fpr_t, tpr_t)..., (0, 0) and
// zero_division when the (group, class) has no positives or no negatives at t = 0.
// Partial derivatives are written so that no term cancels (e.g. d(tp/D)/dtp = fp/D²,
// not 1/D - tp/D²) and no 0·inf can occur for finite counts.
//
// Work is split into per-item passes that the CPU runs in loops and the CUDA kernel
// runs with one thread per item; the scratch they share is
//   row[G·C]     sum over t of the metric of class (g, c) (auroc: its area); micro: row[g]
//   support[G·C] mean over t of tp + fn (average == weighted)
//   group[G, 2]  class-averaged row of group g; weighted: also the total support
#pragma once

#include <cstdint>
#include <type_traits>

#include "softset_common.h"

namespace softset {
namespace epilogue {

enum class Metric : int {
  kFBeta, kAccuracy, kPrecision, kRecall, kSpecificity, kBalancedAccuracy, kJaccard, kGMean, kMCC, kAUROC
};
enum class Average : int { kNone, kMacro, kMicro, kWeighted };

struct Problem {
  int64_t G = 0, C = 0, T = 0;  // counts [G, C, T, 4], contiguous
  Metric metric = Metric::kFBeta;
  Average average = Average::kMacro;
  double beta2 = 1.0;           // β² of fbeta; 1 for f1
  double zero_division = 0.0;

  // Metric values per (group, class): one per threshold, one area for auroc.
  SOFTSET_HD int64_t values_per_row() const { return metric == Metric::kAUROC ? 1 : T; }
  // Doubles of scratch memory the passes use.
  SOFTSET_HD int64_t scratch_size() const { return G * (C > 1 ? C : 1) + G * C + 2 * G; }
};

struct Counts {
  double tp, fn, fp, tn;
};

// Calls f(std::integral_constant<Metric, m>{}): one template instantiation per metric.
template <typename F>
void dispatch_metric(Metric m, F&& f) {
  switch (m) {
    case Metric::kFBeta: f(std::integral_constant<Metric, Metric::kFBeta>{}); return;
    case Metric::kAccuracy: f(std::integral_constant<Metric, Metric::kAccuracy>{}); return;
    case Metric::kPrecision: f(std::integral_constant<Metric, Metric::kPrecision>{}); return;
    case Metric::kRecall: f(std::integral_constant<Metric, Metric::kRecall>{}); return;
    case Metric::kSpecificity: f(std::integral_constant<Metric, Metric::kSpecificity>{}); return;
    case Metric::kBalancedAccuracy: f(std::integral_constant<Metric, Metric::kBalancedAccuracy>{}); return;
    case Metric::kJaccard: f(std::integral_constant<Metric, Metric::kJaccard>{}); return;
    case Metric::kGMean: f(std::integral_constant<Metric, Metric::kGMean>{}); return;
    case Metric::kMCC: f(std::integral_constant<Metric, Metric::kMCC>{}); return;
    case Metric::kAUROC: f(std::integral_constant<Metric, Metric::kAUROC>{}); return;
  }
}

// ---------------------------------------------------------------------------------------
// One threshold: value and, when d != nullptr, d[k] = ∂value/∂(tp, fn, fp, tn)[k].
// Denominators are summed in metrics.py's order, so the zero tests agree bit for bit (mcc: see there).

SOFTSET_HD double undefined(double zero_division, double* d) {
  if (d != nullptr) d[0] = d[1] = d[2] = d[3] = 0.0;
  return zero_division;
}

// F_β = s·tp / (s·tp + β²·fn + fp), s = 1 + β².
SOFTSET_HD double fbeta(const Counts& x, double beta2, double z, double* d) {
  const double s = 1.0 + beta2;
  const double D = s * x.tp + beta2 * x.fn + x.fp;
  if (D == 0.0) return undefined(z, d);
  if (d != nullptr) {
    d[0] = s * (beta2 * x.fn + x.fp) / D / D;
    d[1] = -s * beta2 * x.tp / D / D;
    d[2] = -s * x.tp / D / D;
    d[3] = 0.0;
  }
  return s * x.tp / D;
}

SOFTSET_HD double accuracy(const Counts& x, double z, double* d) {
  const double D = x.tp + x.fn + x.fp + x.tn;
  if (D == 0.0) return undefined(z, d);
  if (d != nullptr) {
    d[0] = d[3] = (x.fn + x.fp) / D / D;
    d[1] = d[2] = -(x.tp + x.tn) / D / D;
  }
  return (x.tp + x.tn) / D;
}

// part / (part + rest), with i_part and i_rest their places in (tp, fn, fp, tn): precision,
// recall and specificity.
SOFTSET_HD double share(double part, int i_part, double rest, int i_rest, double z, double* d) {
  const double D = part + rest;
  if (D == 0.0) return undefined(z, d);
  if (d != nullptr) {
    d[0] = d[1] = d[2] = d[3] = 0.0;
    d[i_part] = rest / D / D;
    d[i_rest] = -part / D / D;
  }
  return part / D;
}

SOFTSET_HD double precision(const Counts& x, double z, double* d) { return share(x.tp, 0, x.fp, 2, z, d); }
SOFTSET_HD double recall(const Counts& x, double z, double* d) { return share(x.tp, 0, x.fn, 1, z, d); }
SOFTSET_HD double specificity(const Counts& x, double z, double* d) { return share(x.tn, 3, x.fp, 2, z, d); }

SOFTSET_HD double jaccard(const Counts& x, double z, double* d) {
  const double D = x.tp + x.fn + x.fp;
  if (D == 0.0) return undefined(z, d);
  if (d != nullptr) {
    d[0] = (x.fn + x.fp) / D / D;
    d[1] = d[2] = -x.tp / D / D;
    d[3] = 0.0;
  }
  return x.tp / D;
}

// (recall + specificity) / 2, each with its own zero_division.
SOFTSET_HD double balanced_accuracy(const Counts& x, double z, double* d) {
  double dr[4], ds[4];
  const double r = recall(x, z, d != nullptr ? dr : nullptr);
  const double s = specificity(x, z, d != nullptr ? ds : nullptr);
  if (d != nullptr) {
    for (int k = 0; k < 4; ++k) d[k] = (dr[k] + ds[k]) / 2;  // dr, ds have disjoint supports
  }
  return (r + s) / 2;
}

// sqrt(recall · specificity); 0 with a zero gradient where the product is not > 0.
SOFTSET_HD double gmean(const Counts& x, double z, double* d) {
  double dr[4], ds[4];
  const double r = recall(x, z, d != nullptr ? dr : nullptr);
  const double s = specificity(x, z, d != nullptr ? ds : nullptr);
  const double q = r * s;
  if (!(q > 0.0)) return undefined(0.0, d);
  const double v = sqrt(q);
  if (d != nullptr) {
    const double gr = s / (2 * v), gs = r / (2 * v);
    for (int k = 0; k < 4; ++k) d[k] = gr * dr[k] + gs * ds[k];
  }
  return v;
}

// (tp·tn - fp·fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)); zero_division unless the product is > 0.
// With a, b, c, e the four factors, r the root, K = tp·tn(fn+fp) + fp·fn(2(tp+tn) + fp + fn)
// and K' = fp·fn(tp+tn) + tp·tn(2(fp+fn) + tp + tn), expanding the quotient rule gives
//   ∂/∂tp = K / (2ab·r), ∂/∂tn = K / (2ce·r), ∂/∂fp = -K' / (2ac·r), ∂/∂fn = -K' / (2be·r),
// sums of like-signed terms for non-negative counts (the plain quotient rule cancels).
// mcc is homogeneous of degree 0, so it is evaluated at counts / 2^k with the largest in
// [0.5, 1) (exact: a power of two), and the product is judged by the factors' signs, not
// formed: neither the product nor the cubes in K under- or overflow for any finite counts
// (metrics.py forms the product, which is 0 or inf for extreme counts).
SOFTSET_HD double mcc(const Counts& x0, double z, double* d) {
  int exponent = 0;
  frexp(fmax(fmax(fabs(x0.tp), fabs(x0.fn)), fmax(fabs(x0.fp), fabs(x0.tn))), &exponent);
  const double scale = ldexp(1.0, exponent);
  const Counts x{x0.tp / scale, x0.fn / scale, x0.fp / scale, x0.tn / scale};
  const double a = x.tp + x.fp, b = x.tp + x.fn, c = x.tn + x.fp, e = x.tn + x.fn;
  const bool negative = ((a < 0) != (b < 0)) != ((c < 0) != (e < 0));
  if (a == 0.0 || b == 0.0 || c == 0.0 || e == 0.0 || negative) return undefined(z, d);
  const double r = sqrt(fabs(a)) * sqrt(fabs(b)) * sqrt(fabs(c)) * sqrt(fabs(e));
  if (d != nullptr) {
    const double K = x.tp * x.tn * (x.fn + x.fp) + x.fp * x.fn * (2 * (x.tp + x.tn) + x.fp + x.fn);
    const double K2 = x.fp * x.fn * (x.tp + x.tn) + x.tp * x.tn * (2 * (x.fp + x.fn) + x.tp + x.tn);
    const double K_r = K / (2 * r) / scale, K2_r = K2 / (2 * r) / scale;
    d[0] = K_r / a / b;
    d[1] = -K2_r / b / e;
    d[2] = -K2_r / a / c;
    d[3] = K_r / c / e;
  }
  return (x.tp * x.tn - x.fp * x.fn) / r;
}

template <Metric M>
SOFTSET_HD double threshold_metric(const Problem& pr, const Counts& x, double* d) {
  static_assert(M != Metric::kAUROC, "auroc is a metric of the whole threshold axis");
  const double z = pr.zero_division;
  if constexpr (M == Metric::kFBeta) return fbeta(x, pr.beta2, z, d);
  else if constexpr (M == Metric::kAccuracy) return accuracy(x, z, d);
  else if constexpr (M == Metric::kPrecision) return precision(x, z, d);
  else if constexpr (M == Metric::kRecall) return recall(x, z, d);
  else if constexpr (M == Metric::kSpecificity) return specificity(x, z, d);
  else if constexpr (M == Metric::kBalancedAccuracy) return balanced_accuracy(x, z, d);
  else if constexpr (M == Metric::kJaccard) return jaccard(x, z, d);
  else if constexpr (M == Metric::kGMean) return gmean(x, z, d);
  else return mcc(x, z, d);
}

// ---------------------------------------------------------------------------------------
// Rows: the T thresholds of one (group, class), or of one group's counts summed over
// classes (micro). A row reads Counts at t; a gradient sink takes ∂L/∂counts at t.

template <typename S>
struct ClassRow {
  const S* p;  // [T, 4]
  SOFTSET_HD Counts operator()(int64_t t) const {
    const S* q = p + 4 * t;
    return {static_cast<double>(q[0]), static_cast<double>(q[1]), static_cast<double>(q[2]),
            static_cast<double>(q[3])};
  }
};

template <typename S>
struct MicroRow {
  const S* p;  // [C, T, 4]
  int64_t C, T;
  SOFTSET_HD Counts operator()(int64_t t) const {
    Counts s{0.0, 0.0, 0.0, 0.0};
    for (int64_t c = 0; c < C; ++c) {  // class order, as cm.sum(-3)
      const S* q = p + (c * T + t) * 4;
      s.tp += static_cast<double>(q[0]);
      s.fn += static_cast<double>(q[1]);
      s.fp += static_cast<double>(q[2]);
      s.tn += static_cast<double>(q[3]);
    }
    return s;
  }
};

template <typename S>
struct ClassGrad {
  S* p;                 // [T, 4]
  double support_grad;  // ∂L/∂(tp + fn) through the weighted average's class weights
  SOFTSET_HD void operator()(int64_t t, const double* d) const {
    S* q = p + 4 * t;
    q[0] = static_cast<S>(d[0] + support_grad);
    q[1] = static_cast<S>(d[1] + support_grad);
    q[2] = static_cast<S>(d[2]);
    q[3] = static_cast<S>(d[3]);
  }
};

template <typename S>
struct MicroGrad {
  S* p;  // [C, T, 4]: every class gets the gradient of the summed counts
  int64_t C, T;
  SOFTSET_HD void operator()(int64_t t, const double* d) const {
    for (int64_t c = 0; c < C; ++c) {
      S* q = p + (c * T + t) * 4;
      for (int k = 0; k < 4; ++k) q[k] = static_cast<S>(d[k]);
    }
  }
};

// One point of the ROC curve: fpr, tpr and their partials (tpr in tp, fn; fpr in fp, tn).
struct RocPoint {
  double x = 0, y = 0;
  double dx_fp = 0, dx_tn = 0, dy_tp = 0, dy_fn = 0;
};

SOFTSET_HD RocPoint roc_point(const Counts& c) {
  RocPoint q;
  const double pos = c.tp + c.fn, neg = c.fp + c.tn;
  if (pos != 0.0) {
    q.y = c.tp / pos;
    q.dy_tp = c.fn / pos / pos;
    q.dy_fn = -c.tp / pos / pos;
  }
  if (neg != 0.0) {
    q.x = c.fp / neg;
    q.dx_fp = c.tn / neg / neg;
    q.dx_tn = -c.fp / neg / neg;
  }
  return q;
}

template <typename Row>
SOFTSET_HD bool auroc_defined(const Row& row, int64_t T) {
  if (T == 0) return false;
  const Counts c = row(0);
  return c.tp + c.fn > 0.0 && c.fp + c.tn > 0.0;
}

template <typename Row>
SOFTSET_HD double auroc(const Problem& pr, const Row& row) {
  if (!auroc_defined(row, pr.T)) return pr.zero_division;
  double area = 0.0, px = 1.0, py = 1.0;  // previous point, starting at (1, 1)
  for (int64_t t = 0; t < pr.T; ++t) {
    const RocPoint q = roc_point(row(t));
    area += (px - q.x) * (py + q.y) / 2;
    px = q.x;
    py = q.y;
  }
  return area + px * py / 2;  // the last segment, to (0, 0)
}

// ∂area/∂fpr_t = (tpr_{t+1} - tpr_{t-1}) / 2 and ∂area/∂tpr_t = (fpr_{t-1} - fpr_{t+1}) / 2,
// with the closing points (1, 1) before t = 0 and (0, 0) after t = T - 1.
template <typename Row, typename Sink>
SOFTSET_HD void auroc_backward(const Problem& pr, const Row& row, double coef, const Sink& sink) {
  double d[4] = {0.0, 0.0, 0.0, 0.0};
  if (!auroc_defined(row, pr.T)) {
    for (int64_t t = 0; t < pr.T; ++t) sink(t, d);
    return;
  }
  RocPoint prev;
  prev.x = prev.y = 1.0;
  RocPoint cur = roc_point(row(0));
  for (int64_t t = 0; t < pr.T; ++t) {
    const RocPoint next = t + 1 < pr.T ? roc_point(row(t + 1)) : RocPoint();
    const double gx = coef * (next.y - prev.y) / 2, gy = coef * (prev.x - next.x) / 2;
    d[0] = gy * cur.dy_tp;
    d[1] = gy * cur.dy_fn;
    d[2] = gx * cur.dx_fp;
    d[3] = gx * cur.dx_tn;
    sink(t, d);
    prev = cur;
    cur = next;
  }
}

// Sum over t of the metric (auroc: the area).
template <Metric M, typename Row>
SOFTSET_HD double row_value(const Problem& pr, const Row& row) {
  if constexpr (M == Metric::kAUROC) {
    return auroc(pr, row);
  } else {
    double sum = 0.0;
    for (int64_t t = 0; t < pr.T; ++t) sum += threshold_metric<M>(pr, row(t), nullptr);
    return sum;
  }
}

// Hands sink(t, coef · ∂row_value/∂counts_t) for every t.
template <Metric M, typename Row, typename Sink>
SOFTSET_HD void row_backward(const Problem& pr, const Row& row, double coef, const Sink& sink) {
  if constexpr (M == Metric::kAUROC) {
    auroc_backward(pr, row, coef, sink);
  } else {
    double d[4];
    for (int64_t t = 0; t < pr.T; ++t) {
      threshold_metric<M>(pr, row(t), d);
      for (int k = 0; k < 4; ++k) d[k] *= coef;
      sink(t, d);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Passes. Scratch layout: see the top of this file.

struct Scratch {
  double* row;
  double* support;
  double* group;
  SOFTSET_HD static Scratch at(const Problem& pr, double* base) {
    double* row = base;
    double* support = row + pr.G * (pr.C > 1 ? pr.C : 1);
    return {row, support, support + pr.G * pr.C};
  }
};

// Item i = g·C + c (not micro): its row value, and its support for weighted.
template <Metric M, typename S>
SOFTSET_HD void class_pass(const Problem& pr, const S* counts, int64_t i, const Scratch& s) {
  const S* cm = counts + i * pr.T * 4;
  s.row[i] = row_value<M>(pr, ClassRow<S>{cm});
  if (pr.average == Average::kWeighted) {
    double sum = 0.0;
    for (int64_t t = 0; t < pr.T; ++t) sum += static_cast<double>(cm[4 * t]) + static_cast<double>(cm[4 * t + 1]);
    s.support[i] = sum / static_cast<double>(pr.T);
  }
}

// Item g (micro): the row value of the counts summed over classes.
template <Metric M, typename S>
SOFTSET_HD void micro_pass(const Problem& pr, const S* counts, int64_t g, const Scratch& s) {
  s.row[g] = row_value<M>(pr, MicroRow<S>{counts + g * pr.C * pr.T * 4, pr.C, pr.T});
}

// Class weight of metrics._class_weights: support share, uniform when the total is not > 0.
SOFTSET_HD double class_weight(const Problem& pr, double support, double total) {
  return total > 0.0 ? support / total : 1.0 / static_cast<double>(pr.C);
}

// Item g, after the class or micro pass: group[g] = (class average of the rows, total support).
SOFTSET_HD void group_pass(const Problem& pr, int64_t g, const Scratch& s) {
  double* out = s.group + 2 * g;
  if (pr.average == Average::kMicro) {
    out[0] = s.row[g];
    return;
  }
  const double* row = s.row + g * pr.C;
  if (pr.average == Average::kWeighted) {
    const double* support = s.support + g * pr.C;
    double total = 0.0, mean = 0.0;
    for (int64_t c = 0; c < pr.C; ++c) total += support[c];
    for (int64_t c = 0; c < pr.C; ++c) mean += class_weight(pr, support[c], total) * row[c];
    out[0] = mean;
    out[1] = total;
    return;
  }
  double sum = 0.0;
  for (int64_t c = 0; c < pr.C; ++c) sum += row[c];
  out[0] = sum / static_cast<double>(pr.C);
}

// The loss, after the group pass (average != none): 1 - mean over groups and thresholds.
SOFTSET_HD double loss_value(const Problem& pr, const Scratch& s) {
  double sum = 0.0;
  for (int64_t g = 0; g < pr.G; ++g) sum += s.group[2 * g];
  return 1.0 - sum / (static_cast<double>(pr.G) * static_cast<double>(pr.values_per_row()));
}

// The loss of class c (average == none), after the class pass.
SOFTSET_HD double class_loss_value(const Problem& pr, const Scratch& s, int64_t c) {
  double sum = 0.0;
  for (int64_t g = 0; g < pr.G; ++g) sum += s.row[g * pr.C + c];
  return 1.0 - sum / (static_cast<double>(pr.G) * static_cast<double>(pr.values_per_row()));
}

// Item i = g·C + c (not micro): writes ∂L/∂counts of (g, c) given the upstream gradient
// grad (grad[c] for none, else grad[0]). Weighted needs the class and group passes first.
template <Metric M, typename S>
SOFTSET_HD void class_backward(const Problem& pr, const S* counts, const S* grad, int64_t i, const Scratch& s,
                               S* grad_counts) {
  const int64_t g = i / pr.C, c = i % pr.C;
  const double scale = 1.0 / (static_cast<double>(pr.G) * static_cast<double>(pr.values_per_row()));
  double coef = 0.0, support_grad = 0.0;
  switch (pr.average) {
    case Average::kNone:
      coef = -static_cast<double>(grad[c]) * scale;
      break;
    case Average::kWeighted: {
      // L = 1 - scale·Σ w_c·row_c with w_c = support_c / total:
      // ∂L/∂support_c = -scale·(row_c - Σ_k w_k·row_k) / total, and ∂support_c/∂(tp, fn)_t = 1/T.
      const double upstream = -static_cast<double>(grad[0]) * scale;
      const double total = s.group[2 * g + 1];
      coef = upstream * class_weight(pr, s.support[i], total);
      if (total > 0.0)
        support_grad = upstream * (s.row[i] - s.group[2 * g]) / total / static_cast<double>(pr.T);
      break;
    }
    default:  // macro
      coef = -static_cast<double>(grad[0]) * scale / static_cast<double>(pr.C);
      break;
  }
  const int64_t offset = i * pr.T * 4;
  row_backward<M>(pr, ClassRow<S>{counts + offset}, coef, ClassGrad<S>{grad_counts + offset, support_grad});
}

// Item g (micro): ∂L/∂counts of group g, the same for every class.
template <Metric M, typename S>
SOFTSET_HD void micro_backward(const Problem& pr, const S* counts, const S* grad, int64_t g, S* grad_counts) {
  const double coef =
      -static_cast<double>(grad[0]) / (static_cast<double>(pr.G) * static_cast<double>(pr.values_per_row()));
  const int64_t offset = g * pr.C * pr.T * 4;
  row_backward<M>(pr, MicroRow<S>{counts + offset, pr.C, pr.T}, coef, MicroGrad<S>{grad_counts + offset, pr.C, pr.T});
}

}  // namespace epilogue
}  // namespace softset
