// One call of soft_counts / _soft_counts_backward as plain data: what the planner
// (plan.h), the kernels and the glue share. Plain C++: no CUDA or torch headers.
#pragma once

#include <cstdint>

#include "../softset_common.h"

struct CUstream_st;  // cudaStream_t is CUstream_st*; declared here so no CUDA header is needed

namespace softset_cuda {

// Element types the kernels read directly.
enum class DType : int { Bool, UInt8, Int32, Int64, Half, BFloat16, Float, Double };
using softset::Approx;  // the approximation codes and grid columns shared with the CPU (softset_common.h)
constexpr int kGridCols = softset::kGridColumns;

// [N, C, L] contiguous inputs. Group g (one output row of [G*C, T, 4]) is c for global
// sums, n*C + c for samplewise.
struct Problem {
  const void* preds = nullptr;   // [N, C, L]
  DType preds_dtype = DType::Float;
  const void* target = nullptr;  // [N, C, L] (num_classes == 0) or class indices [N, L]
  DType target_dtype = DType::Bool;
  const void* weight = nullptr;  // nullptr or target's shape; float64 for float64 preds, else float32
  const double* grid = nullptr;  // [T, kGridCols]
  int64_t T = 0;
  Approx approx = Approx::kLinear;
  double k = 10.0;
  int64_t N = 0, C = 0, L = 0;
  bool multiclass = false;       // num_classes > 0: y = (target[n, l] == c)
  bool has_ignore = false;
  int64_t ignore_index = 0;
  bool samplewise = false;
  // Device facts the planner needs (read by the glue from the current device).
  int sm_count = 1;
  int max_smem_optin = 48 * 1024;  // cudaDevAttrMaxSharedMemoryPerBlockOptin
  CUstream_st* stream = nullptr;

  int64_t groups() const { return samplewise ? N * C : C; }
  int64_t group_len() const { return samplewise ? L : N * L; }
};

}  // namespace softset_cuda
