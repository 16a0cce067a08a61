// Backward kernels of softset_fast::soft_counts on CUDA (plain pointers, no torch headers).
//
// grad_preds[i] = w_i · Σ_t H̃'(p_i, τ_t) · (y_i · D1[t] + (1 − y_i) · D0[t]),
// D1 = g_tp − g_fn, D0 = g_fp − g_tn (per group). No atomics: deterministic.
//  * linear: with exclusive prefix sums PMs[k] = Σ_{t<k} m_s(t)·D[t] (s = 1, 2, 3) the
//    sum over t is U[s1] + V[s3], U[k] = PM1[T] − PM1[k] + PM2[k], V[k] = PM3[k] − PM2[k]
//    (segment 1 for t >= s1, segment 2 for s3 <= t < s1, segment 3 for t < s3).
//    One block per group builds U, V; then two look-ups per element: O(N + T).
//  * sigmoid: H̃' = k·σ(1 − σ), a loop over the grid per element: O(N·T) arithmetic.
//  * step: zero gradient (backward.cu).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>

#include "common.cuh"
#include "dispatch.cuh"
#include "grid_lookup.cuh"
#include "plan.h"
#include "scan.cuh"

namespace softset_cuda {
namespace {  // internal linkage: each backward_<dtype>.cu keeps its own copies

// Buckets (grid_lookup.cuh) plus contiguous copies of a and b for the element kernel.
__global__ void linear_grid_kernel(const double* __restrict__ grid, int T, int B, int4* __restrict__ buckets,
                                   double* __restrict__ a, double* __restrict__ b) {
  const int u = blockIdx.x * blockDim.x + threadIdx.x;
  if (u < T) {
    a[u] = grid[static_cast<int64_t>(u) * kGridCols + 1];
    b[u] = grid[static_cast<int64_t>(u) * kGridCols + 2];
  }
  if (u >= B) return;
  buckets[u] = bucket_entry(grid, T, B, u, true);
}

// One block per group: U, V [groups, T + 1] as double2 (D1 part, D0 part).
__global__ void __launch_bounds__(kThreads) linear_tables_kernel(const double* __restrict__ grad,
                                                                 const double* __restrict__ grid, int T,
                                                                 double2* __restrict__ U, double2* __restrict__ V) {
  using Vec6 = VecD<6>;
  using Scan = cub::BlockScan<Vec6, kThreads>;
  __shared__ typename Scan::TempStorage temp;
  __shared__ double total1[2];
  const int64_t g = blockIdx.x;
  const double* gr = grad + g * T * 4;
  double2* u_out = U + g * (T + 1);
  double2* v_out = V + g * (T + 1);
  RunningPrefix<6> prefix;
  for (int base = 0; base <= T; base += kThreads) {
    const int k = base + threadIdx.x;
    Vec6 x;
    if (k < T) {
      const double* c = grid + static_cast<int64_t>(k) * kGridCols;
      const double d1 = gr[k * 4 + 0] - gr[k * 4 + 1], d0 = gr[k * 4 + 2] - gr[k * 4 + 3];
      x.v[0] = c[3] * d1; x.v[1] = c[4] * d1; x.v[2] = c[5] * d1;
      x.v[3] = c[3] * d0; x.v[4] = c[4] * d0; x.v[5] = c[5] * d0;
    }
    Vec6 ex;
    __syncthreads();  // temp storage reuse
    Scan(temp).ExclusiveScan(x, ex, VecSum(), prefix);
    if (k <= T) {
      u_out[k] = make_double2(ex.v[1] - ex.v[0], ex.v[4] - ex.v[3]);
      v_out[k] = make_double2(ex.v[2] - ex.v[1], ex.v[5] - ex.v[4]);
    }
    if (k == T) {  // the exclusive sum at T is the whole PM1
      total1[0] = ex.v[0];
      total1[1] = ex.v[3];
    }
  }
  __syncthreads();
  for (int k = threadIdx.x; k <= T; k += kThreads) {
    const double2 u = u_out[k];
    u_out[k] = make_double2(u.x + total1[0], u.y + total1[1]);
  }
}

// Writes kItems gradients for positions j0.. of group g (vector store when allowed).
template <typename P>
__device__ __forceinline__ void write_run(P* out, const Mapping& map, int64_t g, int64_t j0, int64_t len, bool vec,
                                          const double (&v)[kItems]) {
  if (vec && j0 + kItems <= len) {
    int64_t e, ti;
    map.offsets(g, j0, e, ti);
    P pv[kItems];
#pragma unroll
    for (int i = 0; i < kItems; ++i) pv[i] = from_double<P>(v[i]);
    constexpr int kBytes = kItems * sizeof(P);
    if constexpr (kBytes >= 16) {
      uint4 words[kBytes / 16];
      memcpy(words, pv, kBytes);
      uint4* dst = reinterpret_cast<uint4*>(out + e);
#pragma unroll
      for (int i = 0; i < kBytes / 16; ++i) dst[i] = words[i];
    } else {
      uint2 word;
      memcpy(&word, pv, kBytes);
      *reinterpret_cast<uint2*>(out + e) = word;
    }
    return;
  }
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    if (j0 + i < len) {
      int64_t e, ti;
      map.offsets(g, j0 + i, e, ti);
      out[e] = from_double<P>(v[i]);
    }
  }
}

// Shared layout (backward_linear_smem_bytes): a[T], b[T] (double), U[T+1], V[T+1] (double2), buckets[B] (int4).
template <typename P, typename TT>
__global__ void __launch_bounds__(kThreads) linear_backward_kernel(
    Reader<P, TT, acc_t<P>> rd, int T, int B, bool use_smem, const int4* __restrict__ buckets_g,
    const double* __restrict__ a_g, const double* __restrict__ b_g, const double2* __restrict__ U_g,
    const double2* __restrict__ V_g, Split split, int64_t len, P* __restrict__ out) {
  extern __shared__ __align__(16) unsigned char smem[];
  const BlockRange range = block_range(split, len);
  const int64_t g = range.g, begin = range.begin, end = range.end;
  const double2* Ug = U_g + g * (T + 1);
  const double2* Vg = V_g + g * (T + 1);
  // Generic pointers: shared copies when they fit, the global tables otherwise.
  const double *a = a_g, *b = b_g;
  const double2 *U = Ug, *V = Vg;
  const int4* buckets = buckets_g;
  if (use_smem) {
    double* sa = reinterpret_cast<double*>(smem);
    double* sb = sa + T;
    double2* sU = reinterpret_cast<double2*>(sb + T);
    double2* sV = sU + (T + 1);
    int4* sbk = reinterpret_cast<int4*>(sV + (T + 1));
    for (int i = threadIdx.x; i < T; i += kThreads) { sa[i] = a_g[i]; sb[i] = b_g[i]; }
    for (int i = threadIdx.x; i <= T; i += kThreads) { sU[i] = Ug[i]; sV[i] = Vg[i]; }
    for (int i = threadIdx.x; i < B; i += kThreads) sbk[i] = buckets_g[i];
    __syncthreads();
    a = sa; b = sb; U = sU; V = sV; buckets = sbk;
  }
  int64_t e0, ti0;
  rd.map.offsets(g, begin, e0, ti0);
  const bool vec = rd.vector_ok(g, begin) && aligned_run(out + e0);  // the stores need out aligned too
  for (int64_t j0 = first_run(begin); j0 < end; j0 += kRunStride) {
    Element el[kItems];
    rd.read(g, j0, end, vec, el);
    double v[kItems];
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      v[i] = 0.0;
      if (el[i].wy == 0.0 && el[i].wn == 0.0) continue;
      int s1, s3;
      segment_indices(a, b, buckets, B, T, true, el[i].p, s1, s3);
      const double2 u = U[s1], w = V[s3];
      v[i] = el[i].wy * (u.x + w.x) + el[i].wn * (u.y + w.y);
    }
    write_run(out, rd.map, g, j0, end, vec, v);
  }
}

