// Forward kernels for __half preds (one file per preds type so they compile in parallel).
#include "forward_impl.cuh"

namespace softset_cuda {

cudaError_t forward_half(const Problem& p, bool deterministic, void* workspace, void* out) {
  return forward_for<__half>(p, deterministic, workspace, out);
}

}  // namespace softset_cuda
