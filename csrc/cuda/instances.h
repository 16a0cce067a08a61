// Entry points per preds type: forward_for<P> and backward_for<P> are specialised in the
// generated forward_<dtype>.cu and backward_<dtype>.cu (instances.py), one file per type so
// they compile in parallel; forward.cu and backward.cu call them.
#pragma once

#include <cuda_runtime.h>

#include "plan.h"

namespace softset_cuda {

template <typename P>
cudaError_t forward_for(const Problem& p, const ForwardPlan& plan, void* workspace, void* out);

template <typename P>
cudaError_t backward_for(const Problem& p, const BackwardPlan& plan, const double* grad, void* workspace,
                         void* grad_preds);

}  // namespace softset_cuda
