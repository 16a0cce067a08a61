// Forward kernels for float preds (one file per preds type so they compile in parallel).
#include "forward_impl.cuh"

namespace softset_cuda {

cudaError_t forward_float(const Problem& p, bool deterministic, void* workspace, void* out) {
  return forward_for<float>(p, deterministic, workspace, out);
}

}  // namespace softset_cuda
