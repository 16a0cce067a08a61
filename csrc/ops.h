// The kernels of the softset_fast ops, per device: what softset.cpp registers, and what the
// composed ops (soft_set_loss.cpp) call directly. Schemas and their meaning: softset.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "torch_api.h"

namespace softset {

// deterministic: torch.are_deterministic_algorithms_enabled() of the caller (torch's stable ABI
// cannot read it): a fixed-order reduction on CUDA; the CPU kernels always are deterministic.
using SoftCountsKernel = Tensor (*)(const Tensor& preds, const Tensor& target, const OptionalTensor& weight,
                                    const Tensor& grid, std::string_view approx, double k, int64_t num_classes,
                                    std::optional<int64_t> ignore_index, bool samplewise, bool deterministic);
using SoftCountsBackwardKernel = Tensor (*)(const Tensor& grad, const Tensor& preds, const Tensor& target,
                                            const OptionalTensor& weight, const Tensor& grid, std::string_view approx,
                                            double k, int64_t num_classes, std::optional<int64_t> ignore_index,
                                            bool samplewise);
using MetricLossKernel = Tensor (*)(const Tensor& counts, std::string_view metric, std::string_view average,
                                    double beta, double zero_division);
using MetricLossBackwardKernel = Tensor (*)(const Tensor& grad, const Tensor& counts, std::string_view metric,
                                            std::string_view average, double beta, double zero_division);

// One device's kernels of the four building-block ops.
struct DeviceKernels {
  SoftCountsKernel soft_counts;
  SoftCountsBackwardKernel soft_counts_backward;
  MetricLossKernel metric_loss;
  MetricLossBackwardKernel metric_loss_backward;
};

namespace cpu {
Tensor soft_counts_cpu(const Tensor& preds, const Tensor& target, const OptionalTensor& weight, const Tensor& grid,
                       std::string_view approx, double k, int64_t num_classes, std::optional<int64_t> ignore_index,
                       bool samplewise, bool deterministic);
Tensor soft_counts_backward_cpu(const Tensor& grad, const Tensor& preds, const Tensor& target,
                                const OptionalTensor& weight, const Tensor& grid, std::string_view approx, double k,
                                int64_t num_classes, std::optional<int64_t> ignore_index, bool samplewise);
Tensor metric_loss_cpu(const Tensor& counts, std::string_view metric, std::string_view average, double beta,
                       double zero_division);
Tensor metric_loss_backward_cpu(const Tensor& grad, const Tensor& counts, std::string_view metric,
                                std::string_view average, double beta, double zero_division);
// The copy of the sigmoid kernels this process runs: "avx2+fma" or "baseline".
std::string cpu_isa();
constexpr DeviceKernels kKernels{soft_counts_cpu, soft_counts_backward_cpu, metric_loss_cpu,
                                 metric_loss_backward_cpu};
}  // namespace cpu

#ifdef SOFTSET_FAST_WITH_CUDA
namespace cuda {
Tensor soft_counts_cuda(const Tensor& preds, const Tensor& target, const OptionalTensor& weight, const Tensor& grid,
                        std::string_view approx, double k, int64_t num_classes, std::optional<int64_t> ignore_index,
                        bool samplewise, bool deterministic);
Tensor soft_counts_backward_cuda(const Tensor& grad, const Tensor& preds, const Tensor& target,
                                 const OptionalTensor& weight, const Tensor& grid, std::string_view approx, double k,
                                 int64_t num_classes, std::optional<int64_t> ignore_index, bool samplewise);
Tensor metric_loss_cuda(const Tensor& counts, std::string_view metric, std::string_view average, double beta,
                        double zero_division);
Tensor metric_loss_backward_cuda(const Tensor& grad, const Tensor& counts, std::string_view metric,
                                 std::string_view average, double beta, double zero_division);
// The CUDA version the extension was compiled with (e.g. 13000), for the import-time check.
int64_t cuda_version();
constexpr DeviceKernels kKernels{soft_counts_cuda, soft_counts_backward_cuda, metric_loss_cuda,
                                 metric_loss_backward_cuda};
}  // namespace cuda
#endif

// The kernels of x's device (CPU, or CUDA when built): an error naming op for another device.
const DeviceKernels& kernels_for(const Tensor& x, const char* op);

}  // namespace softset
