// Forward kernels for __nv_bfloat16 preds (one file per preds type so they compile in parallel).
#include "forward_impl.cuh"

namespace softset_cuda {

cudaError_t forward_bfloat16(const Problem& p, bool deterministic, void* workspace, void* out) {
  return forward_for<__nv_bfloat16>(p, deterministic, workspace, out);
}

}  // namespace softset_cuda
