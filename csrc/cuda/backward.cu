// Backward entry point: zeros where the gradient vanishes, else the plan and the kernels
// of preds' type (backward_<dtype>.cu).
#include "dispatch.cuh"
#include "instances.h"
#include "soft_counts_cuda.h"

namespace softset_cuda {

cudaError_t backward(const Problem& p, const double* grad, void* workspace, void* grad_preds) {
  const int64_t numel = p.N * p.C * p.L;
  if (numel == 0) return cudaSuccess;
  if (p.approx == Approx::kStep || p.T == 0) {  // step: H is piecewise constant
    return dispatch_preds(p.preds_dtype, [&](auto ptag) -> cudaError_t {
      return cudaMemsetAsync(grad_preds, 0, sizeof(typename decltype(ptag)::type) * numel, p.stream);
    });
  }
  const BackwardPlan plan = plan_backward(p);
  return dispatch_preds(p.preds_dtype, [&](auto ptag) -> cudaError_t {
    return backward_for<typename decltype(ptag)::type>(p, plan, grad, workspace, grad_preds);
  });
}

}  // namespace softset_cuda
