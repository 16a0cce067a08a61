// Internals shared by the CPU forward (soft_counts_cpu.cpp) and backward
// (soft_counts_backward_cpu.cpp) kernels: the checked and parsed problem,
// grid look-ups, per-element labels and the one dtype/variant dispatch helper.
#pragma once

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "../op_checks.h"
#include "../softset_common.h"
#include "../ops.h"
#include "../torch_api.h"

// The sigmoid kernels are bound by floating-point throughput, not memory: on x86-64 CPUs
// with AVX2 and FMA they run a second copy compiled for those (chosen at run time; the
// extension itself targets baseline x86-64, so one wheel runs everywhere). Measured
// standalone on the dev machine: T = 9 forward 11.1 -> 8.3 ns, backward 18.5 -> 15.2 ns
// per sample. SOFTSET_FAST_CPU_ISA=baseline forces the baseline copy (tests use it).
// SOFTSET_ALWAYS_INLINE marks what the hot loops are made of: code that is not inlined into
// the AVX2 copy runs as baseline code.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SOFTSET_CPU_AVX2 1
#define SOFTSET_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define SOFTSET_ALWAYS_INLINE __attribute__((always_inline)) inline
#define SOFTSET_ALWAYS_INLINE_LAMBDA __attribute__((always_inline))
#else
#define SOFTSET_CPU_AVX2 0
#define SOFTSET_TARGET_AVX2
#define SOFTSET_ALWAYS_INLINE inline
#define SOFTSET_ALWAYS_INLINE_LAMBDA
#endif

namespace softset {
namespace cpu {

// The type arithmetic on T runs in: float for float16 / bfloat16, else T.
template <typename T>
using arithmetic_type = std::conditional_t<std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>, float, T>;

// A non-owning reference to a callable that outlives it (a kernel on the caller's stack): one
// indirect call, no allocation.
template <typename Signature>
class FunctionRef;

template <typename R, typename... Args>
class FunctionRef<R(Args...)> {
 public:
  template <typename F>
  FunctionRef(const F& f)  // NOLINT(google-explicit-constructor): converts like c10::function_ref
      : object_(static_cast<const void*>(&f)),
        call_([](const void* object, Args... args) -> R {
          return (*static_cast<const F*>(object))(std::forward<Args>(args)...);
        }) {}
  R operator()(Args... args) const { return call_(object_, std::forward<Args>(args)...); }

 private:
  const void* object_;
  R (*call_)(const void*, Args...);
};

// Elements per parallel chunk: large enough that per-chunk setup is noise.
constexpr int64_t kGrain = 1 << 15;

// How target values become (y, skip).
enum class TargetKind : int {
  kBinary = 0,  // bool: y in {0, 1}
  kSoft = 1,    // integer or floating target of preds' shape: y = value (soft labels allowed)
  kClass = 2,   // class indices [N, L]: y = (target == c), one-vs-rest
};

// The op's arguments, checked, with contiguous tensors and the grid columns split out.
struct Problem {
  Tensor preds, target, weight, grid;  // weight undefined when absent
  Approx approx;
  double k;
  int64_t N, C, L, T;
  int64_t num_classes;
  bool has_ignore;
  int64_t ignore_index;
  bool samplewise;
  int64_t G() const { return samplewise ? N : 1; }
  std::vector<double> tau, a, b;  // grid columns, contiguous
};

Problem make_problem(const Tensor& preds, const Tensor& target, const OptionalTensor& weight,
                     const Tensor& grid, std::string_view approx, double k, int64_t num_classes,
                     std::optional<int64_t> ignore_index, bool samplewise, const char* op_name);

// CountView::direct's mark of a bucket that needs count_in_bucket.
constexpr int64_t kCrowded = 0xFFFF;

// #{e : x_e <= p} over sorted finite values x in O(1) for evenly spread x, exact for
// every p (NaN -> 0). A uniform bucket table: bucket_of is monotone in p, so values in
// lower buckets than p's are <= p and values in higher buckets are > p; only the values
// sharing p's bucket need a comparison. A bucket holding at most one value needs one
// comparison without a branch: s = start[j], count = s + (x[s] <= p), where x[s] is the
// bucket's value or, for an empty bucket, a value of a higher bucket (> p) or the NaN after
// the last value (never <= p). Only buckets holding several values (rare), or whose start is
// beyond 16 bits (grids of more than 32767 thresholds), take a loop.
struct CountView {
  const double* x;        // the values, then a NaN
  const int32_t* start;   // start[j] = #{e : bucket_of(x_e) < j}, start[buckets] = #values
  const uint16_t* direct;  // direct[j] = start[j] when bucket j holds at most one value and start[j] < kCrowded,
                           // else kCrowded (16 bits: half the cache footprint of int32 entries)
  int64_t buckets;
  double lo, scale;

