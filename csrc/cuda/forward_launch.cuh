// The forward for one preds type: the kernels of the path the planner chose (plan.h).
// Included by each generated forward_<dtype>.cu (instances.py).
#pragma once

#include <cuda_runtime.h>

#include <type_traits>

#include "direct_forward.cuh"
#include "dispatch.cuh"
#include "hist_forward.cuh"
#include "plan.h"

namespace softset_cuda {
namespace {

template <Approx A, typename P, typename TT>
cudaError_t run_forward(const Problem& p, const ForwardPlan& plan, void* ws, void* out) {
  switch (plan.path) {
    case ForwardPath::Hist32:
      if constexpr (A != Approx::kSigmoid && std::is_integral<TT>::value) return run_hist32<A, P, TT>(p, plan, ws, out);
      break;
    case ForwardPath::Hist:
      if constexpr (A != Approx::kSigmoid) return run_hist<A, P, TT>(p, plan, ws, out);
      break;
    case ForwardPath::Direct:
      return run_direct<A, P, TT>(p, plan, ws, out);
  }
  return cudaErrorInvalidValue;  // the planner picks histograms for linear/step only, Hist32 for hard targets only
}

template <typename P>
cudaError_t launch_forward(const Problem& p, const ForwardPlan& plan, void* ws, void* out) {
  return dispatch_target(p.target_dtype, [&](auto ttag) -> cudaError_t {
    using TT = typename decltype(ttag)::type;
    switch (p.approx) {
      case Approx::kLinear: return run_forward<Approx::kLinear, P, TT>(p, plan, ws, out);
      case Approx::kStep: return run_forward<Approx::kStep, P, TT>(p, plan, ws, out);
      case Approx::kSigmoid: return run_forward<Approx::kSigmoid, P, TT>(p, plan, ws, out);
    }
    return cudaErrorInvalidValue;
  });
}

}  // namespace
}  // namespace softset_cuda
