// The one place that turns the runtime dtypes into template parameters.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "problem.h"

namespace softset_cuda {

template <typename T> struct Tag { using type = T; };

// Calls fn(Tag<preds type>{}); returns cudaErrorInvalidValue for a dtype preds cannot have.
template <typename Fn>
cudaError_t dispatch_preds(DType preds, Fn&& fn) {
  switch (preds) {
    case DType::Half: return fn(Tag<__half>{});
    case DType::BFloat16: return fn(Tag<__nv_bfloat16>{});
    case DType::Float: return fn(Tag<float>{});
    case DType::Double: return fn(Tag<double>{});
    default: return cudaErrorInvalidValue;
  }
}

// Calls fn(Tag<target type>{}); returns cudaErrorInvalidValue for an unknown dtype.
template <typename Fn>
cudaError_t dispatch_target(DType target, Fn&& fn) {
  switch (target) {
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

// Accumulation dtype of a preds type: weights and outputs are float64 for float64 preds, else float32.
template <typename P>
using acc_t = typename std::conditional<std::is_same<P, double>::value, double, float>::type;

}  // namespace softset_cuda
