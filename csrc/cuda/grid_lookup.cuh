// Grid look-ups shared by the forward and backward kernels: the bucket table and the
// per-element search for the segment indices.
//
// Buckets of width 1/B over [0, 1] (B = bucket_count(T), a power of two, so u/B is exact)
// record the range of candidate indices, so each search takes one or two steps on an
// evenly spaced grid; it stays exact for any sorted grid.
//   s1(p) = #{t : a_t <= p}   (p in segment 1, p < a_t, for t >= s1)
//   s3(p) = #{t : b_t <  p}   (p in segment 3, p > b_t, for t <  s3)
// For "step" the a column is tau: s(p) = #{t : tau_t <= p}, H = 1 for t < s.
// bucket[u] = (s1(u/B), s1((u+1)/B), s3(u/B), s3((u+1)/B)).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "problem.h"

namespace softset_cuda {

// #{t : grid[t, col] <= x} (strict: < x), bisecting the whole grid.
__device__ __forceinline__ int grid_count(const double* __restrict__ grid, int T, int col, double x, bool strict) {
  int l = 0, h = T;
  while (l < h) {
    const int mid = (l + h) >> 1;
    const double v = grid[static_cast<int64_t>(mid) * kGridCols + col];
    if (strict ? (v < x) : (v <= x)) l = mid + 1; else h = mid;
  }
  return l;
}

// bucket[u] for linear (a, b = columns 1, 2) or step (a = tau, s3 = 0).
__device__ __forceinline__ int4 bucket_entry(const double* __restrict__ grid, int T, int B, int u, bool linear) {
  const double lo = static_cast<double>(u) / B, hi = static_cast<double>(u + 1) / B;
  const int col_a = linear ? 1 : 0;
  int4 r;
  r.x = grid_count(grid, T, col_a, lo, false);
  r.y = grid_count(grid, T, col_a, hi, false);
  r.z = linear ? grid_count(grid, T, 2, lo, true) : 0;
  r.w = linear ? grid_count(grid, T, 2, hi, true) : 0;
  return r;
}

__device__ __forceinline__ int count_le(const double* x, int lo, int hi, double p) {
  while (lo < hi) {  // first index in [lo, hi) with x > p
    const int mid = (lo + hi) >> 1;
    if (x[mid] <= p) lo = mid + 1; else hi = mid;
  }
  return lo;
}
__device__ __forceinline__ int count_lt(const double* x, int lo, int hi, double p) {
  while (lo < hi) {  // first index in [lo, hi) with x >= p
    const int mid = (lo + hi) >> 1;
    if (x[mid] < p) lo = mid + 1; else hi = mid;
  }
  return lo;
}

// s1 and s3 (s3 unused for step) of p, with a, b (or tau) and the buckets in shared memory.
__device__ __forceinline__ void segment_indices(const double* a, const double* b, const int4* buckets, int B, int T,
                                                bool with_b, double p, int& s1, int& s3) {
  int4 r;
  if (p >= 0.0 && p <= 1.0) {
    int u = static_cast<int>(p * B);
    u = u < B ? u : B - 1;
    r = buckets[u];
  } else {  // out of range (or NaN): search the whole grid
    r = make_int4(0, T, 0, T);
  }
  s1 = count_le(a, r.x, r.y, p);
  s3 = with_b ? count_lt(b, r.z, r.w, p) : 0;
}

}  // namespace softset_cuda
