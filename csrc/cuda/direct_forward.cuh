// Direct forward (sigmoid always; linear/step in deterministic mode or when no
// histogram fits in shared memory): each thread holds 8 elements in registers and
// evaluates H̃ at every threshold; sums go through a fixed butterfly, fixed warp order and
// a fixed chunk order: O(N·T) work, no atomics, bit-identical run to run.
#pragma once

#include <cuda_runtime.h>

#include <cub/block/block_reduce.cuh>

#include "common.cuh"
#include "dispatch.cuh"
#include "plan.h"

namespace softset_cuda {
namespace {  // internal linkage: each forward_<dtype>.cu keeps its own copies

constexpr int kWarps = kThreads / 32;

constexpr int kRuns = 1;              // runs of kItems a thread holds per tile
constexpr int kHeld = kRuns * kItems;  // elements per thread in registers
constexpr int kTChunk = 32;           // thresholds combined across warps at once

template <Approx A, typename S>
__device__ __forceinline__ double heaviside(double p, S ps, const double* c, S tau_s, S k_s) {
  if constexpr (A == Approx::kLinear) {
    return p < c[1] ? c[3] * p : (p > c[2] ? c[5] * p + c[7] : c[4] * p + c[6]);
  } else if constexpr (A == Approx::kStep) {
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

template <Approx A, typename P, typename TT>
cudaError_t run_direct(const Problem& p, const ForwardPlan& plan, void* ws, void* out) {
  using O = acc_t<P>;
  const int T = static_cast<int>(p.T);
  double* partial;
  SOFTSET_RETURN_IF_ERROR(carve_zeroed(ws, plan.workspace.partial, p.stream, partial));
  double* pq = carve<double>(ws, plan.workspace.pq);
  direct_kernel<A, P, TT><<<static_cast<unsigned>(plan.blocks), kThreads, 0, p.stream>>>(
      make_reader<P, TT>(p), p.grid, T, p.k, plan.split, p.group_len(), partial, pq);
  SOFTSET_LAUNCH_CHECK();
  const int64_t items = p.groups() * p.T;
  combine_kernel<O><<<static_cast<unsigned>((items + 255) / 256), 256, 0, p.stream>>>(
      partial, pq, p.groups(), plan.split.chunks, T, static_cast<O*>(out));
  SOFTSET_LAUNCH_CHECK();
  return cudaSuccess;
}

}  // namespace
}  // namespace softset_cuda
