// Small fixed-size vectors of doubles and a chunked block-wide scan over the grid
// axis (one block per group). Fixed order: deterministic for a given block size.
#pragma once

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include "common.cuh"

namespace softset_cuda {

template <int D>
struct VecD {
  double v[D];
  __host__ __device__ VecD() {
#pragma unroll
    for (int i = 0; i < D; ++i) v[i] = 0.0;
  }
  __host__ __device__ VecD operator+(const VecD& o) const {
    VecD r;
#pragma unroll
    for (int i = 0; i < D; ++i) r.v[i] = v[i] + o.v[i];
    return r;
  }
};

struct VecSum {
  template <int D>
  __host__ __device__ VecD<D> operator()(const VecD<D>& x, const VecD<D>& y) const { return x + y; }
};

// Carries the running total from one chunk of the scan to the next (called by warp 0).
template <int D>
struct RunningPrefix {
  VecD<D> total;
  __device__ VecD<D> operator()(const VecD<D>& block_aggregate) {
    VecD<D> old = total;
    total = total + block_aggregate;
    return old;
  }
};

}  // namespace softset_cuda
