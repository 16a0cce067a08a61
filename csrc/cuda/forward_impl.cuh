// Forward kernels of softset_fast::soft_counts on CUDA (plain pointers, no torch headers).
//
// Two paths (DESIGN.md §4):
//  * histogram (linear, step; default): each sample falls in segment 1 for a suffix
//    of the grid and in segment 3 for a prefix, so a per-block shared-memory
//    float64 histogram of (Σwy·p, Σwy, Σwn·p, Σwn) by those two indices, flushed to a
//    float64 histogram per group, then one block per group scans it over T: O(N + T).
//    Float atomics make the last bits depend on scheduling (not deterministic).
//  * direct (sigmoid always; linear/step under torch.use_deterministic_algorithms
//    or when the histogram does not fit in shared memory): each thread holds 8
//    elements in registers and evaluates H̃ at every threshold; sums go through a
//    fixed butterfly, fixed warp order and a fixed chunk order: O(N·T) work, no
//    atomics, bit-identical run to run.
#pragma once

#include <algorithm>

#include "common.cuh"
#include "dispatch.cuh"
#include "scan.cuh"

namespace softset_cuda {
namespace {  // internal linkage: each forward_<dtype>.cu keeps its own copies

constexpr int kWarps = kThreads / 32;

// ---- bucket table (shared by both passes; see common.cuh) ----------------------
__global__ void build_buckets_kernel(const double* __restrict__ grid, int T, int B, bool linear,
                                     int4* __restrict__ buckets) {
  const int u = blockIdx.x * blockDim.x + threadIdx.x;
  if (u >= B) return;
  const double lo = static_cast<double>(u) / B, hi = static_cast<double>(u + 1) / B;
  const int col_a = linear ? 1 : 0;
  auto count = [&](int col, double x, bool strict) {
    int l = 0, h = T;
    while (l < h) {
      const int mid = (l + h) >> 1;
      const double v = grid[static_cast<int64_t>(mid) * kGridCols + col];
      if (strict ? (v < x) : (v <= x)) l = mid + 1; else h = mid;
    }
    return l;
  };
  int4 r;
  r.x = count(col_a, lo, false);
  r.y = count(col_a, hi, false);
  r.z = linear ? count(2, lo, true) : 0;
  r.w = linear ? count(2, hi, true) : 0;
  buckets[u] = r;
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

// ---- histogram path -------------------------------------------------------------
// Shared layout: a[T], b[T] (double), buckets[B] (int4), hist[F * R] (H), F = 8 (T + 1).
// hist index f = (h * (T + 1) + bin) * 4 + q, h = 0 for s1 bins, 1 for s3 bins,
// q = (wy·p, wy, wn·p, wn); R replicas interleaved (lane & (R-1)) spread the atomics.
inline size_t hist_smem_bytes(int64_t T, int B, int R, size_t hbytes) {
  return static_cast<size_t>(2 * T) * sizeof(double) + static_cast<size_t>(B) * sizeof(int4) +
         static_cast<size_t>(8 * (T + 1)) * R * hbytes;
}

template <Approx A, typename P, typename TT, typename H>
__global__ void __launch_bounds__(kThreads) hist_kernel(Reader<P, TT, acc_t<P>> rd, const double* __restrict__ grid,
                                                        int T, int B, int R, const int4* __restrict__ buckets_g,
                                                        Split split, int64_t len, double* __restrict__ ghist) {
  constexpr bool kLinear = A == Approx::Linear;
  extern __shared__ __align__(16) unsigned char smem[];
  double* a = reinterpret_cast<double*>(smem);
  double* b = a + T;
  int4* buckets = reinterpret_cast<int4*>(b + T);
  H* hist = reinterpret_cast<H*>(buckets + B);
  const int F = 8 * (T + 1);
  stage_grid<kLinear>(grid, T, B, buckets_g, a, b, buckets);
  for (int i = threadIdx.x; i < F * R; i += kThreads) hist[i] = H(0);
  __syncthreads();

  const BlockRange range = block_range(split, len);
  const int64_t g = range.g, begin = range.begin, end = range.end;
  const bool vec = rd.vector_ok(g, begin);
  const int r = threadIdx.x & (R - 1);
  const int off3 = 4 * (T + 1);
  for (int64_t j0 = begin + static_cast<int64_t>(threadIdx.x) * kItems; j0 < end;
       j0 += static_cast<int64_t>(kThreads) * kItems) {
    Element el[kItems];
    rd.read(g, j0, end, vec, el);
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      if (el[i].wy == 0.0 && el[i].wn == 0.0) continue;  // ignored, zero weight or past the end
      int s1, s3;
      segment_indices(a, b, buckets, B, T, kLinear, el[i].p, s1, s3);
      if constexpr (kLinear) {
        const int f1 = s1 * 4, f3 = off3 + s3 * 4;
        if (el[i].wy != 0.0) {
          const H yp = static_cast<H>(el[i].wy * el[i].p), y = static_cast<H>(el[i].wy);
          atomicAdd(&hist[(f1 + 0) * R + r], yp);
          atomicAdd(&hist[(f1 + 1) * R + r], y);
          atomicAdd(&hist[(f3 + 0) * R + r], yp);
          atomicAdd(&hist[(f3 + 1) * R + r], y);
        }
        if (el[i].wn != 0.0) {
          const H np = static_cast<H>(el[i].wn * el[i].p), n = static_cast<H>(el[i].wn);
          atomicAdd(&hist[(f1 + 2) * R + r], np);
          atomicAdd(&hist[(f1 + 3) * R + r], n);
          atomicAdd(&hist[(f3 + 2) * R + r], np);
          atomicAdd(&hist[(f3 + 3) * R + r], n);
        }
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
  constexpr bool kLinear = A == Approx::Linear;
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

// ---- direct path ------------------------------------------------------------------

constexpr int kRuns = 1;              // runs of kItems a thread holds per tile
constexpr int kHeld = kRuns * kItems;  // elements per thread in registers
constexpr int kTChunk = 32;           // thresholds combined across warps at once

template <Approx A, typename S>
__device__ __forceinline__ double heaviside(double p, S ps, const double* c, S tau_s, S k_s) {
  if constexpr (A == Approx::Linear) {
    return p < c[1] ? c[3] * p : (p > c[2] ? c[5] * p + c[7] : c[4] * p + c[6]);
  } else if constexpr (A == Approx::Step) {
    return p >= c[0] ? 1.0 : 0.0;
  } else {
    return static_cast<double>(S(1) / (S(1) + exp(-k_s * (ps - tau_s))));
  }
}

// partial [blocks, T, 2] (Σwy·H̃, Σwn·H̃) and pq [blocks, 2] (Σwy, Σwn); block = g * chunks + chunk.
template <Approx A, typename P, typename TT>
__global__ void __launch_bounds__(kThreads) direct_kernel(Reader<P, TT, acc_t<P>> rd, const double* __restrict__ grid,
                                                          int T, double k, Split split, int64_t len,
                                                          double* __restrict__ partial, double* __restrict__ pq) {
  using S = acc_t<P>;
  using Reduce = cub::BlockReduce<double, kThreads>;
  __shared__ double warp_part[kWarps][kTChunk][2];
  __shared__ typename Reduce::TempStorage reduce_temp;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const BlockRange range = block_range(split, len);
  const int64_t g = range.g, begin = range.begin, end = range.end;
  const bool vec = rd.vector_ok(g, begin);
  double* my_partial = partial + static_cast<int64_t>(blockIdx.x) * T * 2;
  const S k_s = static_cast<S>(k);
  double acc_p = 0.0, acc_q = 0.0;

  for (int64_t tile = begin; tile < end; tile += static_cast<int64_t>(kThreads) * kHeld) {
    S p[kHeld], wy[kHeld], wn[kHeld];
    double pd[kHeld];
#pragma unroll
    for (int run = 0; run < kRuns; ++run) {
      Element el[kItems];
      rd.read(g, tile + (static_cast<int64_t>(run) * kThreads + threadIdx.x) * kItems, end, vec, el);
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        const int h = run * kItems + i;
        pd[h] = el[i].p;
        p[h] = static_cast<S>(el[i].p);
        wy[h] = static_cast<S>(el[i].wy);
        wn[h] = static_cast<S>(el[i].wn);
        acc_p += el[i].wy;
        acc_q += el[i].wn;
      }
    }
    for (int tc = 0; tc < T; tc += kTChunk) {
      const int count = min(kTChunk, T - tc);
      for (int tt = 0; tt < count; ++tt) {
        const double* c = grid + static_cast<int64_t>(tc + tt) * kGridCols;
        const S tau_s = static_cast<S>(c[0]);
        double s1 = 0.0, s0 = 0.0;
#pragma unroll
        for (int h = 0; h < kHeld; ++h) {
          const double hv = heaviside<A, S>(pd[h], p[h], c, tau_s, k_s);
          s1 += static_cast<double>(wy[h]) * hv;
          s0 += static_cast<double>(wn[h]) * hv;
        }
        s1 = warp_sum(s1);
        s0 = warp_sum(s0);
        if (lane == 0) {
          warp_part[warp][tt][0] = s1;
          warp_part[warp][tt][1] = s0;
        }
      }
      __syncthreads();
      for (int x = threadIdx.x; x < 2 * count; x += kThreads) {
        const int tt = x >> 1, v = x & 1;
        double s = 0.0;
        for (int w = 0; w < kWarps; ++w) s += warp_part[w][tt][v];
        my_partial[(tc + tt) * 2 + v] += s;  // this block owns its row: no race
      }
      __syncthreads();
    }
  }
  const double tot_p = Reduce(reduce_temp).Sum(acc_p);
  __syncthreads();
  const double tot_q = Reduce(reduce_temp).Sum(acc_q);
  if (threadIdx.x == 0) {
    pq[blockIdx.x * 2 + 0] = tot_p;
    pq[blockIdx.x * 2 + 1] = tot_q;
  }
}

// ---- 32-bit integer histogram (hard targets, no weight) -------------------------------
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
// histogram instead (global float64 atomics), as the default path would.
// Shared words per replica: linear ((h * (T+1) + bin) * 2 + cls) * 3 + {count, lo, hi},
// h = 0 (s1) / 1 (s3), cls = 0 (y = 1) / 1 (y = 0); step (bin * 2 + cls), counts only.
__host__ __device__ inline int hist32_words(int64_t T, bool linear) { return static_cast<int>((linear ? 12 : 2) * (T + 1)); }
inline size_t hist32_smem_bytes(int64_t T, int B, int R, bool linear) {
  return static_cast<size_t>(2 * T) * sizeof(double) + static_cast<size_t>(B) * sizeof(int4) +
         static_cast<size_t>(hist32_words(T, linear)) * R * sizeof(unsigned);
}

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
  constexpr bool kLinear = A == Approx::Linear;
  extern __shared__ __align__(16) unsigned char smem[];
  double* a = reinterpret_cast<double*>(smem);
  double* b = a + T;
  int4* buckets = reinterpret_cast<int4*>(b + T);
  unsigned* words = reinterpret_cast<unsigned*>(buckets + B);
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
  for (int64_t j0 = begin + static_cast<int64_t>(threadIdx.x) * kItems; j0 < end;
       j0 += static_cast<int64_t>(kThreads) * kItems) {
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

// One thread per (group, threshold): sums the chunks in order -> (tp, fn, fp, tn).
template <typename O>
__global__ void combine_kernel(const double* __restrict__ partial, const double* __restrict__ pq, int64_t groups,
                               int64_t chunks, int T, O* __restrict__ out) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= groups * T) return;
  const int64_t g = idx / T;
  const int t = static_cast<int>(idx - g * T);
  double s1 = 0.0, s0 = 0.0, tp = 0.0, tq = 0.0;
#pragma unroll 8  // loads in flight; the sum order stays fixed
  for (int64_t q = 0; q < chunks; ++q) {
    const int64_t blk = g * chunks + q;
    s1 += partial[(blk * T + t) * 2 + 0];
    s0 += partial[(blk * T + t) * 2 + 1];
    tp += pq[blk * 2 + 0];
    tq += pq[blk * 2 + 1];
  }
  O* o = out + idx * 4;
  o[0] = static_cast<O>(s1);
  o[1] = static_cast<O>(tp - s1);
  o[2] = static_cast<O>(s0);
  o[3] = static_cast<O>(tq - s0);
}

// ---- planning -----------------------------------------------------------------------
struct Plan {
  bool use_hist = false;
  bool hist32 = false;  // the integer histogram (use_hist is then true as well)
  int kfix = 0;         // fixed-point bits of p in hist32
  int B = 0, R = 1, blocks_per_sm = 4;
  size_t smem = 0;
  Split split{1, kItems};
};

inline size_t align_up(size_t x) { return (x + 255) / 256 * 256; }

inline Plan make_plan(const Problem& p, bool deterministic) {
  Plan plan;
  const int64_t groups = p.groups(), len = p.group_len();
  if (p.approx != Approx::Sigmoid && !deterministic) {
    // float64 bins for every dtype: float32 bins round each bin by ~1e-7 relative, and the
    // segment-2 terms m2·Σp + c2·Σ1 (m2, |c2| ~ T) amplify that by T (1e-3 absolute at T = 1000).
    const size_t hbytes = sizeof(double);
    plan.B = bucket_count(p.T);
    const size_t fits = static_cast<size_t>(p.max_smem_optin);
    // Replicas R (halved from 32) while they fit in ~100 KB of shared memory and cost no
    // more than ~4 zeroings per element (positions per block if ~4 blocks per SM shared the
    // groups); then the blocks per SM that memory allows, and the split.
    const size_t budget = std::min<size_t>(fits, 100 * 1024);
    const int64_t per_block_hint = std::max<int64_t>(len / std::max<int64_t>(1, (p.sm_count * 4) / std::max<int64_t>(1, groups)), 1);
    auto finish = [&](int64_t words_per_replica, auto smem_bytes) {
      int R = 32;
      while (R > 1 && (smem_bytes(R) > budget || words_per_replica * R > 4 * per_block_hint)) R /= 2;
      plan.use_hist = true;
      plan.R = R;
      plan.smem = smem_bytes(R);
      plan.blocks_per_sm = static_cast<int>(std::max<size_t>(1, std::min<size_t>(4, (228 * 1024) / (plan.smem + 1024))));
      plan.split = make_split(groups, len, p.sm_count, plan.blocks_per_sm, 8192);
      return plan;
    };
    // hist32: hard targets (integers, bool or class indices) and no weight; <= 2^31 elements
    // per group so that p keeps >= 31 fixed-point bits.
    const bool linear = p.approx == Approx::Linear;
    const bool hard_target = p.multiclass || p.target_dtype == DType::Bool || p.target_dtype == DType::UInt8 ||
                             p.target_dtype == DType::Int32 || p.target_dtype == DType::Int64;
    if (hard_target && p.weight == nullptr && len <= (int64_t(1) << 31) &&
        hist32_smem_bytes(p.T, plan.B, 1, linear) <= fits) {
      plan.hist32 = true;
      int bits = 0;
      while ((int64_t(1) << bits) < len) ++bits;
      plan.kfix = 62 - bits;
      return finish(hist32_words(p.T, linear), [&](int R) { return hist32_smem_bytes(p.T, plan.B, R, linear); });
    }
    if (hist_smem_bytes(p.T, plan.B, 1, hbytes) <= fits) {
      return finish(8 * (p.T + 1), [&](int R) { return hist_smem_bytes(p.T, plan.B, R, hbytes); });
    }
  }
  plan.split = make_split(groups, len, p.sm_count, 4, 8192);
  return plan;
}

// Workspace layout of the integer histogram: buckets, ghist (double), gint (uint64), side (double).
struct Hist32Buffers {
  int4* buckets;
  double* ghist;
  unsigned long long* gint;
  double* side;
};
inline size_t hist32_layout(const Problem& p, const Plan& plan, unsigned char* ws, Hist32Buffers* out) {
  const size_t n = static_cast<size_t>(p.groups()) * 8 * (p.T + 1);
  const size_t o1 = align_up(sizeof(int4) * plan.B);
  const size_t o2 = o1 + align_up(sizeof(double) * n);
  const size_t o3 = o2 + align_up(sizeof(unsigned long long) * n);
  if (out != nullptr) {
    out->buckets = reinterpret_cast<int4*>(ws);
    out->ghist = reinterpret_cast<double*>(ws + o1);
    out->gint = reinterpret_cast<unsigned long long*>(ws + o2);
    out->side = reinterpret_cast<double*>(ws + o3);
  }
  return o3 + sizeof(double) * n;
}

template <Approx A, typename P, typename TT>
cudaError_t run_forward(const Problem& p, const Plan& plan, unsigned char* ws, void* out) {
  using O = acc_t<P>;
  const int T = static_cast<int>(p.T);
  const int64_t groups = p.groups(), len = p.group_len();
  const int64_t blocks = groups * plan.split.chunks;
  auto rd = make_reader<P, TT>(p);
  if (plan.hist32) {
    if constexpr (A != Approx::Sigmoid && std::is_integral<TT>::value) {
      Hist32Buffers buf;
      hist32_layout(p, plan, ws, &buf);
      const int64_t n = groups * 8 * (p.T + 1);
      SOFTSET_RETURN_IF_ERROR(cudaMemsetAsync(buf.gint, 0, sizeof(unsigned long long) * n, p.stream));
      SOFTSET_RETURN_IF_ERROR(cudaMemsetAsync(buf.side, 0, sizeof(double) * n, p.stream));
      build_buckets_kernel<<<(plan.B + 255) / 256, 256, 0, p.stream>>>(p.grid, T, plan.B, A == Approx::Linear,
                                                                         buf.buckets);
      SOFTSET_LAUNCH_CHECK();
      auto kernel = hist32_kernel<A, P, TT>;
      SOFTSET_RETURN_IF_ERROR(
          cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(plan.smem)));
      kernel<<<static_cast<unsigned>(blocks), kThreads, plan.smem, p.stream>>>(
          rd, p.grid, T, plan.B, plan.R, buf.buckets, plan.split, len, plan.kfix, buf.gint, buf.side);
      SOFTSET_LAUNCH_CHECK();
      hist32_convert_kernel<<<static_cast<unsigned>((n + 255) / 256), 256, 0, p.stream>>>(buf.gint, buf.side, n,
                                                                                          plan.kfix, buf.ghist);
      SOFTSET_LAUNCH_CHECK();
      finalize_hist_kernel<A, O><<<static_cast<unsigned>(groups), kThreads, 0, p.stream>>>(buf.ghist, p.grid, T,
                                                                                         static_cast<O*>(out));
      SOFTSET_LAUNCH_CHECK();
      return cudaSuccess;
    }
    return cudaErrorInvalidValue;  // the planner picks hist32 only for hard targets and linear/step
  }
  if (plan.use_hist) {
    if constexpr (A != Approx::Sigmoid) {
      int4* buckets = reinterpret_cast<int4*>(ws);
      double* ghist = reinterpret_cast<double*>(ws + align_up(sizeof(int4) * plan.B));
      SOFTSET_RETURN_IF_ERROR(cudaMemsetAsync(ghist, 0, sizeof(double) * groups * 8 * (p.T + 1), p.stream));
      build_buckets_kernel<<<(plan.B + 255) / 256, 256, 0, p.stream>>>(p.grid, T, plan.B, A == Approx::Linear, buckets);
      SOFTSET_LAUNCH_CHECK();
      auto kernel = hist_kernel<A, P, TT, double>;
      SOFTSET_RETURN_IF_ERROR(
          cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(plan.smem)));
      kernel<<<static_cast<unsigned>(blocks), kThreads, plan.smem, p.stream>>>(rd, p.grid, T, plan.B, plan.R, buckets,
                                                                              plan.split, len, ghist);
      SOFTSET_LAUNCH_CHECK();
      finalize_hist_kernel<A, O><<<static_cast<unsigned>(groups), kThreads, 0, p.stream>>>(ghist, p.grid, T,
                                                                                         static_cast<O*>(out));
      SOFTSET_LAUNCH_CHECK();
      return cudaSuccess;
    }
  }
  double* partial = reinterpret_cast<double*>(ws);
  double* pq = reinterpret_cast<double*>(ws + align_up(sizeof(double) * blocks * p.T * 2));
  SOFTSET_RETURN_IF_ERROR(cudaMemsetAsync(partial, 0, sizeof(double) * blocks * p.T * 2, p.stream));
  direct_kernel<A, P, TT><<<static_cast<unsigned>(blocks), kThreads, 0, p.stream>>>(rd, p.grid, T, p.k, plan.split,
                                                                                     len, partial, pq);
  SOFTSET_LAUNCH_CHECK();
  const int64_t items = groups * p.T;
  combine_kernel<O><<<static_cast<unsigned>((items + 255) / 256), 256, 0, p.stream>>>(
      partial, pq, groups, plan.split.chunks, T, static_cast<O*>(out));
  SOFTSET_LAUNCH_CHECK();
  return cudaSuccess;
}

// Forward for one preds type (instantiated in forward_<dtype>.cu, compiled in parallel).
template <typename P>
cudaError_t forward_for(const Problem& p, bool deterministic, void* workspace, void* out) {
  const Plan plan = make_plan(p, deterministic);
  unsigned char* ws = static_cast<unsigned char*>(workspace);
  return dispatch_types(p.preds_dtype, p.target_dtype, [&](auto, auto ttag) -> cudaError_t {
    using TT = typename decltype(ttag)::type;
    switch (p.approx) {
      case Approx::Linear: return run_forward<Approx::Linear, P, TT>(p, plan, ws, out);
      case Approx::Step: return run_forward<Approx::Step, P, TT>(p, plan, ws, out);
      case Approx::Sigmoid: return run_forward<Approx::Sigmoid, P, TT>(p, plan, ws, out);
    }
    return cudaErrorInvalidValue;
  });
}

}  // namespace

cudaError_t forward_half(const Problem& p, bool deterministic, void* workspace, void* out);
cudaError_t forward_bfloat16(const Problem& p, bool deterministic, void* workspace, void* out);
cudaError_t forward_float(const Problem& p, bool deterministic, void* workspace, void* out);
cudaError_t forward_double(const Problem& p, bool deterministic, void* workspace, void* out);

}  // namespace softset_cuda
