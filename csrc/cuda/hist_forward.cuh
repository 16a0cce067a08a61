// Histogram forward of linear/step (DESIGN.md §4; the default outside deterministic
// mode): each sample falls in segment 1 for a suffix of the grid and in segment 3 for a
// prefix, so a per-block shared-memory histogram by those two indices is flushed to a
// float64 histogram per group, then one block per group scans it over T: O(N + T).
// Two shared histograms, chosen by the planner (plan.h):
//  * Hist: float64 bins of (Σwy·p, Σwy, Σwn·p, Σwn); float atomics make the last bits
//    depend on scheduling (not deterministic).
//  * Hist32 (hard targets, no weight): uint32 words with native shared atomics and
//    exact integer sums (see hist32_kernel).
#pragma once

#include <cuda_runtime.h>

#include "common.cuh"
#include "dispatch.cuh"
#include "grid_lookup.cuh"
#include "plan.h"
#include "scan.cuh"

namespace softset_cuda {
namespace {  // internal linkage: each forward_<dtype>.cu keeps its own copies

__global__ void build_buckets_kernel(const double* __restrict__ grid, int T, int B, bool linear,
                                     int4* __restrict__ buckets) {
  const int u = blockIdx.x * blockDim.x + threadIdx.x;
  if (u >= B) return;
  buckets[u] = bucket_entry(grid, T, B, u, linear);
}

// Shared memory of the histogram kernels (plan.h) starts with the block's look-up data:
// a[T], b[T] (double) and buckets[B] (int4). Carves them out of smem; returns where the
// shared histogram (of H words) starts. (Out-parameters: returning a struct of the three
// pointers, or staging and zeroing in here too, compiles to different machine code.)
template <typename H>
__device__ __forceinline__ H* carve_grid(unsigned char* smem, int T, int B, double*& a, double*& b, int4*& buckets) {
  a = reinterpret_cast<double*>(smem);
  b = a + T;
  buckets = reinterpret_cast<int4*>(b + T);
  return reinterpret_cast<H*>(buckets + B);
}

// Copies a block's look-up data into shared memory (no barrier: callers add theirs):
// a = column 1 (linear) or tau (step), b = column 2 (linear), and the bucket table.
template <bool kLinear>
__device__ __forceinline__ void stage_grid(const double* __restrict__ grid, int T, int B,
                                           const int4* __restrict__ buckets_g, double* a, double* b,
                                           int4* buckets) {
  for (int i = threadIdx.x; i < T; i += kThreads) {
    a[i] = grid[static_cast<int64_t>(i) * kGridCols + (kLinear ? 1 : 0)];
    b[i] = kLinear ? grid[static_cast<int64_t>(i) * kGridCols + 2] : 0.0;
  }
  for (int i = threadIdx.x; i < B; i += kThreads) buckets[i] = buckets_g[i];
}

// ---- float64 histogram (ForwardPath::Hist) -------------------------------------------
// Shared layout: a[T], b[T] (double), buckets[B] (int4), hist[F * R] (H), F = 8 (T + 1)
// (hist_smem_bytes). hist index f = (h * (T + 1) + bin) * 4 + q, h = 0 for s1 bins, 1 for
// s3 bins, q = (wy·p, wy, wn·p, wn); R replicas interleaved (lane & (R-1)) spread the atomics.
template <Approx A, typename P, typename TT, typename H>
__global__ void __launch_bounds__(kThreads) hist_kernel(Reader<P, TT, acc_t<P>> rd, const double* __restrict__ grid,
                                                        int T, int B, int R, const int4* __restrict__ buckets_g,
                                                        Split split, int64_t len, double* __restrict__ ghist) {
  constexpr bool kLinear = A == Approx::kLinear;
  extern __shared__ __align__(16) unsigned char smem[];
  double *a, *b;
  int4* buckets;
  H* hist = carve_grid<H>(smem, T, B, a, b, buckets);
  const int F = 8 * (T + 1);
  stage_grid<kLinear>(grid, T, B, buckets_g, a, b, buckets);
  for (int i = threadIdx.x; i < F * R; i += kThreads) hist[i] = H(0);
  __syncthreads();

  const BlockRange range = block_range(split, len);
  const int64_t g = range.g, begin = range.begin, end = range.end;
  const bool vec = rd.vector_ok(g, begin);
  const int r = threadIdx.x & (R - 1);
  const int off3 = 4 * (T + 1);
  for (int64_t j0 = first_run(begin); j0 < end; j0 += kRunStride) {
    Element el[kItems];
    rd.read(g, j0, end, vec, el);
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      if (el[i].wy == 0.0 && el[i].wn == 0.0) continue;  // ignored, zero weight or past the end
      int s1, s3;
      segment_indices(a, b, buckets, B, T, kLinear, el[i].p, s1, s3);
      if constexpr (kLinear) {
        const int f1 = s1 * 4, f3 = off3 + s3 * 4;
        // One label side (column 0: y, 2: 1 - y) of weight w: (w·p, w) into both segment bins.
        const auto add_side = [&](int column, double w) {
          const H wp = static_cast<H>(w * el[i].p), ww = static_cast<H>(w);
          atomicAdd(&hist[(f1 + column) * R + r], wp);
          atomicAdd(&hist[(f1 + column + 1) * R + r], ww);
          atomicAdd(&hist[(f3 + column) * R + r], wp);
          atomicAdd(&hist[(f3 + column + 1) * R + r], ww);
        };
        if (el[i].wy != 0.0) add_side(0, el[i].wy);
        if (el[i].wn != 0.0) add_side(2, el[i].wn);
      } else {  // step: H = 1 for t < s1 (tau_t <= p): counts only, in the s3 half
        const int f = off3 + s1 * 4;
        if (el[i].wy != 0.0) atomicAdd(&hist[(f + 1) * R + r], static_cast<H>(el[i].wy));
        if (el[i].wn != 0.0) atomicAdd(&hist[(f + 3) * R + r], static_cast<H>(el[i].wn));
      }
    }
  }
  __syncthreads();
  double* out = ghist + g * F;
  for (int f = threadIdx.x; f < F; f += kThreads) {
    double s = 0.0;
    for (int rr = 0; rr < R; ++rr) s += static_cast<double>(hist[f * R + rr]);
    if (s != 0.0) atomicAdd(out + f, s);
  }
}

// One block per group: prefix scans of the histogram over the grid -> [T, 4].
//   P1(t) = Σ_{k<=t} h1[k] (segment 1 at t), P3(t) = Σ_{k<=t} h3[k], tot = Σ_k h3[k];
//   segment 3 = tot - P3(t), segment 2 = P3(t) - P1(t) (s3 <= s1 for every sample).
template <Approx A, typename O>
__global__ void __launch_bounds__(kThreads) finalize_hist_kernel(const double* __restrict__ ghist,
                                                                 const double* __restrict__ grid, int T,
                                                                 O* __restrict__ out) {
  constexpr bool kLinear = A == Approx::kLinear;
  using Vec4 = VecD<4>;
  using Vec8 = VecD<8>;
  using Reduce = cub::BlockReduce<Vec4, kThreads>;
  using Scan = cub::BlockScan<Vec8, kThreads>;
  __shared__ union {
    typename Reduce::TempStorage reduce;
    typename Scan::TempStorage scan;
  } temp;
  __shared__ double tot_shared[4];
  const int64_t g = blockIdx.x;
  const double* h1 = ghist + g * 8 * (T + 1);
  const double* h3 = h1 + 4 * (T + 1);

  Vec4 part;
  for (int k = threadIdx.x; k <= T; k += kThreads) {
#pragma unroll
    for (int q = 0; q < 4; ++q) part.v[q] += h3[k * 4 + q];
  }
  Vec4 tot = Reduce(temp.reduce).Reduce(part, VecSum());
  if (threadIdx.x == 0) {
#pragma unroll
    for (int q = 0; q < 4; ++q) tot_shared[q] = tot.v[q];
  }
  __syncthreads();
#pragma unroll
  for (int q = 0; q < 4; ++q) tot.v[q] = tot_shared[q];

  RunningPrefix<8> prefix;
  for (int base = 0; base < T; base += kThreads) {
    const int t = base + threadIdx.x;
    Vec8 x;
    if (t < T) {
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        x.v[q] = h1[t * 4 + q];
        x.v[4 + q] = h3[t * 4 + q];
      }
    }
    Vec8 incl;
    __syncthreads();  // temp storage reuse
    Scan(temp.scan).InclusiveScan(x, incl, VecSum(), prefix);
    if (t < T) {
      const double* c = grid + static_cast<int64_t>(t) * kGridCols;
      double s1, s0;
      if constexpr (kLinear) {
        const double m1 = c[3], m2 = c[4], m3 = c[5], c2 = c[6], c3 = c[7];
        double seg1[4], seg2[4], seg3[4];
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          seg1[q] = incl.v[q];
          seg2[q] = incl.v[4 + q] - incl.v[q];
          seg3[q] = tot.v[q] - incl.v[4 + q];
        }
        s1 = m1 * seg1[0] + (m2 * seg2[0] + c2 * seg2[1]) + (m3 * seg3[0] + c3 * seg3[1]);
        s0 = m1 * seg1[2] + (m2 * seg2[2] + c2 * seg2[3]) + (m3 * seg3[2] + c3 * seg3[3]);
      } else {
        s1 = tot.v[1] - incl.v[5];
        s0 = tot.v[3] - incl.v[7];
      }
      O* o = out + (g * T + t) * 4;
      o[0] = static_cast<O>(s1);
      o[1] = static_cast<O>(tot.v[1] - s1);
      o[2] = static_cast<O>(s0);
      o[3] = static_cast<O>(tot.v[3] - s0);
    }
  }
}