  SOFTSET_ALWAYS_INLINE int64_t count(double p) const {
    const int64_t j = bucket_of(p, lo, scale, buckets);
    const int64_t known = direct[j];
    return known != kCrowded ? known + (x[known] <= p) : count_in_bucket(j, p);
  }

  // p shares its bucket with values: compare with them.
  int64_t count_in_bucket(int64_t j, double p) const {
    int64_t i = start[j];
    const int64_t end = start[j + 1];
    if (end - i > 8) return count_before<false>(x, 1, end, p, i, end);  // a crowded bucket
    while (i < end && x[i] <= p) ++i;
    return i;
  }
};

class CountTable {
 public:
  explicit CountTable(std::vector<double> x);  // ascending, finite
  CountTable() : CountTable(std::vector<double>{}) {}
  // A plain copy for the hot loop: a local the compiler keeps in registers.
  CountView view() const { return CountView{x_.data(), start_.data(), direct_.data(), buckets_, lo_, scale_}; }

 private:
  std::vector<double> x_;
  std::vector<int32_t> start_;
  std::vector<uint16_t> direct_;
  int64_t buckets_ = 1;
  double lo_ = 0.0, scale_ = 0.0;
};

// Cells of the linear approximation: one look-up gives both segment indices of a sample
// (softset_common.h), i1 = #{t : a_t <= p} and i3 = #{t : b_t < p}. The 2T breakpoints,
// with b_t replaced by the next double up (p > b exactly when p >= nextafter(b, +inf)),
// sorted into one list: cell = #{breakpoints <= p} in [0, 2T], and i1, i3 are functions
// of the cell (the a's and b's among the first `cell` breakpoints).
struct LinearCells {
  CountTable table;
  std::vector<int64_t> i1, i3;  // [2T + 1]
  static LinearCells make(const std::vector<double>& a, const std::vector<double>& b);
  // make(a, b), kept for the 8 most recently used grids (a training loop passes the same grids every
  // step, and building a table costs more than counting a thousand samples).
  static std::shared_ptr<const LinearCells> of(const std::vector<double>& a, const std::vector<double>& b);
  // The cells of a problem: of(a, b) for approx="linear", else empty cells.
  static std::shared_ptr<const LinearCells> of(const Problem& pr);
};

// The label of one element: skip (ignored) or y. For kBinary / kClass y is 0 or 1.
template <typename target_t, TargetKind K>
struct Labels {
  const target_t* target;  // [N, C, L] or [N, L] (kClass)
  bool has_ignore;
  target_t ignore_as_target;  // ignore_index converted like torch's `target != ignore_index`
  int64_t ignore_index;

