// The one place that turns the runtime dtypes into template parameters.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "soft_counts_cuda.h"

namespace softset_cuda {

template <typename T> struct Tag { using type = T; };

// Calls fn(Tag<preds type>{}, Tag<target type>{}); returns cudaErrorInvalidValue for an unknown dtype.
template <typename Fn>
cudaError_t dispatch_types(DType preds, DType target, Fn&& fn) {
  auto with_target = [&](auto ptag) -> cudaError_t {
    switch (target) {
      case DType::Bool: return fn(ptag, Tag<bool>{});
      case DType::UInt8: return fn(ptag, Tag<uint8_t>{});
      case DType::Int32: return fn(ptag, Tag<int32_t>{});
      case DType::Int64: return fn(ptag, Tag<int64_t>{});
      case DType::Half: return fn(ptag, Tag<__half>{});
      case DType::BFloat16: return fn(ptag, Tag<__nv_bfloat16>{});
      case DType::Float: return fn(ptag, Tag<float>{});
      case DType::Double: return fn(ptag, Tag<double>{});
    }
    return cudaErrorInvalidValue;
  };
  switch (preds) {
    case DType::Half: return with_target(Tag<__half>{});
    case DType::BFloat16: return with_target(Tag<__nv_bfloat16>{});
    case DType::Float: return with_target(Tag<float>{});
    case DType::Double: return with_target(Tag<double>{});
    default: return cudaErrorInvalidValue;
  }
}

// Accumulation dtype of a preds type: weights and outputs are float64 for float64 preds, else float32.
template <typename P>
using acc_t = typename std::conditional<std::is_same<P, double>::value, double, float>::type;

}  // namespace softset_cuda
