// Forward entry points: workspace size and the dispatch on the preds dtype.
#include "forward_impl.cuh"

namespace softset_cuda {

size_t forward_workspace_bytes(const Problem& p, bool deterministic) {
  const Plan plan = make_plan(p, deterministic);
  const int64_t groups = p.groups();
  if (plan.hist32) return hist32_layout(p, plan, nullptr, nullptr);
  if (plan.use_hist) return align_up(sizeof(int4) * plan.B) + sizeof(double) * groups * 8 * (p.T + 1);
  const int64_t blocks = groups * plan.split.chunks;
  return align_up(sizeof(double) * blocks * p.T * 2) + sizeof(double) * blocks * 2;
}

cudaError_t forward(const Problem& p, bool deterministic, void* workspace, void* out) {
  if (p.groups() == 0 || p.group_len() == 0 || p.T == 0) return cudaSuccess;
  switch (p.preds_dtype) {
    case DType::Half: return forward_half(p, deterministic, workspace, out);
    case DType::BFloat16: return forward_bfloat16(p, deterministic, workspace, out);
    case DType::Float: return forward_float(p, deterministic, workspace, out);
    case DType::Double: return forward_double(p, deterministic, workspace, out);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace softset_cuda