  // y of element with target offset `i` in class `c`; returns false when ignored.
  inline bool get(int64_t i, int64_t c, double& y) const {
    const target_t v = target[i];
    if constexpr (K == TargetKind::kBinary) {
      // torch compares bool with an int in int64.
      if (has_ignore && static_cast<int64_t>(v) == ignore_index) return false;
      y = v ? 1.0 : 0.0;
    } else if constexpr (K == TargetKind::kSoft) {
      if (has_ignore && v == ignore_as_target) return false;
      y = static_cast<double>(v);
    } else {
      if (has_ignore && v == ignore_as_target) return false;
      y = static_cast<int64_t>(v) == c ? 1.0 : 0.0;
    }
    return true;
  }
};

template <typename target_t, TargetKind K>
Labels<target_t, K> make_labels(const Problem& pr) {
  Labels<target_t, K> labels;
  labels.target = static_cast<target_t*>(pr.target.data_ptr());
  labels.has_ignore = pr.has_ignore;
  labels.ignore_index = pr.ignore_index;
  labels.ignore_as_target = static_cast<target_t>(pr.ignore_index);
  return labels;
}

// Calls f(preds_t{}, target_t{}, kind, approx) with the compile-time variants of this call:
// preds dtype x target dtype x target kind x approximation. The only place that branches
// on them; the kernels see template parameters.
template <typename T>
struct TypeTag {
  using type = T;
};
template <TargetKind K>
using KindTag = std::integral_constant<TargetKind, K>;
template <Approx A>
using ApproxTag = std::integral_constant<Approx, A>;

template <bool WithStep, typename F>
void dispatch_approx(Approx approx, F&& f) {
  switch (approx) {
    case Approx::kLinear: f(ApproxTag<Approx::kLinear>{}); break;
    case Approx::kSigmoid: f(ApproxTag<Approx::kSigmoid>{}); break;
    case Approx::kStep:
      if constexpr (WithStep) f(ApproxTag<Approx::kStep>{});
      else fail("softset_fast internal error: step has no kernel here");
      break;
  }
}

template <typename F>
void dispatch_target(const Problem& pr, F&& f) {
  const ScalarType dtype = pr.target.scalar_type();
  if (pr.num_classes > 0) {
    switch (dtype) {
      case ScalarType::Byte: f(TypeTag<uint8_t>{}, KindTag<TargetKind::kClass>{}); return;
      case ScalarType::Int: f(TypeTag<int32_t>{}, KindTag<TargetKind::kClass>{}); return;
      case ScalarType::Long: f(TypeTag<int64_t>{}, KindTag<TargetKind::kClass>{}); return;
      default: break;
    }
  } else {
    switch (dtype) {
      case ScalarType::Bool: f(TypeTag<bool>{}, KindTag<TargetKind::kBinary>{}); return;
      case ScalarType::Byte: f(TypeTag<uint8_t>{}, KindTag<TargetKind::kSoft>{}); return;
      case ScalarType::Int: f(TypeTag<int32_t>{}, KindTag<TargetKind::kSoft>{}); return;
      case ScalarType::Long: f(TypeTag<int64_t>{}, KindTag<TargetKind::kSoft>{}); return;
      case ScalarType::Half: f(TypeTag<Half>{}, KindTag<TargetKind::kSoft>{}); return;
      case ScalarType::BFloat16: f(TypeTag<BFloat16>{}, KindTag<TargetKind::kSoft>{}); return;
      case ScalarType::Float: f(TypeTag<float>{}, KindTag<TargetKind::kSoft>{}); return;
      case ScalarType::Double: f(TypeTag<double>{}, KindTag<TargetKind::kSoft>{}); return;
      default: break;
    }
  }
  fail("softset_fast internal error: unchecked target dtype ", dtype_name(dtype));
}

template <bool WithStep, typename F>
void dispatch(const Problem& pr, F&& f) {
  const auto with_preds = [&](auto preds_tag) {
    dispatch_target(pr, [&](auto target_tag, auto kind_tag) {
      dispatch_approx<WithStep>(pr.approx, [&](auto approx_tag) { f(preds_tag, target_tag, kind_tag, approx_tag); });
    });
  };
  switch (pr.preds.scalar_type()) {
    case ScalarType::Double: return with_preds(TypeTag<double>{});
    case ScalarType::Float: return with_preds(TypeTag<float>{});
    case ScalarType::Half: return with_preds(TypeTag<Half>{});
    case ScalarType::BFloat16: return with_preds(TypeTag<BFloat16>{});
    default: fail("softset_fast internal error: unchecked preds dtype ", dtype_name(pr.preds.scalar_type()));
  }
}

// Element offsets of a contiguous run of one row (n, c) of preds [N, C, L]:
// preds offset e, target / weight offset t (differs for class indices [N, L]).
struct Run {
  int64_t e, t, n, c, count;
};

// Calls body(run) for the runs covering flat preds offsets [begin, end); the position
// advances incrementally (one division per call, none per run: with L == 1 every run
// is one element).
template <typename Body>
SOFTSET_ALWAYS_INLINE void for_each_run(const Problem& pr, int64_t begin, int64_t end, Body&& body) {
  if (begin >= end) return;
  const int64_t L = pr.L, C = pr.C;
  const bool class_targets = pr.num_classes > 0;
  const int64_t row = begin / L;
  int64_t l = begin - row * L, n = row / C, c = row - n * C;
  for (int64_t e = begin; e < end;) {
    const int64_t count = std::min(end - e, L - l);
    body(Run{e, class_targets ? n * L + l : e, n, c, count});
    e += count;
    l = 0;
    if (++c == C) {
      c = 0;
      ++n;
    }
  }
}

// Whether this op call may use the AVX2 + FMA copy: the CPU has both and the environment
// does not ask for the baseline. Read once per op call.
bool use_avx2_fma();

// Runs kernel.run(args...) compiled for AVX2 + FMA: run is force-inlined into this
// function, so its loops are generated for the wider target. Call only when use_avx2_fma().
template <typename Kernel, typename... Args>
SOFTSET_TARGET_AVX2 void run_avx2_fma(const Kernel& kernel, Args... args) {
  kernel.run(args...);
}

// kernel.run(args...), in the AVX2 + FMA copy when the kernel has one (HasCopy) and this
// op call may use it (avx2_fma = use_avx2_fma()).
template <bool HasCopy, typename Kernel, typename... Args>
void run_best_copy(const Kernel& kernel, bool avx2_fma, Args... args) {
  if constexpr (HasCopy) {
    if (avx2_fma) return run_avx2_fma(kernel, args...);
  }
  kernel.run(args...);
}

// The CPU kernels pair thresholds, one division for two sigmoids: 1 / (x_a x_b) with
// x = 1 + e·exp(k τ) <= 1 + exp(2 · bound), so the product stays finite (< 1.8e308)
// only while |k p|, |k τ| <= 170, tighter than softset_common.h's bound.
constexpr double kPairedSigmoidBound = 170.0;

// exp(k τ_t) for the factorised sigmoid, and whether it is safe for this grid.
struct SigmoidTable {
  std::vector<double> exp_k_tau;
  bool factorised = false;
};
SigmoidTable make_sigmoid_table(const Problem& pr);

// Where the kernels write or read each element's cell: one byte per element for up to 256 cells
// (T <= 127), two for up to 65536; neither set: not recorded.
struct CodePointers {
  uint8_t* narrow = nullptr;
  uint16_t* wide = nullptr;
  bool any() const { return narrow != nullptr || wide != nullptr; }
};

// The linear cell of every element, written by the counting pass for a gradient pass in the same
// op call (soft_set_loss's training call): that pass then reads the cell instead of looking p up
// again. Kept by the caller between calls, so its buffer is not allocated each step.
class CellCodes {
 public:
  // Storage for the cells of a problem's numel elements (grown, never shrunk), or none when they
  // are not recorded (not linear, more than 65536 cells); recorded() says which until the next call.
  CodePointers prepare(const Problem& pr, int64_t numel);
  // The recorded cells (ignored elements are not written).
  CodePointers recorded() const { return recorded_; }
  void forget() { recorded_ = CodePointers{}; }

