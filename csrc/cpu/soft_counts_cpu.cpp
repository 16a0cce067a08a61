// softset_fast::soft_counts on the CPU: soft confusion counts over a threshold grid.
//
// out[g, c, t] = (tp, fn, fp, tn) = (S1, P - S1, S0, Q - S0) with
//   S1 = Σ w·y·H̃(p, τ_t), S0 = Σ w·(1-y)·H̃(p, τ_t), P = Σ w·y, Q = Σ w·(1-y),
// summed over the elements of group (g, c) (g = n when samplewise, else 0).
//
// linear, step: O(N + T) per group. Each element lands in one histogram bin, its cell
//   (LinearCells: one look-up gives both segment indices i1, i3 of softset_common.h),
//   with (Σ w·y·p, Σ w·y, Σ w(1-y)·p, Σ w(1-y)); one scan over T then gives every
//   threshold's sums.
// sigmoid: O(N·T) time with T accumulators per group, no N×T memory.
// All sums are float64; the result is cast to float32 (float64 for float64 preds).
//
// Determinism: samplewise results are bitwise reproducible for any thread count
// (each group is summed by one thread, in element order). Global results split the
// elements into min(threads, ceil(numel / 32768)) contiguous chunks with one
// float64 histogram each, merged in chunk order: bitwise reproducible for a fixed
// thread count, and different thread counts change only the float64 rounding. Sigmoid
// runs an AVX2 + FMA copy where the CPU has both (soft_counts_cpu.h); its fused
// multiply-adds round differently from the baseline copy in the last bits.
#include "soft_counts_cpu.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <mutex>

