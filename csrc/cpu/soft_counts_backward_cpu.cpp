// softset_fast::_soft_counts_backward on the CPU: the gradient of soft_counts in preds.
//
// With the upstream gradient grad[g, c, t] = (g_tp, g_fn, g_fp, g_tn) and
// gpos_t = g_tp - g_fn, gneg_t = g_fp - g_tn (fn = P - S1 and tn = Q - S0):
//   grad_preds[i] = w_i · Σ_t H̃'(p_i, τ_t) · (y_i · gpos_t + (1 - y_i) · gneg_t).
// linear: per group, prefix tables over T of slope × gradient (float64) turn the sum
//   into Σ_t = F3[i3] + F1[i1] with
//   F3[i] = Σ_{t<i} (m3_t - m2_t) g_t and F1[i] = Σ_{t<i} m2_t g_t + Σ_{t>=i} m1_t g_t,
//   tabulated per cell of the merged breakpoints (LinearCells): one look-up per element.
// sigmoid: O(T) per element, k·s·(1 - s) in float64.
// step: zero gradient.
// Deterministic: each element's value depends only on its own inputs and the tables,
// which one thread builds per group; bitwise identical for any thread count.
#include "soft_counts_cpu.h"

#include <algorithm>
#include <cmath>
#include <functional>

namespace softset {
namespace cpu {

namespace {

// Per-group tables: linear [T + 1][F3pos, F3neg, F1pos, F1neg]; sigmoid k·gpos[T], k·gneg[T].
int64_t table_size(Approx approx, int64_t T) { return approx == Approx::kLinear ? (T + 1) * 4 : T * 2; }

void build_tables(const Problem& pr, const Tensor& grad, std::vector<double>& tables) {
  const int64_t T = pr.T, groups = pr.G() * pr.C, S = table_size(pr.approx, T);
  tables.assign(groups * S, 0.0);
  const double* g = static_cast<double*>(grad.data_ptr());
  const double* grid = static_cast<double*>(pr.grid.data_ptr());
  const int64_t grain = std::max<int64_t>(1, 4096 / T);
  torch::stable::parallel_for(0, groups, grain, [&](int64_t begin, int64_t end) {
    for (int64_t group = begin; group < end; ++group) {
      const double* gg = g + group * T * 4;
      double* tab = tables.data() + group * S;
      if (pr.approx == Approx::kSigmoid) {
        for (int64_t t = 0; t < T; ++t) {
          tab[t] = pr.k * (gg[4 * t] - gg[4 * t + 1]);
          tab[T + t] = pr.k * (gg[4 * t + 2] - gg[4 * t + 3]);
        }
        continue;
      }
      double m1_suffix[2] = {0, 0};
      for (int64_t i = T; i >= 0; --i) {  // F1 starts as Σ_{t>=i} m1_t g_t
        tab[4 * i + 2] = m1_suffix[0];
        tab[4 * i + 3] = m1_suffix[1];
        if (i > 0) {
          const double* row = grid + (i - 1) * kGridColumns;
          const double* gt = gg + (i - 1) * 4;
          m1_suffix[0] += row[kM1] * (gt[0] - gt[1]);
          m1_suffix[1] += row[kM1] * (gt[2] - gt[3]);
        }
      }
      double f3[2] = {0, 0}, m2_prefix[2] = {0, 0};
      for (int64_t i = 0; i <= T; ++i) {
        tab[4 * i + 0] = f3[0];
        tab[4 * i + 1] = f3[1];
        tab[4 * i + 2] += m2_prefix[0];
        tab[4 * i + 3] += m2_prefix[1];
        if (i < T) {
          const double* row = grid + i * kGridColumns;
          const double* gt = gg + i * 4;
          const double gpos = gt[0] - gt[1], gneg = gt[2] - gt[3];
          f3[0] += (row[kM3] - row[kM2]) * gpos;
          f3[1] += (row[kM3] - row[kM2]) * gneg;
          m2_prefix[0] += row[kM2] * gpos;
          m2_prefix[1] += row[kM2] * gneg;
        }
      }
    }
  });
}

// Σ_t s_t (1 - s_t) · g_t with s_t = 1 / (1 + u_t), u_t = e·exp(k τ_t) and
// g_t = gpos_t (Mix: y·gpos_t + (1 - y)·gneg_t), written u_t s_t² (no cancellation).
// Thresholds t and t + T/2 share one division as in the forward's sigmoid_row; four
// partial sums so the loop vectorises; their order is fixed, so the result is too.
template <bool Mix>
SOFTSET_ALWAYS_INLINE double sigmoid_dot(const double* __restrict gpos, const double* __restrict gneg,
                          const double* __restrict exp_k_tau, double e, double y, int64_t T) {
  const int64_t half = T / 2;
  auto g = [&](int64_t t) { return Mix ? y * gpos[t] + (1 - y) * gneg[t] : gpos[t]; };
  auto pair = [&](int64_t t) {
    const double ua = e * exp_k_tau[t], ub = e * exp_k_tau[t + half];
    const double xa = 1.0 + ua, xb = 1.0 + ub;
    const double r = 1.0 / (xa * xb);
    const double sa = xb * r, sb = xa * r;
    return ua * sa * sa * g(t) + ub * sb * sb * g(t + half);
  };
  double part[4] = {0, 0, 0, 0};
  int64_t t = 0;
  for (; t + 4 <= half; t += 4) {
    for (int l = 0; l < 4; ++l) part[l] += pair(t + l);
  }
  double tail = 0;
  for (; t < half; ++t) tail += pair(t);
  if (T % 2) {
    const double u = e * exp_k_tau[T - 1];
    const double s = 1.0 / (1.0 + u);
    tail += u * s * s * g(T - 1);
  }
  return ((part[0] + part[1]) + (part[2] + part[3])) + tail;
}

// Per group, the linear table by cell: d(cell) = (F3[i3] + F1[i1]) for (pos, neg).
void cell_tables(const Problem& pr, const LinearCells& cells, const std::vector<double>& tables,
                 std::vector<double>& by_cell) {
  const int64_t T = pr.T, groups = pr.G() * pr.C, S = table_size(Approx::kLinear, T), cell_count = 2 * T + 1;
  by_cell.resize(groups * cell_count * 2);
  const int64_t grain = std::max<int64_t>(1, 4096 / T);
  torch::stable::parallel_for(0, groups, grain, [&](int64_t begin, int64_t end) {
    for (int64_t group = begin; group < end; ++group) {
      const double* tab = tables.data() + group * S;
      double* out = by_cell.data() + group * cell_count * 2;
      for (int64_t cell = 0; cell < cell_count; ++cell) {
        const double* f3 = tab + cells.i3[cell] * 4;
        const double* f1 = tab + cells.i1[cell] * 4 + 2;
        out[2 * cell] = f3[0] + f1[0];
        out[2 * cell + 1] = f3[1] + f1[1];
      }
    }
  });
}

// y·pos + (1 - y)·neg, reading one side only when y is 0 or 1: the other side may be inf where a
// metric's derivative overflowed (a callable metric on float32 counts), and 0·inf would be NaN.
SOFTSET_ALWAYS_INLINE double mix_sides(double y, double pos, double neg) {
  return y == 1 ? pos : y == 0 ? neg : y * pos + (1 - y) * neg;
}

template <typename preds_t, typename target_t, TargetKind K, Approx A>
struct Gradient {
  using acc_t = counts_type<preds_t>;
  ElementInputs<preds_t, target_t, K> in;
  const double* tables;  // linear: [group][cell][pos, neg]; sigmoid: [group][k·gpos[T], k·gneg[T]]
  preds_t* out;
  CodePointers codes;  // linear: each kept element's cell, recorded by the counting pass (or none)