// ---- 32-bit integer histogram (ForwardPath::Hist32) -----------------------------------
// For hard labels without weight every element adds (p, 1) to the y or the n class of two
// bins (linear) or 1 to one bin (step). Shared words are uint32, updated with native
// ATOMS.ADD (float64 and 64-bit integer shared atomics compile to CAS loops on sm_80/sm_90),
// with no branch on y (the class picks the address). p becomes fixed point
// round(p * 2^kfix), a uint64 kept as two uint32 words: the low word's atomicAdd returns the
// old value, and a wrap-around carries 1 into the high word, so lo + 2^32 * hi is exact.
// kfix = 62 - ceil(log2(group length)) keeps every sum below 2^63 (rounding 2^-(kfix+1) per
// element: <= 2^-32 for groups of <= 2^31 elements). Blocks flush into a uint64 global
// histogram with integer atomics: exact, so the result does not depend on the order.
// Elements with p outside [0, 1] (or NaN) or y outside {0, 1} add float64 values to a side
// histogram instead (global float64 atomics), as the float64 histogram would.
// Shared words per replica (hist32_words, plan.h): linear ((h * (T+1) + bin) * 2 + cls) * 3 + {count, lo, hi},
// h = 0 (s1) / 1 (s3), cls = 0 (y = 1) / 1 (y = 0); step (bin * 2 + cls), counts only.

