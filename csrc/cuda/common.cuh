// Device helpers shared by the forward and backward kernels (no torch headers).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "dispatch.cuh"
#include "plan.h"

namespace softset_cuda {

#define SOFTSET_RETURN_IF_ERROR(expr)      \
  do {                                     \
    cudaError_t err_ = (expr);             \
    if (err_ != cudaSuccess) return err_;  \
  } while (0)
// A launch check after every kernel.
#define SOFTSET_LAUNCH_CHECK() SOFTSET_RETURN_IF_ERROR(cudaGetLastError())

// Launches a streaming kernel on `blocks` blocks of kThreads with smem bytes of dynamic shared
// memory, raising the kernel's limit to smem first (needed above 48 KiB) when it uses any.
template <typename... Params, typename... Args>
cudaError_t launch_with_smem(void (*kernel)(Params...), int64_t blocks, size_t smem, cudaStream_t stream,
                             const Args&... args) {
  if (smem > 0)
    SOFTSET_RETURN_IF_ERROR(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  kernel<<<static_cast<unsigned>(blocks), kThreads, smem, stream>>>(args...);
  return cudaGetLastError();
}

// A workspace buffer the kernels accumulate into: carved (plan.h) and zeroed on the stream.
template <typename T>
cudaError_t carve_zeroed(void* workspace, const Region& r, cudaStream_t stream, T*& out) {
  out = carve<T>(workspace, r);
  return cudaMemsetAsync(out, 0, r.bytes, stream);
}

// ---- element conversions ---------------------------------------------------
__device__ __forceinline__ double to_double(bool v) { return v ? 1.0 : 0.0; }
__device__ __forceinline__ double to_double(uint8_t v) { return static_cast<double>(v); }
__device__ __forceinline__ double to_double(int32_t v) { return static_cast<double>(v); }
__device__ __forceinline__ double to_double(int64_t v) { return static_cast<double>(v); }
__device__ __forceinline__ double to_double(__half v) { return static_cast<double>(__half2float(v)); }
__device__ __forceinline__ double to_double(__nv_bfloat16 v) { return static_cast<double>(__bfloat162float(v)); }
__device__ __forceinline__ double to_double(float v) { return static_cast<double>(v); }
__device__ __forceinline__ double to_double(double v) { return v; }

template <typename T>
__device__ __forceinline__ T from_double(double v) { return static_cast<T>(v); }
template <>
__device__ __forceinline__ __half from_double<__half>(double v) { return __double2half(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_double<__nv_bfloat16>(double v) { return __double2bfloat16(v); }

// Integers compare exactly as int64 (class indices, ignore_index); floats as double.
template <typename T>
__device__ __forceinline__ bool equals_int(T v, int64_t x) {
  if constexpr (std::is_integral<T>::value) {
    return static_cast<int64_t>(v) == x;
  } else {
    return to_double(v) == static_cast<double>(x);
  }
}
// bool tensors hold 0/1 bytes; read them as uint8 so any non-zero byte is "true".
template <typename T> struct Storage { using type = T; };
template <> struct Storage<bool> { using type = uint8_t; };

// ---- element mapping --------------------------------------------------------
// Group g, position j in [0, group_len): preds offset e and target/weight offset ti.
struct Mapping {
  int64_t C, L;
  bool samplewise, multiclass;

  __device__ __forceinline__ int64_t cls(int64_t g) const { return samplewise ? g % C : g; }
  __device__ __forceinline__ void offsets(int64_t g, int64_t j, int64_t& e, int64_t& ti) const {
    if (samplewise) {
      e = g * L + j;
      ti = multiclass ? (g / C) * L + j : e;
    } else if (C == 1) {
      e = j;
      ti = j;
    } else {
      const int64_t n = j / L, l = j - n * L;
      e = (n * C + g) * L + l;
      ti = multiclass ? j : e;
    }
  }
  // kItems consecutive j (starting at a multiple of kItems) are contiguous in memory.
  __device__ __forceinline__ bool runs_contiguous() const { return samplewise || C == 1 || L % kItems == 0; }
};

// kItems consecutive elements with one or more vector loads (caller checks alignment).
template <typename T>
__device__ __forceinline__ void load_run(const T* ptr, T (&out)[kItems]) {
  constexpr int kBytes = kItems * sizeof(T);
  if constexpr (kBytes >= 16) {
    const uint4* src = reinterpret_cast<const uint4*>(ptr);
    uint4 words[kBytes / 16];
#pragma unroll
    for (int i = 0; i < kBytes / 16; ++i) words[i] = __ldg(src + i);
    memcpy(out, words, kBytes);
  } else {
    static_assert(kBytes == 8, "unexpected element size");
    const uint2 word = __ldg(reinterpret_cast<const uint2*>(ptr));
    memcpy(out, &word, kBytes);
  }
}

template <typename T>
__device__ __forceinline__ bool aligned_run(const T* ptr) {
  constexpr int kBytes = kItems * sizeof(T) >= 16 ? 16 : kItems * sizeof(T);
  return reinterpret_cast<uintptr_t>(ptr) % kBytes == 0;
}

// What one element contributes: p exactly upcast to double, wy = w*y, wn = w*(1-y).
struct Element {
  double p, wy, wn;
};

// Reads the elements of group g at positions j0 .. j0+kItems-1 (those < len are valid;
// the others get weight 0). Vector loads when the run is contiguous and aligned.
template <typename P, typename TT, typename W>
struct Reader {
  const P* preds;
  const typename Storage<TT>::type* target;
  const W* weight;  // nullptr: weight 1
  Mapping map;
  bool has_ignore;
  int64_t ignore_index;

  __device__ __forceinline__ Element make(P pv, typename Storage<TT>::type tv, double w, int64_t c) const {
    Element el;
    el.p = to_double(pv);
    const TT t = static_cast<TT>(tv);
    if (has_ignore && equals_int(t, ignore_index)) w = 0.0;
    const double y = map.multiclass ? (equals_int(t, c) ? 1.0 : 0.0) : to_double(t);
    el.wy = w * y;
    el.wn = w * (1.0 - y);
    return el;
  }

  __device__ __forceinline__ void read(int64_t g, int64_t j0, int64_t len, bool vec_ok, Element (&out)[kItems]) const {
    const int64_t c = map.cls(g);
    if (vec_ok && j0 + kItems <= len) {
      int64_t e, ti;
      map.offsets(g, j0, e, ti);
      P pv[kItems];
      typename Storage<TT>::type tv[kItems];
      load_run(preds + e, pv);
      load_run(target + ti, tv);
      if (weight != nullptr) {
        W wv[kItems];
        load_run(weight + ti, wv);
#pragma unroll
        for (int i = 0; i < kItems; ++i) out[i] = make(pv[i], tv[i], to_double(wv[i]), c);
      } else {
#pragma unroll
        for (int i = 0; i < kItems; ++i) out[i] = make(pv[i], tv[i], 1.0, c);
      }
      return;
    }
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      const int64_t j = j0 + i;
      if (j < len) {
        int64_t e, ti;
        map.offsets(g, j, e, ti);
        const double w = weight != nullptr ? to_double(weight[ti]) : 1.0;
        out[i] = make(preds[e], target[ti], w, c);
      } else {
        out[i] = Element{0.0, 0.0, 0.0};
      }
    }
  }

  // Whether group g's runs can use vector loads (checked once per block).
  __device__ __forceinline__ bool vector_ok(int64_t g, int64_t j0) const {
    if (!map.runs_contiguous()) return false;
    int64_t e, ti;
    map.offsets(g, j0, e, ti);
    bool ok = aligned_run(preds + e) && aligned_run(target + ti);
    if (weight != nullptr) ok = ok && aligned_run(weight + ti);
    // Every later run of the group starts kItems further on, so its alignment follows
    // when the group's rows have a multiple of kItems elements (or there is one row).
    return ok && (map.samplewise || map.C == 1 || map.L % kItems == 0);
  }
};

// ---- work split ---------------------------------------------------------------
// This block's group g and its chunk [begin, end) of the group's len positions (Split: plan.h).
struct BlockRange {
  int64_t g, begin, end;
};

__device__ __forceinline__ BlockRange block_range(const Split& split, int64_t len) {
  const int64_t begin = (blockIdx.x % split.chunks) * split.chunk;
  return BlockRange{static_cast<int64_t>(blockIdx.x / split.chunks), begin, min(len, begin + split.chunk)};
}

// The element loops of the streaming kernels: a thread's runs of kItems positions start at
// first_run(begin) and follow each other kRunStride apart (the runs interleave across the
// block's threads, so a warp reads consecutive memory). Written out in each kernel, as
//   for (int64_t j0 = first_run(begin); j0 < end; j0 += kRunStride) { rd.read(g, j0, end, vec, el); ... }
// (a helper taking the loop body as a lambda compiles to different machine code).
constexpr int64_t kRunStride = static_cast<int64_t>(kThreads) * kItems;
__device__ __forceinline__ int64_t first_run(int64_t begin) { return begin + static_cast<int64_t>(threadIdx.x) * kItems; }

// Warp sum with a fixed butterfly order (deterministic; every lane gets the sum).
__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// The reader of a problem's inputs (forward and backward read them alike).
template <typename P, typename TT>
Reader<P, TT, acc_t<P>> make_reader(const Problem& p) {
  Reader<P, TT, acc_t<P>> rd;
  rd.preds = static_cast<const P*>(p.preds);
  rd.target = static_cast<const typename Storage<TT>::type*>(p.target);
  rd.weight = static_cast<const acc_t<P>*>(p.weight);
  rd.map = Mapping{p.C, p.L, p.samplewise, p.multiclass};
  rd.has_ignore = p.has_ignore;
  rd.ignore_index = p.ignore_index;
  return rd;
}

}  // namespace softset_cuda
