// Backward entry points: workspace size and the dispatch on the preds dtype.
#include "backward_impl.cuh"

namespace softset_cuda {

size_t backward_workspace_bytes(const Problem& p) {
  const int64_t groups = p.groups();
  if (p.approx == Approx::Linear) {
    const int B = bucket_count(p.T);
    return align_up(sizeof(int4) * B) + align_up(sizeof(double) * 2 * p.T) + sizeof(double2) * 2 * groups * (p.T + 1);
  }
  if (p.approx == Approx::Sigmoid) {
    const size_t s = p.preds_dtype == DType::Double ? sizeof(double) : sizeof(float);
    return s * 4 * groups * p.T;
  }
  return 0;
}

cudaError_t backward(const Problem& p, const double* grad, void* workspace, void* grad_preds) {
  const int64_t numel = p.N * p.C * p.L;
  if (numel == 0) return cudaSuccess;
  if (p.approx == Approx::Step)  // H is piecewise constant: zero gradient
    return cudaMemsetAsync(grad_preds, 0, element_bytes(p.preds_dtype) * numel, p.stream);
  if (p.T == 0) return cudaMemsetAsync(grad_preds, 0, element_bytes(p.preds_dtype) * numel, p.stream);
  switch (p.preds_dtype) {
    case DType::Half: return backward_half(p, grad, workspace, grad_preds);
    case DType::BFloat16: return backward_bfloat16(p, grad, workspace, grad_preds);
    case DType::Float: return backward_float(p, grad, workspace, grad_preds);
    case DType::Double: return backward_double(p, grad, workspace, grad_preds);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace softset_cuda