// Adds one element's float64 quantities to the side histogram (layout of ghist).
template <bool kLinear>
__device__ __forceinline__ void add_side(double* side, int off3, int s1, int s3, const Element& el) {
  if constexpr (kLinear) {
    const int f1 = s1 * 4, f3 = off3 + s3 * 4;
    if (el.wy != 0.0) {
      atomicAdd(side + f1 + 0, el.wy * el.p);
      atomicAdd(side + f1 + 1, el.wy);
      atomicAdd(side + f3 + 0, el.wy * el.p);
      atomicAdd(side + f3 + 1, el.wy);
    }
    if (el.wn != 0.0) {
      atomicAdd(side + f1 + 2, el.wn * el.p);
      atomicAdd(side + f1 + 3, el.wn);
      atomicAdd(side + f3 + 2, el.wn * el.p);
      atomicAdd(side + f3 + 3, el.wn);
    }
  } else {
    const int f = off3 + s1 * 4;
    if (el.wy != 0.0) atomicAdd(side + f + 1, el.wy);
    if (el.wn != 0.0) atomicAdd(side + f + 3, el.wn);
  }
}

template <Approx A, typename P, typename TT>
__global__ void __launch_bounds__(kThreads) hist32_kernel(Reader<P, TT, acc_t<P>> rd, const double* __restrict__ grid,
                                                          int T, int B, int R, const int4* __restrict__ buckets_g,
                                                          Split split, int64_t len, int kfix,
                                                          unsigned long long* __restrict__ gint,
                                                          double* __restrict__ gside) {
  constexpr bool kLinear = A == Approx::kLinear;
  extern __shared__ __align__(16) unsigned char smem[];
  double *a, *b;
  int4* buckets;
  unsigned* words = carve_grid<unsigned>(smem, T, B, a, b, buckets);
  const int W = hist32_words(T, kLinear);
  stage_grid<kLinear>(grid, T, B, buckets_g, a, b, buckets);
  for (int i = threadIdx.x; i < W * R; i += kThreads) words[i] = 0u;
  __syncthreads();

  const BlockRange range = block_range(split, len);
  const int64_t g = range.g, begin = range.begin, end = range.end;
  const bool vec = rd.vector_ok(g, begin);
  const int r = threadIdx.x & (R - 1);
  const int F = 8 * (T + 1), off3 = 4 * (T + 1);
  double* side = gside + g * F;
  const double scale = ldexp(1.0, kfix);
  for (int64_t j0 = first_run(begin); j0 < end; j0 += kRunStride) {
    Element el[kItems];
    rd.read(g, j0, end, vec, el);
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      if (el[i].wy == 0.0 && el[i].wn == 0.0) continue;  // ignored or past the end
      int s1, s3;
      segment_indices(a, b, buckets, B, T, kLinear, el[i].p, s1, s3);
      const bool hard = (el[i].wy == 1.0 && el[i].wn == 0.0) || (el[i].wy == 0.0 && el[i].wn == 1.0);
      const bool in_range = el[i].p >= 0.0 && el[i].p <= 1.0;  // false for NaN
      if (!(hard && (in_range || !kLinear))) {
        add_side<kLinear>(side, off3, s1, s3, el[i]);
        continue;
      }
      const int cls = el[i].wy == 1.0 ? 0 : 1;
      if constexpr (kLinear) {
        const unsigned long long fx = __double2ull_rn(el[i].p * scale);
        const unsigned lo = static_cast<unsigned>(fx), hi = static_cast<unsigned>(fx >> 32);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int bin = h == 0 ? s1 : s3;
          const int w = ((h * (T + 1) + bin) * 2 + cls) * 3;
          atomicAdd(&words[(w + 0) * R + r], 1u);
          const unsigned old = atomicAdd(&words[(w + 1) * R + r], lo);
          const unsigned add_hi = hi + (old + lo < old ? 1u : 0u);  // carry out of the low word
          if (add_hi != 0u) atomicAdd(&words[(w + 2) * R + r], add_hi);
        }
      } else {
        atomicAdd(&words[(s1 * 2 + cls) * R + r], 1u);
      }
    }
  }
  __syncthreads();
  // Flush: one uint64 per ghist slot f = (h * (T+1) + bin) * 4 + q, q = (y·p, y, n·p, n).
  unsigned long long* out = gint + g * F;
  for (int f = threadIdx.x; f < F; f += kThreads) {
    const int hb = f >> 2, q = f & 3, cls = q >> 1;
    unsigned long long s = 0;
    if constexpr (kLinear) {
      const int w = (hb * 2 + cls) * 3;
      for (int rr = 0; rr < R; ++rr) {
        if (q & 1) {
          s += words[(w + 0) * R + rr];
        } else {
          s += static_cast<unsigned long long>(words[(w + 1) * R + rr]) +
               (static_cast<unsigned long long>(words[(w + 2) * R + rr]) << 32);
        }
      }
    } else {
      if (hb > T && (q & 1)) {  // the s3 half holds the step counts (see hist_kernel)
        const int bin = hb - (T + 1);
        for (int rr = 0; rr < R; ++rr) s += words[(bin * 2 + cls) * R + rr];
      }
    }
    if (s != 0) atomicAdd(out + f, s);
  }
}