 private:
  std::vector<uint8_t> narrow_;
  std::vector<uint16_t> wide_;
  CodePointers recorded_;
};

// What the forward (Accumulate) and backward (Gradient) passes read per element.
template <typename preds_t, typename target_t, TargetKind K>
struct ElementInputs {
  const Problem& pr;
  const preds_t* preds;
  const counts_type<preds_t>* weight;  // nullptr: all ones
  Labels<target_t, K> labels;
  const CountTable& cells;  // linear: the merged breakpoints; step: tau
  const SigmoidTable& sig;
  bool avx2_fma;  // sigmoid: run the AVX2 + FMA copy
};

template <typename preds_t, typename target_t, TargetKind K>
ElementInputs<preds_t, target_t, K> element_inputs(const Problem& pr, const CountTable& cells,
                                                   const SigmoidTable& sig) {
  return {pr,    static_cast<preds_t*>(pr.preds.data_ptr()),
          pr.weight.defined() ? static_cast<counts_type<preds_t>*>(pr.weight.data_ptr()) : nullptr,
          make_labels<target_t, K>(pr), cells, sig, use_avx2_fma()};
}

// low = min(low, x[i]), high = max(high, x[i]) over n values, in x's arithmetic type (float for
// float16 / bfloat16); returns whether any is NaN (which min and max skip). float and double run
// 16 bytes at a time in GCC / Clang vector types: the compilers do not vectorise a floating-point
// min / max reduction by themselves (they may not reorder its NaN and signed-zero cases).
template <typename T>
bool range_of(const T* x, int64_t n, double& low, double& high) {
  using acc_t = arithmetic_type<T>;
  using limits = std::numeric_limits<acc_t>;
  acc_t lo = limits::has_infinity ? limits::infinity() : limits::max();
  acc_t hi = limits::has_infinity ? -limits::infinity() : limits::lowest();
  bool nan = false;
  int64_t i = 0;
#if defined(__GNUC__) || defined(__clang__)
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    typedef T V __attribute__((vector_size(16)));
    using Mask = decltype(V{} != V{});
    constexpr int kLanes = sizeof(V) / sizeof(T);
    V vlo = lo - V{}, vhi = hi - V{};  // every lane lo, hi
    Mask flags{};
    for (; i + kLanes <= n; i += kLanes) {
      V v;
      std::memcpy(&v, x + i, sizeof(V));
      flags |= v != v;
      vlo = v < vlo ? v : vlo;
      vhi = v > vhi ? v : vhi;
    }
    for (int j = 0; j < kLanes; ++j) {
      lo = std::min(lo, vlo[j]);
      hi = std::max(hi, vhi[j]);
      nan |= flags[j] != 0;
    }
  }
#endif
  for (; i < n; ++i) {
    const acc_t v = static_cast<acc_t>(x[i]);
    nan |= v != v;
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  low = std::min(low, static_cast<double>(lo));
  high = std::max(high, static_cast<double>(hi));
  return nan;
}

// Adds the values of flat preds offsets [begin, end) (and their targets and weights) to s.
template <typename preds_t, typename target_t, TargetKind K>
void scan_values(const ElementInputs<preds_t, target_t, K>& in, int64_t begin, int64_t end, ValueStats& s) {
  const Labels<target_t, K> labels = in.labels;
  for_each_run(in.pr, begin, end, [&](const Run& run) {
    s.preds_nan |= range_of(in.preds + run.e, run.count, s.preds_low, s.preds_high);
    if (in.weight != nullptr) s.weight_nan |= range_of(in.weight + run.t, run.count, s.weight_low, s.weight_high);
    if constexpr (K != TargetKind::kBinary) {
      if (!labels.has_ignore) {
        s.target_nan |= range_of(labels.target + run.t, run.count, s.target_low, s.target_high);
        return;
      }
      for (int64_t j = 0; j < run.count; ++j) {
        const target_t v = labels.target[run.t + j];
        if (v == labels.ignore_as_target) continue;
        s.target_nan |= v != v;
        s.target_low = std::min(s.target_low, static_cast<double>(v));
        s.target_high = std::max(s.target_high, static_cast<double>(v));
      }
    }
  });
}

// soft_counts on the CPU; with stats != nullptr, the value statistics of the call too, gathered in the
// counting pass: each block of elements is scanned just before it is counted, so the kernel reads it
// from cache and the data crosses memory once. With codes != nullptr, each element's cell is
// recorded where CellCodes::prepare gives storage (codes->recorded() says where). With problem !=
// nullptr, the checked problem is handed back for a gradient pass that follows (soft_counts_backward_of).
Tensor soft_counts_with_stats(const Tensor& preds, const Tensor& target,
                                  const OptionalTensor& weight, const Tensor& grid,
                                  std::string_view approx, double k, int64_t num_classes,
                                  std::optional<int64_t> ignore_index, bool samplewise, ValueStats* stats,
                                  CellCodes* codes = nullptr, Problem* problem = nullptr);

// _soft_counts_backward on the CPU; with recorded codes of the same inputs (CellCodes), the
// linear gradient reads each element's cell from them.
Tensor soft_counts_backward_with_codes(const Tensor& grad, const Tensor& preds, const Tensor& target,
                                           const OptionalTensor& weight, const Tensor& grid,
                                           std::string_view approx, double k, int64_t num_classes,
                                           std::optional<int64_t> ignore_index, bool samplewise,
                                           CodePointers codes);

// The gradient pass of a checked problem, given grad [G, C, T, 4] of its shape (not checked here).
Tensor soft_counts_backward_of(const Problem& pr, const Tensor& grad, CodePointers codes);

}  // namespace cpu
}  // namespace softset
