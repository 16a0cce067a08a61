// The kernels of the softset_fast ops, per device: what softset.cpp registers, and what the
// composed ops (soft_set_loss.cpp) call directly. Schemas and their meaning: softset.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "torch_api.h"

namespace softset {

// The kernels' function types; each device declares its kernels with them (a function declared as
// `SoftCounts soft_counts_cpu;` has that signature). deterministic:
// torch.are_deterministic_algorithms_enabled() of the caller (torch's stable ABI cannot read it): a
// fixed-order reduction on CUDA; the CPU kernels always are deterministic.
using SoftCounts = Tensor(const Tensor& preds, const Tensor& target, const OptionalTensor& weight, const Tensor& grid,
                          std::string_view approx, double k, int64_t num_classes, std::optional<int64_t> ignore_index,
                          bool samplewise, bool deterministic);
using SoftCountsBackward = Tensor(const Tensor& grad, const Tensor& preds, const Tensor& target,
                                  const OptionalTensor& weight, const Tensor& grid, std::string_view approx, double k,
                                  int64_t num_classes, std::optional<int64_t> ignore_index, bool samplewise);
using MetricLoss = Tensor(const Tensor& counts, std::string_view metric, std::string_view average, double beta,
                          double zero_division);
using MetricLossBackward = Tensor(const Tensor& grad, const Tensor& counts, std::string_view metric,
                                  std::string_view average, double beta, double zero_division);

// One device's kernels of the four building-block ops.
struct DeviceKernels {
  SoftCounts* soft_counts;
  SoftCountsBackward* soft_counts_backward;
  MetricLoss* metric_loss;
  MetricLossBackward* metric_loss_backward;
};

namespace cpu {
SoftCounts soft_counts_cpu;
SoftCountsBackward soft_counts_backward_cpu;
MetricLoss metric_loss_cpu;
MetricLossBackward metric_loss_backward_cpu;
// metric_loss_backward_cpu for an upstream gradient of 1 (a 0-d loss): a training step's dL/dcounts
// without a tensor for the 1.
Tensor metric_loss_unit_backward_cpu(const Tensor& counts, std::string_view metric, std::string_view average,
                                     double beta, double zero_division);
// The copy of the sigmoid kernels this process runs: "avx2+fma" or "baseline".
std::string cpu_isa();
constexpr DeviceKernels kKernels{soft_counts_cpu, soft_counts_backward_cpu, metric_loss_cpu,
                                 metric_loss_backward_cpu};
}  // namespace cpu

#ifdef SOFTSET_FAST_WITH_CUDA
namespace cuda {
SoftCounts soft_counts_cuda;
SoftCountsBackward soft_counts_backward_cuda;
MetricLoss metric_loss_cuda;
MetricLossBackward metric_loss_backward_cuda;
// The CUDA version the extension was compiled with (e.g. 13000), for the import-time check.
int64_t cuda_version();
constexpr DeviceKernels kKernels{soft_counts_cuda, soft_counts_backward_cuda, metric_loss_cuda,
                                 metric_loss_backward_cuda};
}  // namespace cuda
#endif

// The kernels of x's device (CPU, or CUDA when built): an error naming op for another device.
const DeviceKernels& kernels_for(const Tensor& x, const char* op);

}  // namespace softset
