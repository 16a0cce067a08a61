// Forward entry point: the plan, then the kernels of preds' type (forward_<dtype>.cu).
#include "dispatch.cuh"
#include "instances.h"
#include "soft_counts_cuda.h"

namespace softset_cuda {

cudaError_t forward(const Problem& p, bool deterministic, void* workspace, void* out) {
  if (p.groups() == 0 || p.group_len() == 0 || p.T == 0) return cudaSuccess;
  const ForwardPlan plan = plan_forward(p, deterministic);
  return dispatch_preds(p.preds_dtype, [&](auto ptag) -> cudaError_t {
    return forward_for<typename decltype(ptag)::type>(p, plan, workspace, out);
  });
}

}  // namespace softset_cuda