  void operator()(int64_t begin, int64_t end) const {
    run_best_copy<A == Approx::kSigmoid>(*this, in.avx2_fma, begin, end);
  }

  SOFTSET_ALWAYS_INLINE void run(int64_t begin, int64_t end) const {
    constexpr bool kHardLabel = K != TargetKind::kSoft;
    const Problem& pr = in.pr;
    const int64_t T = pr.T, C = pr.C;
    const int64_t group_size = A == Approx::kLinear ? (2 * T + 1) * 2 : table_size(A, T);
    const bool samplewise = pr.samplewise;
    const CountView cells = in.cells.view();
    const Labels<target_t, K> labels = in.labels;
    const preds_t* const preds_ = in.preds;
    const acc_t* const weight_ = in.weight;
    preds_t* const out_ = out;
    const CodePointers codes_ = codes;
    const double k = pr.k;
    const bool factorised_grid = in.sig.factorised;
    const double* const exp_k_tau = in.sig.exp_k_tau.data();
    const double* const tau = pr.tau.data();
    for_each_run(pr, begin, end, [&](const Run& run) SOFTSET_ALWAYS_INLINE_LAMBDA {
      const double* tab = tables + ((samplewise ? run.n * C : 0) + run.c) * group_size;
      if constexpr (A == Approx::kLinear) {
        // A block's cells first (recorded, or looked up), each source in a loop of its own, then the
        // gradients: the hot loop does not choose the cells' source per element.
        constexpr int64_t kBlock = 256;
        int32_t block_cells[kBlock];
        for (int64_t j0 = 0; j0 < run.count; j0 += kBlock) {
          const int64_t m = std::min(kBlock, run.count - j0), e0 = run.e + j0;
          if (codes_.narrow != nullptr) {
            for (int64_t j = 0; j < m; ++j) block_cells[j] = codes_.narrow[e0 + j];
          } else if (codes_.wide != nullptr) {
            for (int64_t j = 0; j < m; ++j) block_cells[j] = codes_.wide[e0 + j];
          } else {
            for (int64_t j = 0; j < m; ++j) {
              block_cells[j] = static_cast<int32_t>(cells.count(static_cast<double>(preds_[e0 + j])));
            }
          }
          for (int64_t j = 0; j < m; ++j) {
            double y;
            if (!labels.get(run.t + j0 + j, run.c, y)) {
              out_[e0 + j] = static_cast<preds_t>(0.0);
              continue;
            }
            const double w = weight_ ? static_cast<double>(weight_[run.t + j0 + j]) : 1.0;
            const double* dc = tab + block_cells[j] * 2;
            const double d = kHardLabel ? dc[y > 0 ? 0 : 1] : mix_sides(y, dc[0], dc[1]);
            out_[e0 + j] = static_cast<preds_t>(w * d);
          }
        }
      } else {
        for (int64_t j = 0; j < run.count; ++j) {
          double y;
          if (!labels.get(run.t + j, run.c, y)) {
            out_[run.e + j] = static_cast<preds_t>(0.0);
            continue;
          }
          const double w = weight_ ? static_cast<double>(weight_[run.t + j]) : 1.0;
          const double p = static_cast<double>(preds_[run.e + j]);
          const bool factorised = factorised_grid && std::abs(k * p) <= kPairedSigmoidBound;
          const double e = factorised ? std::exp(-k * p) : 0.0;
          double d;
          if (factorised) {
            // Labels 0 and 1 read one side of the table (mix_sides); soft labels mix both per threshold.
            d = kHardLabel || y == 0 || y == 1 ? sigmoid_dot<false>(tab + (y > 0 ? 0 : T), tab, exp_k_tau, e, 1.0, T)
                                               : sigmoid_dot<true>(tab, tab + T, exp_k_tau, e, y, T);
          } else {
            double dpos = 0, dneg = 0;
            for (int64_t t = 0; t < T; ++t) {
              const double u = std::exp(-k * (p - tau[t]));
              const double s = 1.0 / (1.0 + u);
              const double slope = std::isinf(u) ? 0.0 : u * s * s;  // s (1 - s) without cancellation
              dpos += slope * tab[t];
              dneg += slope * tab[T + t];
            }
            d = kHardLabel ? (y > 0 ? dpos : dneg) : mix_sides(y, dpos, dneg);
          }
          out_[run.e + j] = static_cast<preds_t>(w * d);
        }
      }
    });
  }
};

}  // namespace

Tensor soft_counts_backward_cpu(const Tensor& grad, const Tensor& preds, const Tensor& target,
                                    const OptionalTensor& weight, const Tensor& grid,
                                    std::string_view approx, double k, int64_t num_classes,
                                    std::optional<int64_t> ignore_index, bool samplewise) {
  return soft_counts_backward_with_codes(grad, preds, target, weight, grid, approx, k, num_classes, ignore_index,
                                         samplewise, CodePointers{});
}

Tensor soft_counts_backward_with_codes(const Tensor& grad, const Tensor& preds, const Tensor& target,
                                           const OptionalTensor& weight, const Tensor& grid,
                                           std::string_view approx, double k, int64_t num_classes,
                                           std::optional<int64_t> ignore_index, bool samplewise,
                                           CodePointers codes) {
  const Problem pr = make_problem(preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise,
                                  "_soft_counts_backward");
  check_backward_grad("_soft_counts_backward", grad, preds, OpShape{pr.N, pr.C, pr.L, pr.T, pr.G(), pr.approx});
  return soft_counts_backward_of(pr, grad, codes);
}

Tensor soft_counts_backward_of(const Problem& pr, const Tensor& grad, CodePointers codes) {
  const int64_t numel = pr.N * pr.C * pr.L;
  if (pr.approx == Approx::kStep || numel == 0) return new_zeros(pr.preds, sizes_of(pr.preds), pr.preds.scalar_type());

  Tensor out = new_empty(pr.preds, sizes_of(pr.preds), pr.preds.scalar_type());
  const Tensor grad64 = as_contiguous(as_dtype(grad, ScalarType::Double));
  std::vector<double> tables;
  build_tables(pr, grad64, tables);
  const std::shared_ptr<const LinearCells> cells_ptr = LinearCells::of(pr);
  const LinearCells& linear = *cells_ptr;
  if (pr.approx == Approx::kLinear) {
    std::vector<double> by_cell;
    cell_tables(pr, linear, tables, by_cell);
    tables.swap(by_cell);
  }
  const SigmoidTable sig = pr.approx == Approx::kSigmoid ? make_sigmoid_table(pr) : SigmoidTable{};
  const CodePointers recorded = pr.approx == Approx::kLinear ? codes : CodePointers{};
  std::function<void(int64_t, int64_t)> run_chunk;
  dispatch</*WithStep=*/false>(pr, [&](auto preds_tag, auto target_tag, auto kind, auto approx_tag) {
    using preds_t = typename decltype(preds_tag)::type;
    using target_t = typename decltype(target_tag)::type;
    const Gradient<preds_t, target_t, decltype(kind)::value, decltype(approx_tag)::value> kernel{
        element_inputs<preds_t, target_t, decltype(kind)::value>(pr, linear.table, sig), tables.data(),
        static_cast<preds_t*>(out.data_ptr()), recorded};
    run_chunk = [kernel](int64_t begin, int64_t end) { kernel(begin, end); };
  });
  // Threading code outside the dispatch: compiled once, not once per variant.
  torch::stable::parallel_for(0, numel, kGrain, run_chunk);
  return out;
}

}  // namespace cpu
}  // namespace softset
