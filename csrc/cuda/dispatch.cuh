// The one place that turns the runtime dtypes into template parameters.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>
#include <utility>

#include "problem.h"

namespace softset_cuda {

template <typename T> struct Tag { using type = T; };

// Calls fn(Tag<C++ type of dtype>{}); returns cudaErrorInvalidValue for an unknown dtype.
template <typename Fn>
cudaError_t dispatch_dtype(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::Bool: return fn(Tag<bool>{});
    case DType::UInt8: return fn(Tag<uint8_t>{});
    case DType::Int32: return fn(Tag<int32_t>{});
    case DType::Int64: return fn(Tag<int64_t>{});
    case DType::Half: return fn(Tag<__half>{});
    case DType::BFloat16: return fn(Tag<__nv_bfloat16>{});
    case DType::Float: return fn(Tag<float>{});
    case DType::Double: return fn(Tag<double>{});
  }
  return cudaErrorInvalidValue;
}

// The preds types: instances.py generates the kernels for these only.
template <typename T>
constexpr bool kIsPredsType = std::is_same<T, __half>::value || std::is_same<T, __nv_bfloat16>::value ||
                              std::is_same<T, float>::value || std::is_same<T, double>::value;

// Calls fn(Tag<preds type>{}); returns cudaErrorInvalidValue for a dtype preds cannot have
// (fn is not instantiated for those types: their kernels do not exist).
template <typename Fn>
cudaError_t dispatch_preds(DType preds, Fn&& fn) {
  return dispatch_dtype(preds, [&](auto tag) -> cudaError_t {
    if constexpr (kIsPredsType<typename decltype(tag)::type>) {
      return fn(tag);
    } else {
      return cudaErrorInvalidValue;
    }
  });
}

// Calls fn(Tag<target type>{}): targets may have any dtype.
template <typename Fn>
cudaError_t dispatch_target(DType target, Fn&& fn) {
  return dispatch_dtype(target, std::forward<Fn>(fn));
}

// Accumulation dtype of a preds type: softset_common.h's counts_type (weights and outputs are
// float64 for float64 preds, else float32).
template <typename P>
using acc_t = softset::counts_type<P>;

}  // namespace softset_cuda