// Per group and threshold: (tau, D1, D0, unused) in the compute type S.
template <typename S>
__global__ void sigmoid_tables_kernel(const double* __restrict__ grad, const double* __restrict__ grid, int64_t groups,
                                      int T, S* __restrict__ table) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= groups * T) return;
  const int t = static_cast<int>(idx % T);
  const double* gr = grad + idx * 4;
  table[idx * 4 + 0] = static_cast<S>(grid[static_cast<int64_t>(t) * kGridCols]);
  table[idx * 4 + 1] = static_cast<S>(gr[0] - gr[1]);
  table[idx * 4 + 2] = static_cast<S>(gr[2] - gr[3]);
  table[idx * 4 + 3] = S(0);
}

template <typename P, typename TT>
__global__ void __launch_bounds__(kThreads) sigmoid_backward_kernel(Reader<P, TT, acc_t<P>> rd, int T, double k,
                                                                    bool use_smem, const acc_t<P>* __restrict__ table_g,
                                                                    Split split, int64_t len, P* __restrict__ out) {
  using S = acc_t<P>;
  extern __shared__ __align__(16) unsigned char smem[];
  const BlockRange range = block_range(split, len);
  const int64_t g = range.g, begin = range.begin, end = range.end;
  const S* table = table_g + g * T * 4;
  if (use_smem) {
    S* st = reinterpret_cast<S*>(smem);
    for (int i = threadIdx.x; i < 4 * T; i += kThreads) st[i] = table[i];
    __syncthreads();
    table = st;
  }
  const S k_s = static_cast<S>(k);
  int64_t e0, ti0;
  rd.map.offsets(g, begin, e0, ti0);
  const bool vec = rd.vector_ok(g, begin) && aligned_run(out + e0);  // the stores need out aligned too
  for (int64_t j0 = first_run(begin); j0 < end; j0 += kRunStride) {
    Element el[kItems];
    rd.read(g, j0, end, vec, el);
    S p[kItems];
    double d1[kItems], d0[kItems];  // float64 sums: the terms can cancel
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      p[i] = static_cast<S>(el[i].p);
      d1[i] = 0.0;
      d0[i] = 0.0;
    }
    for (int t = 0; t < T; ++t) {
      const S tau = table[t * 4 + 0], g1 = table[t * 4 + 1], g0 = table[t * 4 + 2];
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        const S s = S(1) / (S(1) + exp(-k_s * (p[i] - tau)));
        const S slope = k_s * s * (S(1) - s);
        d1[i] += static_cast<double>(slope * g1);
        d0[i] += static_cast<double>(slope * g0);
      }
    }
    double v[kItems];