namespace softset {
namespace cpu {

Problem make_problem(const Tensor& preds, const Tensor& target, const OptionalTensor& weight,
                     const Tensor& grid, std::string_view approx, double k, int64_t num_classes,
                     std::optional<int64_t> ignore_index, bool samplewise, const char* op_name) {
  const OpShape shape =
      check_op_args(op_name, preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise);
  Problem pr;
  pr.approx = shape.approx;
  pr.preds = as_contiguous(preds);
  pr.target = as_contiguous(target);
  if (weight.has_value() && weight->defined()) {
    pr.weight = as_contiguous(as_dtype(*weight, counts_dtype(preds.scalar_type())));
  }
  pr.grid = as_contiguous(grid);
  pr.k = k;
  pr.N = shape.N;
  pr.C = shape.C;
  pr.L = shape.L;
  pr.T = shape.T;
  pr.num_classes = num_classes;
  pr.has_ignore = ignore_index.has_value();
  pr.ignore_index = ignore_index.value_or(0);
  pr.samplewise = samplewise;
  const double* g = static_cast<double*>(pr.grid.data_ptr());
  pr.tau.resize(pr.T);
  pr.a.resize(pr.T);
  pr.b.resize(pr.T);
  for (int64_t t = 0; t < pr.T; ++t) {
    pr.tau[t] = g[t * kGridColumns + kTau];
    pr.a[t] = g[t * kGridColumns + kA];
    pr.b[t] = g[t * kGridColumns + kB];
  }
  return pr;
}

CountTable::CountTable(std::vector<double> x) : x_(std::move(x)) {
  const int64_t n = static_cast<int64_t>(x_.size());
  SOFTSET_CHECK(n < (int64_t{1} << 30), "softset_fast: the grid is too large (", n, " breakpoints)");
  // ~64 buckets per value (at least 64, at most 2^16: a 128 KB table of 16-bit direct entries):
  // in an evenly spread list few samples share a bucket with a value, so most counts are read
  // off without a comparison or a mispredicted branch. Measured at T = 9, N = 2^22 (forward /
  // backward ms, 2 threads): 8 per value 19.2 / 17.8, 32: 14.1 / 12.7, 64-128: ~11-15. The cap
  // matters for large grids only: T = 999 forward-only counts at 2^22, 1 thread, with the
  // look-ups in a loop of their own (Accumulate): 2^14 buckets 12.4-13.2 ms, 2^15 11.7-12.1,
  // 2^16 11.4-11.7 (T = 9: 9.0-9.2 in the same runs; before the look-up loop was split from
  // the histogram updates and the entries were 32-bit, 2^16 was slower than 2^14).
  buckets_ = std::min<int64_t>(1 << 16, std::max<int64_t>(64, 64 * n));
  // The table spans [0, 1] at least: probabilities below the first value or above the last then
  // land in buckets of their own instead of the end buckets, which hold those values (and need
  // a comparison).
  lo_ = n > 0 ? std::min(x_[0], 0.0) : 0.0;
  const double hi = n > 0 ? std::max(x_[n - 1], 1.0) : 0.0;
  scale_ = hi > lo_ ? static_cast<double>(buckets_) / (hi - lo_) : 0.0;
  // The values are bucketed by the very function the samples go through: that, not the
  // bucket edges, is what makes the counts exact.
  start_.assign(buckets_ + 1, 0);
  for (const double v : x_) ++start_[bucket_of(v, lo_, scale_, buckets_) + 1];
  for (int64_t j = 0; j < buckets_; ++j) start_[j + 1] += start_[j];
  direct_.resize(buckets_);
  for (int64_t j = 0; j < buckets_; ++j) {
    const bool direct = start_[j + 1] - start_[j] <= 1 && start_[j] < kCrowded;
    direct_[j] = static_cast<uint16_t>(direct ? start_[j] : kCrowded);
  }
  x_.push_back(std::numeric_limits<double>::quiet_NaN());  // x[#values]: compares false (CountView)
}

LinearCells LinearCells::make(const std::vector<double>& a, const std::vector<double>& b) {
  const int64_t T = static_cast<int64_t>(a.size());
  std::vector<double> merged;
  std::vector<bool> is_b;
  merged.reserve(2 * T);
  is_b.reserve(2 * T);
  for (int64_t ia = 0, ib = 0; ia < T || ib < T;) {
    const double next_b = ib < T ? std::nextafter(b[ib], HUGE_VAL) : HUGE_VAL;
    if (ia < T && (ib == T || a[ia] <= next_b)) {
      merged.push_back(a[ia++]);
      is_b.push_back(false);
    } else {
      merged.push_back(next_b);
      ++ib;
      is_b.push_back(true);
    }
  }
  LinearCells cells{CountTable(merged), std::vector<int64_t>(2 * T + 1), std::vector<int64_t>(2 * T + 1)};
  for (int64_t cell = 0; cell < 2 * T; ++cell) {
    cells.i1[cell + 1] = cells.i1[cell] + (is_b[cell] ? 0 : 1);
    cells.i3[cell + 1] = cells.i3[cell] + (is_b[cell] ? 1 : 0);
  }
  return cells;
}

std::shared_ptr<const LinearCells> LinearCells::of(const std::vector<double>& a, const std::vector<double>& b) {
  // The most recently used grids, newest first: a step with two losses (an F1 over 9 thresholds, an
  // AUROC over 999) alternates between grids, and rebuilding a large grid's table each call costs
  // about as much as counting 2^15 samples (~70 us at T = 999).
  struct Entry {
    std::vector<double> a, b;
    std::shared_ptr<const LinearCells> cells;
  };
  constexpr size_t kRecentGrids = 8;
  static std::mutex mutex;
  static std::vector<Entry> recent;
  {
    std::lock_guard<std::mutex> lock(mutex);
    for (size_t i = 0; i < recent.size(); ++i) {
      if (recent[i].a == a && recent[i].b == b) {
        std::rotate(recent.begin(), recent.begin() + i, recent.begin() + i + 1);  // to the front
        return recent.front().cells;
      }
    }
  }
  auto cells = std::make_shared<const LinearCells>(make(a, b));
  std::lock_guard<std::mutex> lock(mutex);
  if (recent.size() == kRecentGrids) recent.pop_back();
  recent.insert(recent.begin(), Entry{a, b, cells});
  return cells;
}

std::shared_ptr<const LinearCells> LinearCells::of(const Problem& pr) {
  static const auto none = std::make_shared<const LinearCells>();
  return pr.approx == Approx::kLinear ? of(pr.a, pr.b) : none;
}

CodePointers CellCodes::prepare(const Problem& pr, int64_t numel) {
  recorded_ = CodePointers{};
  const int64_t cells = 2 * pr.T + 1;
  if (pr.approx != Approx::kLinear || cells > 65536) return recorded_;
  // Grown, never shrunk: no allocation (and no page faults) per step.
  if (cells <= 256) {
    if (static_cast<int64_t>(narrow_.size()) < numel) narrow_.resize(numel);
    recorded_.narrow = narrow_.data();
  } else {
    if (static_cast<int64_t>(wide_.size()) < numel) wide_.resize(numel);
    recorded_.wide = wide_.data();
  }
  return recorded_;
}

bool use_avx2_fma() {
#if SOFTSET_CPU_AVX2
  // Decided once, when the library first runs a kernel. SOFTSET_FAST_CPU_ISA=baseline (read then)
  // forces the baseline copy, for experiments and the test that runs both copies.
  static const bool supported = [] {
    __builtin_cpu_init();  // no reliance on libgcc's constructor having run in this library
    const char* isa = std::getenv("SOFTSET_FAST_CPU_ISA");
    const bool forced_baseline = isa != nullptr && std::string(isa) == "baseline";
    return !forced_baseline && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return supported;
#else
  return false;
#endif
}

SigmoidTable make_sigmoid_table(const Problem& pr) {
  SigmoidTable table;
  table.factorised = true;
  table.exp_k_tau.resize(pr.T);
  for (int64_t t = 0; t < pr.T; ++t) {
    if (!(std::abs(pr.k * pr.tau[t]) <= kPairedSigmoidBound)) table.factorised = false;
    table.exp_k_tau[t] = std::exp(pr.k * pr.tau[t]);
  }
  return table;
}

namespace {

// Histogram doubles per group.
int64_t hist_size(Approx approx, int64_t T) {
  switch (approx) {
    case Approx::kLinear: return (2 * T + 1) * 4;  // [cell][Σwyp, Σwy, Σw(1-y)p, Σw(1-y)]
    case Approx::kStep: return (T + 1) * 2;        // [T + 1][Σwy, Σw(1-y)] by #{τ <= p}
    case Approx::kSigmoid: return (T + 1) * 2;     // S1[T], S0[T], then P, Q
  }
  return 0;
}

// acc[t] += w / (1 + e·exp(k τ_t)): one sample's sigmoid at every threshold. The
// divider bounds this loop, so thresholds t and t + T/2 share one division:
// 1 / x_a = x_b / (x_a x_b) and 1 / x_b = x_a / (x_a x_b) (kPairedSigmoidBound keeps
// the product finite); the two halves are separate restrict pointers so the loop vectorises.
// 1 / (x_a x_b) can be as small as ~1e-295, so w / (x_a x_b) is subnormal (imprecise) for a weight
// below kTinySigmoidWeight: such a weight multiplies the sigmoids instead (two more multiplications
// per pair, 8-26 % slower, so not the common path).
constexpr double kTinySigmoidWeight = 1e-12;

template <bool TinyWeight>
SOFTSET_ALWAYS_INLINE void sigmoid_row(double* __restrict acc, double* __restrict acc_hi, const double* __restrict exp_k_tau,
                        const double* __restrict exp_k_tau_hi, double e, double w, int64_t half) {
  for (int64_t t = 0; t < half; ++t) {
    const double xa = 1.0 + e * exp_k_tau[t], xb = 1.0 + e * exp_k_tau_hi[t];
    if constexpr (TinyWeight) {
      const double r = 1.0 / (xa * xb);
      acc[t] += w * (xb * r);
      acc_hi[t] += w * (xa * r);
    } else {
      const double wr = w / (xa * xb);
      acc[t] += wr * xb;
      acc_hi[t] += wr * xa;
    }
  }
}

SOFTSET_ALWAYS_INLINE void sigmoid_row(double* acc, const double* exp_k_tau, double e, double w, int64_t T) {
  const int64_t half = T / 2;
  if (w == 0) return;  // adds nothing (soft labels' other side at y = 0 or 1)
  if (std::abs(w) >= kTinySigmoidWeight) {
    sigmoid_row<false>(acc, acc + half, exp_k_tau, exp_k_tau + half, e, w, half);
  } else {
    sigmoid_row<true>(acc, acc + half, exp_k_tau, exp_k_tau + half, e, w, half);
  }
  if (T % 2) acc[T - 1] += w / (1.0 + e * exp_k_tau[T - 1]);
}

// Adds the elements of flat offsets [begin, end) to their groups' histograms: element
// (n, c, l) goes to hist + c * class_stride (class_stride 0 when the caller passes one
// row's histogram).
template <typename preds_t, typename target_t, TargetKind K, Approx A>
struct Accumulate {
  using acc_t = counts_type<preds_t>;
  ElementInputs<preds_t, target_t, K> in;
  CodePointers codes;  // linear: each kept element's cell goes here when set (CellCodes)

  void operator()(int64_t begin, int64_t end, double* hist, int64_t class_stride) const {
    run_best_copy<A == Approx::kSigmoid>(*this, in.avx2_fma, begin, end, hist, class_stride);
  }

  SOFTSET_ALWAYS_INLINE void run(int64_t begin, int64_t end, double* hist, int64_t class_stride) const {
    constexpr bool kHardLabel = K != TargetKind::kSoft;
    // Everything the loop reads, in locals: stores into the histogram cannot alias them.
    const Problem& pr = in.pr;
    const int64_t T = pr.T;
    const CountView cells = in.cells.view();
    const Labels<target_t, K> labels = in.labels;
    const preds_t* const preds_ = in.preds;
    const acc_t* const weight_ = in.weight;
    const double k = pr.k;
    const bool factorised_grid = in.sig.factorised;
    const double* const exp_k_tau = in.sig.exp_k_tau.data();
    const double* const tau = pr.tau.data();
    const CodePointers codes_ = codes;
    for_each_run(pr, begin, end, [&](const Run& run) SOFTSET_ALWAYS_INLINE_LAMBDA {
      double* const h_run = hist + run.c * class_stride;
      if constexpr (A == Approx::kLinear) {
        // Look-ups and histogram updates in separate loops over a block: the look-ups' loads then
        // overlap freely, with no stores into the histogram between them to wait on.
        constexpr int64_t kBlock = 256;
        int32_t block_cells[kBlock];
        for (int64_t j0 = 0; j0 < run.count; j0 += kBlock) {
          const int64_t m = std::min(kBlock, run.count - j0);
          const preds_t* const p_block = preds_ + run.e + j0;
          for (int64_t j = 0; j < m; ++j) block_cells[j] = static_cast<int32_t>(cells.count(static_cast<double>(p_block[j])));
          if (codes_.narrow != nullptr) {
            for (int64_t j = 0; j < m; ++j) codes_.narrow[run.e + j0 + j] = static_cast<uint8_t>(block_cells[j]);
          } else if (codes_.wide != nullptr) {
            for (int64_t j = 0; j < m; ++j) codes_.wide[run.e + j0 + j] = static_cast<uint16_t>(block_cells[j]);
          }
          for (int64_t j = 0; j < m; ++j) {
            double y;
            if (!labels.get(run.t + j0 + j, run.c, y)) continue;
            const double p = static_cast<double>(p_block[j]);
            const double w = weight_ ? static_cast<double>(weight_[run.t + j0 + j]) : 1.0;
            double* h = h_run + block_cells[j] * 4;
            if constexpr (kHardLabel) {
              h += y > 0 ? 0 : 2;
              h[0] += w * p;
              h[1] += w;
            } else {
              const double wy = w * y, wn = w * (1 - y);
              h[0] += wy * p; h[1] += wy; h[2] += wn * p; h[3] += wn;
            }
          }
        }
      } else {
        for (int64_t j = 0; j < run.count; ++j) {
          double y;
          if (!labels.get(run.t + j, run.c, y)) continue;
          const double p = static_cast<double>(preds_[run.e + j]);
          const double w = weight_ ? static_cast<double>(weight_[run.t + j]) : 1.0;
          if constexpr (A == Approx::kStep) {
            double* h = h_run + cells.count(p) * 2;
            if constexpr (kHardLabel) {
              h[y > 0 ? 0 : 1] += w;
            } else {
              h[0] += w * y;
              h[1] += w * (1 - y);
            }
          } else {
            const bool factorised = factorised_grid && std::abs(k * p) <= kPairedSigmoidBound;
            const double e = factorised ? std::exp(-k * p) : 0.0;
            const double wy = kHardLabel ? (y > 0 ? w : 0.0) : w * y;
            const double wn = kHardLabel ? (y > 0 ? 0.0 : w) : w * (1 - y);
            if (factorised) {
              // Hard labels touch one side only; the loop over t vectorises (no aliasing).
              if (kHardLabel) {
                sigmoid_row(h_run + (y > 0 ? 0 : T), exp_k_tau, e, w, T);
              } else {
                sigmoid_row(h_run, exp_k_tau, e, wy, T);
                sigmoid_row(h_run + T, exp_k_tau, e, wn, T);
              }
            } else {
              for (int64_t t = 0; t < T; ++t) {
                const double s = 1.0 / (1.0 + std::exp(-k * (p - tau[t])));
                h_run[t] += wy * s;
                h_run[T + t] += wn * s;
              }
            }
            h_run[2 * T] += wy;
            h_run[2 * T + 1] += wn;
          }
        }
      }
    });
  }
};

// Sums for the linear counts. A threshold's middle segment is total − below − above, accurate to
// ~ulp(total) in plain double sums: a weight ~2^53 times another in the group absorbs it. Where a
// group's weights span more than kPlainWeightSpan, the sums carry their rounding errors along
// (Knuth's TwoSum): exact to ~2^-106 of the total, ~10x the arithmetic of this O(T) step.
struct PlainSum {
  double hi = 0;
  void add(double x) { hi += x; }
  void add(const PlainSum& other) { hi += other.hi; }
  double value() const { return hi; }
  // this − a − b
  double minus(const PlainSum& a, const PlainSum& b) const { return hi - a.hi - b.hi; }
};

struct CompensatedSum {
  double hi = 0, lo = 0;  // the sum is hi + lo
  void add(double x) {
    const double s = hi + x, bv = s - hi;
    lo += (hi - (s - bv)) + (x - bv);
    hi = s;
  }
  void add(const CompensatedSum& other) {
    add(other.hi);
    lo += other.lo;
  }
  double value() const { return hi + lo; }
  double minus(const CompensatedSum& a, const CompensatedSum& b) const {
    CompensatedSum d;
    d.add(hi);
    d.add(-a.hi);
    d.add(-b.hi);
    return d.hi + (d.lo + ((lo - a.lo) - b.lo));
  }
};

// Above this ratio of a group's total weight to its lightest non-empty cell's, the linear counts use
// CompensatedSum: an unweighted group needs more than 2^26 elements in it.
constexpr double kPlainWeightSpan = 67108864.0;  // 2^26

bool weights_span_widely(const LinearCells& cells, const double* hist) {
  const int64_t cell_count = static_cast<int64_t>(cells.i1.size());
  double total = 0, lightest = std::numeric_limits<double>::infinity();
  for (int64_t cell = 0; cell < cell_count; ++cell) {
    for (int side = 1; side < 4; side += 2) {  // Σw of the positives, then of the negatives
      const double w = hist[cell * 4 + side];
      total += w;
      if (w > 0) lightest = std::min(lightest, w);
    }
  }
  return total > kPlainWeightSpan * lightest;
}

// The linear counts of one group's histogram: out[T][4] = (tp, fn, fp, tn). seg1 (p < a_t) =
// {i1 <= t}: prefix of the histogram by i1; seg3 (p > b_t) = {i3 > t}: suffix of the histogram by
// i3; seg2 = the rest.
template <typename Sum, typename Write>
void linear_counts(const Problem& pr, const LinearCells& cells, const double* hist, std::vector<Sum>& scratch,
                   Write write) {
  const int64_t T = pr.T;
  const double* grid = static_cast<double*>(pr.grid.data_ptr());
  scratch.assign(3 * (T + 1) * 4, Sum{});
  Sum* pre_table = scratch.data();
  Sum* h1 = pre_table + (T + 1) * 4;
  Sum* h3 = h1 + (T + 1) * 4;
  for (int64_t cell = 0; cell <= 2 * T; ++cell) {  // the cells folded by i1 and by i3
    for (int j = 0; j < 4; ++j) {
      h1[cells.i1[cell] * 4 + j].add(hist[cell * 4 + j]);
      h3[cells.i3[cell] * 4 + j].add(hist[cell * 4 + j]);
    }
  }
  Sum run[4];
  for (int64_t t = 0; t < T; ++t) {
    for (int j = 0; j < 4; ++j) {
      run[j].add(h1[t * 4 + j]);
      pre_table[t * 4 + j] = run[j];
    }
  }
  Sum total[4];
  for (int j = 0; j < 4; ++j) {
    total[j] = run[j];
    total[j].add(h1[T * 4 + j]);
  }
  Sum suf[4];
  for (int64_t t = T - 1; t >= 0; --t) {
    for (int j = 0; j < 4; ++j) suf[j].add(h3[(t + 1) * 4 + j]);
    const double* row = grid + t * kGridColumns;
    const Sum* pre = pre_table + t * 4;
    double s[2];
    for (int side = 0; side < 2; ++side) {
      const int o = 2 * side;
      const double mid_p = total[o].minus(pre[o], suf[o]);
      const double mid_w = total[o + 1].minus(pre[o + 1], suf[o + 1]);
      // Above b, Σ w·(1 − m3·(1 − p)) = Σw − m3·(Σw − Σw·p): exactly Σw when every p there is 1.
      const double above_w = suf[o + 1].value();
      s[side] = row[kM1] * pre[o].value() + row[kM2] * mid_p + row[kC2] * mid_w +
                (above_w - row[kM3] * (above_w - suf[o].value()));
    }
    write(t, s[0], total[1].value(), s[1], total[3].value());
  }
}

// Scratch space of finalize, kept by the caller across groups.
struct FinalizeScratch {
  std::vector<PlainSum> plain;
  std::vector<CompensatedSum> compensated;
};

// Turns one group's histogram into out[T][4] = (tp, fn, fp, tn).
template <typename out_t>
void finalize(const Problem& pr, const LinearCells& cells, const double* hist, FinalizeScratch& scratch,
              out_t* out) {
  const int64_t T = pr.T;
  auto write = [&](int64_t t, double s1, double p_total, double s0, double q_total) {
    out[t * 4 + 0] = static_cast<out_t>(s1);
    out[t * 4 + 1] = static_cast<out_t>(p_total - s1);
    out[t * 4 + 2] = static_cast<out_t>(s0);
    out[t * 4 + 3] = static_cast<out_t>(q_total - s0);
  };
  if (pr.approx == Approx::kLinear) {
    if (weights_span_widely(cells, hist)) {
      linear_counts(pr, cells, hist, scratch.compensated, write);
    } else {
      linear_counts(pr, cells, hist, scratch.plain, write);
    }
  } else if (pr.approx == Approx::kStep) {
    // 1[p >= τ_t] = 1 exactly when #{τ <= p} > t: a suffix sum.
    double total[2] = {0, 0};
    for (int64_t i = 0; i <= T; ++i) {
      total[0] += hist[2 * i];
      total[1] += hist[2 * i + 1];
    }
    double suf[2] = {0, 0};
    for (int64_t t = T - 1; t >= 0; --t) {
      suf[0] += hist[2 * (t + 1)];
      suf[1] += hist[2 * (t + 1) + 1];
      write(t, suf[0], total[0], suf[1], total[1]);
    }
  } else {
    for (int64_t t = 0; t < T; ++t) write(t, hist[t], hist[2 * T], hist[T + t], hist[2 * T + 1]);
  }
}

// Not a template over the kernel: one copy of the threading code, one indirect call per
// chunk (or per row when samplewise).
using ChunkKernel = FunctionRef<void(int64_t, int64_t, double*, int64_t)>;
using ChunkScan = FunctionRef<void(int64_t, int64_t, ValueStats&)>;

// Elements scanned at a time before they are counted: a block stays in L1 / L2 cache.
constexpr int64_t kScanBlock = 4096;

// The value checks' optional part of the counting pass: kernel over [lo, hi), with every
// block scanned into stats first when stats != nullptr. The kernel adds the blocks into the
// histogram in order, so the counts are those of one call over [lo, hi).
void count_range(ChunkKernel kernel, ChunkScan scan, ValueStats* stats, int64_t lo, int64_t hi, double* hist,
                 int64_t class_stride) {
  if (stats == nullptr) return kernel(lo, hi, hist, class_stride);
  for (int64_t block = lo; block < hi; block += kScanBlock) {
    const int64_t block_end = std::min(hi, block + kScanBlock);
    scan(block, block_end, *stats);
    kernel(block, block_end, hist, class_stride);
  }
}

// Per-thread statistics merged into the call's (min, max and or: any order gives the same).
struct SharedStats {
  ValueStats* total;
  std::mutex mutex;
  void add(const ValueStats& part) {
    if (total == nullptr) return;
    std::lock_guard<std::mutex> lock(mutex);
    total->merge(part);
  }
};

template <typename out_t>
void run_forward(const Problem& pr, const LinearCells& cells, ChunkKernel kernel, ChunkScan scan, ValueStats* stats,
                 Tensor& out) {
  SharedStats shared{stats};
  const int64_t H = hist_size(pr.approx, pr.T);
  const int64_t numel = pr.N * pr.C * pr.L;
  out_t* out_data = static_cast<out_t*>(out.data_ptr());
  const int64_t T = pr.T;
  if (pr.samplewise) {
    // One group per row (n, c), summed serially by the thread that owns the row.
    const int64_t rows = pr.N * pr.C;
    const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(pr.L, 1));
    torch::stable::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
      // Padded by a cache line on each side: no line shared with another thread's data.
      std::vector<double> padded(H + 16);
      FinalizeScratch scratch;
      double* hist = padded.data() + 8;
      ValueStats part;
      for (int64_t row = begin; row < end; ++row) {
        std::fill(hist, hist + H, 0.0);
        count_range(kernel, scan, stats ? &part : nullptr, row * pr.L, (row + 1) * pr.L, hist, 0);
        finalize(pr, cells, hist, scratch, out_data + row * T * 4);
      }
      shared.add(part);
    });
    return;
  }
  // Fixed contiguous chunks, one histogram per (chunk, class), merged in chunk order.
  const int64_t chunks = std::max<int64_t>(
      1, std::min<int64_t>(static_cast<int64_t>(torch::stable::get_num_threads()), (numel + kGrain - 1) / kGrain));
  const int64_t per_chunk = pr.C * H;
  // A cache line (8 doubles) or more between the chunks' histograms: threads updating
  // neighbouring histograms must not share a line (sigmoid updates every bin per sample).
  const int64_t stride = (per_chunk + 7) / 8 * 8 + 8;
  std::vector<double> hist(chunks * stride, 0.0);
  torch::stable::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    ValueStats part;
    for (int64_t chunk = begin; chunk < end; ++chunk) {
      const int64_t lo = numel / chunks * chunk + std::min(chunk, numel % chunks);
      const int64_t hi = lo + numel / chunks + (chunk < numel % chunks ? 1 : 0);
      count_range(kernel, scan, stats ? &part : nullptr, lo, hi, hist.data() + chunk * stride, H);
    }
    shared.add(part);
  });
  for (int64_t chunk = 1; chunk < chunks; ++chunk) {
    const double* theirs = hist.data() + chunk * stride;
    for (int64_t i = 0; i < per_chunk; ++i) hist[i] += theirs[i];
  }
  FinalizeScratch scratch;
  for (int64_t c = 0; c < pr.C; ++c) finalize(pr, cells, hist.data() + c * H, scratch, out_data + c * T * 4);
}

}  // namespace

