// Definitions shared by the CPU and CUDA sources (and the epilogue): the approximation
// codes, the grid's columns, the accumulation rule, the breakpoint search. No torch includes: this header
// compiles in plain C++ and in .cu files. tests/test_op_contract.py holds Python's codes
// (softset_fast/_grid.py GRID_COLUMNS, the Triton kernels' codes) equal to these.
//
// The grid is the float64 coefficient table [T, 8] of softset_fast/_grid.py:
// columns tau, a, b, m1, m2, m3, c2, c3 (row-major, stride 8). Branch convention of every
// backend for linear: p < a -> m1·p; p > b -> m3·p + c3; otherwise (a and b included) m2·p + c2.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define SOFTSET_HD __host__ __device__ __forceinline__
#else
#define SOFTSET_HD inline
#endif

namespace softset {

enum GridColumn : int { kTau = 0, kA = 1, kB = 2, kM1 = 3, kM2 = 4, kM3 = 5, kC2 = 6, kC3 = 7, kGridColumns = 8 };

enum class Approx : int { kLinear = 0, kSigmoid = 1, kStep = 2 };

// The accumulation rule: weights and counts are float64 for float64 preds and float32 for
// every other preds type (the kernels sum in float64 either way). softset_fast/_prepare.py
// accumulation_dtype is its Python twin (tests/test_op_contract.py checks every backend).
template <typename Preds>
using counts_type = std::conditional_t<std::is_same_v<Preds, double>, double, float>;

// Segment indices of the O(N + T) algorithm. With a(τ) and b(τ) increasing in τ,
// a sample p is in segment 3 (p > b_t) for t < i3, in segment 1 (p < a_t) for
// t >= i1, and in segment 2 in between, where
//   i1 = #{t : a_t <= p}   (count_at_most over column a)
//   i3 = #{t : b_t <  p}   (count_below over column b)
// and for the step 1[p >= τ_t] = 1 exactly for t < #{t : τ_t <= p}.
// NaN p compares false everywhere and gets index 0: never out of bounds.

// #{t in [0, T) : x_t < p} (Strict) or #{t : x_t <= p} (!Strict), x ascending with stride `stride`.
// [lo, hi) is a guess of where the answer lies (e.g. from a bucket table); any guess
// gives the exact answer, a good one in O(1): binary search inside the guess, then
// walk to the exact position with the same comparisons.
template <bool Strict>
SOFTSET_HD int64_t count_before(const double* x, int64_t stride, int64_t T, double p, int64_t lo, int64_t hi) {
  lo = lo < 0 ? 0 : (lo > T ? T : lo);
  hi = hi < lo ? lo : (hi > T ? T : hi);
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    const double v = x[mid * stride];
    if (Strict ? v < p : v <= p) lo = mid + 1; else hi = mid;
  }
  while (lo > 0) {
    const double v = x[(lo - 1) * stride];
    if (Strict ? v < p : v <= p) break;
    --lo;
  }
  while (lo < T) {
    const double v = x[lo * stride];
    if (!(Strict ? v < p : v <= p)) break;
    ++lo;
  }
  return lo;
}

// Bucket of p in a uniform table of `buckets` cells over [lo, lo + buckets / scale).
// Clamped, so NaN and ±inf map to a valid cell.
SOFTSET_HD int64_t bucket_of(double p, double lo, double scale, int64_t buckets) {
  double j = (p - lo) * scale;
  j = 0.0 < j ? j : 0.0;  // also NaN -> 0; min / max instructions, no branches
  const double last = static_cast<double>(buckets - 1);
  j = last < j ? last : j;
  return static_cast<int64_t>(j);
}

}  // namespace softset