#pragma unroll
    for (int i = 0; i < kItems; ++i) v[i] = el[i].wy * d1[i] + el[i].wn * d0[i];
    write_run(out, rd.map, g, j0, end, vec, v);
  }
}

template <typename P, typename TT>
cudaError_t run_backward(const Problem& p, const BackwardPlan& plan, const double* grad, void* ws, void* grad_preds) {
  using S = acc_t<P>;
  const int T = static_cast<int>(p.T);
  const int64_t groups = p.groups(), len = p.group_len();
  const BackwardWorkspace& w = plan.workspace;
  auto rd = make_reader<P, TT>(p);
  P* out = static_cast<P*>(grad_preds);
  const size_t smem = plan.use_smem ? plan.smem : 0;  // the element kernel's tables, when they fit
  if (p.approx == Approx::kLinear) {
    int4* buckets = carve<int4>(ws, w.buckets);
    double* a = carve<double>(ws, w.ab);
    double* b = a + p.T;
    double2* U = carve<double2>(ws, w.uv);
    double2* V = U + groups * (p.T + 1);
    const int n = std::max<int>(plan.B, T);
    linear_grid_kernel<<<(n + 255) / 256, 256, 0, p.stream>>>(p.grid, T, plan.B, buckets, a, b);
    SOFTSET_LAUNCH_CHECK();
    linear_tables_kernel<<<static_cast<unsigned>(groups), kThreads, 0, p.stream>>>(grad, p.grid, T, U, V);
    SOFTSET_LAUNCH_CHECK();
    return launch_with_smem(linear_backward_kernel<P, TT>, plan.blocks, smem, p.stream, rd, T, plan.B, plan.use_smem,
                            buckets, a, b, U, V, plan.split, len, out);
  }
  // sigmoid
  S* table = carve<S>(ws, w.table);
  const int64_t items = groups * p.T;
  sigmoid_tables_kernel<S><<<static_cast<unsigned>((items + 255) / 256), 256, 0, p.stream>>>(grad, p.grid, groups, T, table);
  SOFTSET_LAUNCH_CHECK();
  return launch_with_smem(sigmoid_backward_kernel<P, TT>, plan.blocks, smem, p.stream, rd, T, p.k, plan.use_smem, table,
                          plan.split, len, out);
}

// The backward for one preds type (linear or sigmoid; backward.cu handles step).
// Included by each generated backward_<dtype>.cu (instances.py).
template <typename P>
cudaError_t launch_backward(const Problem& p, const BackwardPlan& plan, const double* grad, void* ws,
                            void* grad_preds) {
  return dispatch_target(p.target_dtype, [&](auto ttag) -> cudaError_t {
    using TT = typename decltype(ttag)::type;
    return run_backward<P, TT>(p, plan, grad, ws, grad_preds);
  });
}

}  // namespace
}  // namespace softset_cuda
