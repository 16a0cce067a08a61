// Argument checks of metric_loss / metric_loss_backward and the parse of their strings
// into epilogue::Problem, shared by the CPU (cpu/epilogue_cpu.cpp) and CUDA
// (cuda/epilogue_cuda.cpp) glue. softset_fast/backends/loss_op.py repeats the checks, with the
// same messages, in the fake kernels.
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <string>
#include <vector>

#include "epilogue.h"

namespace softset {
namespace epilogue {

inline Metric parse_metric(c10::string_view metric, double beta, const char* op, double* beta2) {
  *beta2 = 1.0;
  if (metric == "f1") return Metric::kFBeta;
  if (metric == "fbeta") {
    TORCH_CHECK(std::isfinite(beta) && beta > 0, op, ": beta must be a finite number > 0 for metric='fbeta', got ",
                beta);
    *beta2 = beta * beta;
    return Metric::kFBeta;
  }
  if (metric == "accuracy") return Metric::kAccuracy;
  if (metric == "precision") return Metric::kPrecision;
  if (metric == "recall") return Metric::kRecall;
  if (metric == "specificity") return Metric::kSpecificity;
  if (metric == "balanced_accuracy") return Metric::kBalancedAccuracy;
  if (metric == "jaccard") return Metric::kJaccard;
  if (metric == "gmean") return Metric::kGMean;
  if (metric == "mcc") return Metric::kMCC;
  if (metric == "auroc") return Metric::kAUROC;
  TORCH_CHECK(false, op,
              ": metric must be one of 'f1', 'fbeta', 'accuracy', 'precision', 'recall', 'specificity', "
              "'balanced_accuracy', 'jaccard', 'gmean', 'mcc', 'auroc', got '",
              std::string(metric), "'");
}

inline Average parse_average(c10::string_view average, const char* op) {
  if (average == "none") return Average::kNone;
  if (average == "macro") return Average::kMacro;
  if (average == "micro") return Average::kMicro;
  if (average == "weighted") return Average::kWeighted;
  TORCH_CHECK(false, op, ": average must be one of 'none', 'macro', 'micro', 'weighted', got '", std::string(average),
              "'");
}

// Checks counts and the options; the problem's sizes come from counts.
inline Problem make_problem(const at::Tensor& counts, c10::string_view metric, c10::string_view average, double beta,
                            double zero_division, const char* op) {
  TORCH_CHECK(counts.dim() == 4 && counts.size(3) == 4, op,
              ": counts must have shape [G, C, T, 4] (tp, fn, fp, tn), got ", counts.sizes());
  TORCH_CHECK(counts.scalar_type() == at::kFloat || counts.scalar_type() == at::kDouble, op,
              ": counts must be float32 or float64, got ", counts.scalar_type());
  Problem pr;
  pr.metric = parse_metric(metric, beta, op, &pr.beta2);
  pr.average = parse_average(average, op);
  TORCH_CHECK(std::isfinite(zero_division), op, ": zero_division must be a finite number, got ", zero_division);
  pr.zero_division = zero_division;
  pr.G = counts.size(0);
  pr.C = counts.size(1);
  pr.T = counts.size(2);
  return pr;
}

// The loss's shape: [C] for average='none', else 0-d.
inline std::vector<int64_t> loss_shape(const Problem& pr) {
  return pr.average == Average::kNone ? std::vector<int64_t>{pr.C} : std::vector<int64_t>{};
}

// Checks the backward's upstream gradient against the loss it belongs to.
inline void check_grad(const at::Tensor& grad, const at::Tensor& counts, const Problem& pr, c10::string_view average,
                       const char* op) {
  TORCH_CHECK(grad.device() == counts.device(), op, ": grad must be on counts' device ", counts.device(), ", got ",
              grad.device());
  TORCH_CHECK(at::isFloatingType(grad.scalar_type()), op, ": grad must be floating point, got ", grad.scalar_type());
  const std::vector<int64_t> expected = loss_shape(pr);
  TORCH_CHECK(grad.sizes() == at::IntArrayRef(expected), op, ": grad must have the loss's shape ",
              at::IntArrayRef(expected), " for average='", std::string(average), "', got ", grad.sizes());
}

}  // namespace epilogue
}  // namespace softset
