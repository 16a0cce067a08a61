// Backward kernels for __nv_bfloat16 preds (one file per preds type so they compile in parallel).
#include "backward_impl.cuh"

namespace softset_cuda {

cudaError_t backward_bfloat16(const Problem& p, const double* grad, void* workspace, void* grad_preds) {
  return backward_for<__nv_bfloat16>(p, grad, workspace, grad_preds);
}

}  // namespace softset_cuda
