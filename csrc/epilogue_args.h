// Argument checks of metric_loss / metric_loss_backward and the parse of their strings
// into epilogue::Problem, shared by the CPU (cpu/epilogue_cpu.cpp) and CUDA
// (cuda/epilogue_cuda.cpp) glue. softset_fast/backends/loss_op.py repeats the checks, with the
// same messages, in the fake kernels.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "epilogue.h"
#include "torch_api.h"

namespace softset {
namespace epilogue {

inline Metric parse_metric(std::string_view metric, double beta, const char* op, double* beta2) {
  *beta2 = 1.0;
  if (metric == "f1") return Metric::kFBeta;
  if (metric == "fbeta") {
    SOFTSET_CHECK(std::isfinite(beta) && beta > 0, op, ": beta must be a finite number > 0 for metric='fbeta', got ",
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
  fail(op,
       ": metric must be one of 'f1', 'fbeta', 'accuracy', 'precision', 'recall', 'specificity', "
       "'balanced_accuracy', 'jaccard', 'gmean', 'mcc', 'auroc', got '",
       metric, "'");
}

inline Average parse_average(std::string_view average, const char* op) {
  if (average == "none") return Average::kNone;
  if (average == "macro") return Average::kMacro;
  if (average == "micro") return Average::kMicro;
  if (average == "weighted") return Average::kWeighted;
  fail(op, ": average must be one of 'none', 'macro', 'micro', 'weighted', got '", average, "'");
}

// Checks counts and the options; the problem's sizes come from counts.
inline Problem make_problem(const Tensor& counts, std::string_view metric, std::string_view average, double beta,
                            double zero_division, const char* op) {
  SOFTSET_CHECK(counts.dim() == 4 && counts.size(3) == 4, op,
              ": counts must have shape [G, C, T, 4] (tp, fn, fp, tn), got ", sizes_of(counts));
  SOFTSET_CHECK(counts.scalar_type() == ScalarType::Float || counts.scalar_type() == ScalarType::Double, op,
              ": counts must be float32 or float64, got ", dtype_name(counts.scalar_type()));
  Problem pr;
  pr.metric = parse_metric(metric, beta, op, &pr.beta2);
  pr.average = parse_average(average, op);
  SOFTSET_CHECK(std::isfinite(zero_division), op, ": zero_division must be a finite number, got ", zero_division);
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
inline void check_grad(const Tensor& grad, const Tensor& counts, const Problem& pr, std::string_view average,
                       const char* op) {
  SOFTSET_CHECK(same_device(grad, counts), op, ": grad must be on counts' device ", device_name(counts), ", got ",
              device_name(grad));
  SOFTSET_CHECK(is_floating(grad.scalar_type()), op, ": grad must be floating point, got ", dtype_name(grad.scalar_type()));
  const std::vector<int64_t> expected = loss_shape(pr);
  SOFTSET_CHECK(sizes_of(grad) == expected, op, ": grad must have the loss's shape ",
              expected, " for average='", average, "', got ", sizes_of(grad));
}

}  // namespace epilogue
}  // namespace softset