// ghist = side + (fixed point -> double): counts exactly, p sums scaled by 2^-kfix.
__global__ void hist32_convert_kernel(const unsigned long long* __restrict__ gint, const double* __restrict__ gside,
                                      int64_t n, int kfix, double* __restrict__ ghist) {
  const int64_t f = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (f >= n) return;
  const double v = static_cast<double>(gint[f]);
  ghist[f] = gside[f] + ((f & 1) ? v : ldexp(v, -kfix));
}

// ---- launchers ----------------------------------------------------------------------
template <Approx A, typename P, typename TT>
cudaError_t run_hist(const Problem& p, const ForwardPlan& plan, void* ws, void* out) {
  using O = acc_t<P>;
  const int T = static_cast<int>(p.T);
  int4* buckets = carve<int4>(ws, plan.workspace.buckets);
  double* ghist;
  SOFTSET_RETURN_IF_ERROR(carve_zeroed(ws, plan.workspace.ghist, p.stream, ghist));
  build_buckets_kernel<<<(plan.B + 255) / 256, 256, 0, p.stream>>>(p.grid, T, plan.B, A == Approx::kLinear, buckets);
  SOFTSET_LAUNCH_CHECK();
  SOFTSET_RETURN_IF_ERROR(launch_with_smem(hist_kernel<A, P, TT, double>, plan.blocks, plan.smem, p.stream,
                                           make_reader<P, TT>(p), p.grid, T, plan.B, plan.R, buckets, plan.split,
                                           p.group_len(), ghist));
  finalize_hist_kernel<A, O><<<static_cast<unsigned>(p.groups()), kThreads, 0, p.stream>>>(ghist, p.grid, T,
                                                                                         static_cast<O*>(out));
  SOFTSET_LAUNCH_CHECK();
  return cudaSuccess;
}