Tensor soft_counts_cpu(const Tensor& preds, const Tensor& target, const OptionalTensor& weight,
                           const Tensor& grid, std::string_view approx, double k, int64_t num_classes,
                           std::optional<int64_t> ignore_index, bool samplewise, bool /*deterministic: always*/) {
  return soft_counts_with_stats(preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise, nullptr);
}

Tensor soft_counts_with_stats(const Tensor& preds, const Tensor& target,
                                  const OptionalTensor& weight, const Tensor& grid,
                                  std::string_view approx, double k, int64_t num_classes,
                                  std::optional<int64_t> ignore_index, bool samplewise, ValueStats* stats,
                                  CellCodes* codes, Problem* problem) {
  Problem pr = make_problem(preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise,
                            "soft_counts");
  Tensor out = new_zeros(preds, {pr.G(), pr.C, pr.T, 4}, counts_dtype(preds.scalar_type()));
  const int64_t numel = pr.N * pr.C * pr.L;
  const CodePointers record = codes != nullptr ? codes->prepare(pr, numel) : CodePointers{};
  if (numel == 0) {  // nothing to count: zeros
    if (problem != nullptr) *problem = std::move(pr);
    return out;
  }

  const std::shared_ptr<const LinearCells> cells_ptr = LinearCells::of(pr);
  const LinearCells& linear = *cells_ptr;
  const CountTable step_cells(pr.approx == Approx::kStep ? pr.tau : std::vector<double>{});
  const CountTable& cells = pr.approx == Approx::kStep ? step_cells : linear.table;
  const SigmoidTable sig = pr.approx == Approx::kSigmoid ? make_sigmoid_table(pr) : SigmoidTable{};
  dispatch</*WithStep=*/true>(pr, [&](auto preds_tag, auto target_tag, auto kind, auto approx_tag) {
    using preds_t = typename decltype(preds_tag)::type;
    using target_t = typename decltype(target_tag)::type;
    const Accumulate<preds_t, target_t, decltype(kind)::value, decltype(approx_tag)::value> kernel{
        element_inputs<preds_t, target_t, decltype(kind)::value>(pr, cells, sig), record};
    const auto scan = [&kernel](int64_t begin, int64_t end, ValueStats& s) { scan_values(kernel.in, begin, end, s); };
    if constexpr (std::is_same_v<preds_t, double>) {
      run_forward<double>(pr, linear, kernel, scan, stats, out);
    } else {
      run_forward<float>(pr, linear, kernel, scan, stats, out);
    }
  });
  if (problem != nullptr) *problem = std::move(pr);
  return out;
}

}  // namespace cpu
}  // namespace softset

namespace softset {
namespace cpu {
// The copy of the sigmoid kernels this process runs (show_config reports it; tests check it).
std::string cpu_isa() { return use_avx2_fma() ? "avx2+fma" : "baseline"; }
}  // namespace cpu
}  // namespace softset