template <Approx A, typename P, typename TT>
cudaError_t run_hist32(const Problem& p, const ForwardPlan& plan, void* ws, void* out) {
  using O = acc_t<P>;
  const int T = static_cast<int>(p.T);
  const ForwardWorkspace& w = plan.workspace;
  int4* buckets = carve<int4>(ws, w.buckets);
  double* ghist = carve<double>(ws, w.ghist);
  unsigned long long* gint;
  double* side;
  SOFTSET_RETURN_IF_ERROR(carve_zeroed(ws, w.gint, p.stream, gint));
  SOFTSET_RETURN_IF_ERROR(carve_zeroed(ws, w.side, p.stream, side));
  build_buckets_kernel<<<(plan.B + 255) / 256, 256, 0, p.stream>>>(p.grid, T, plan.B, A == Approx::kLinear, buckets);
  SOFTSET_LAUNCH_CHECK();
  SOFTSET_RETURN_IF_ERROR(launch_with_smem(hist32_kernel<A, P, TT>, plan.blocks, plan.smem, p.stream,
                                           make_reader<P, TT>(p), p.grid, T, plan.B, plan.R, buckets, plan.split,
                                           p.group_len(), plan.kfix, gint, side));
  const int64_t n = p.groups() * 8 * (p.T + 1);
  hist32_convert_kernel<<<static_cast<unsigned>((n + 255) / 256), 256, 0, p.stream>>>(gint, side, n, plan.kfix, ghist);
  SOFTSET_LAUNCH_CHECK();
  finalize_hist_kernel<A, O><<<static_cast<unsigned>(p.groups()), kThreads, 0, p.stream>>>(ghist, p.grid, T,
                                                                                         static_cast<O*>(out));
  SOFTSET_LAUNCH_CHECK();
  return cudaSuccess;
}

}  // namespace
}  // namespace softset_cuda
