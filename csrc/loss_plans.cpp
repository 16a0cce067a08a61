// The plan registry of loss_plans.h: plans by number, shared with calls in flight.
#include "loss_plans.h"

#include <memory>
#include <mutex>
#include <unordered_map>

#include "soft_set_loss.h"

namespace softset {
namespace {

struct LossPlan {
  Tensor grid;
  std::string approx;
  double k;
  int64_t num_classes;
  std::optional<int64_t> ignore_index;
  bool samplewise;
  std::vector<int64_t> shape;
  std::string task;
  bool validate;
  std::string metric, average;
  double beta, zero_division;
};

class PlanRegistry {
 public:
  int64_t add(std::shared_ptr<const LossPlan> plan) {
    const std::lock_guard<std::mutex> lock(mutex_);
    plans_.emplace(next_, std::move(plan));
    return next_++;
  }
  std::shared_ptr<const LossPlan> find(int64_t number) const {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto it = plans_.find(number);
    return it == plans_.end() ? nullptr : it->second;
  }
  void drop(int64_t number) {
    std::shared_ptr<const LossPlan> dropped;  // released after the lock
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto it = plans_.find(number);
    if (it == plans_.end()) return;
    dropped = std::move(it->second);
    plans_.erase(it);
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_map<int64_t, std::shared_ptr<const LossPlan>> plans_;
  int64_t next_ = 1;  // numbers are never reused: a stale number is an error, not another plan
};

// Never destroyed: its tensors must not be released after torch at exit.
PlanRegistry& registry() {
  static PlanRegistry* plans = new PlanRegistry();
  return *plans;
}

}  // namespace

int64_t soft_set_loss_plan(const Tensor& grid, std::string_view approx, double k, int64_t num_classes,
                           std::optional<int64_t> ignore_index, bool samplewise, const std::vector<int64_t>& shape,
                           std::string_view task, bool validate, std::string_view metric, std::string_view average,
                           double beta, double zero_division) {
  make_layout(shape, task, num_classes, samplewise);  // its checks, now rather than at the first call
  return registry().add(std::make_shared<const LossPlan>(
      LossPlan{grid, std::string(approx), k, num_classes, ignore_index, samplewise, shape, std::string(task),
               validate, std::string(metric), std::string(average), beta, zero_division}));
}

std::tuple<Tensor, Tensor, Tensor> planned_soft_set_loss(const Tensor& preds, const Tensor& target,
                                                         const OptionalTensor& weight, int64_t plan, bool with_grad,
                                                         bool deterministic) {
  const std::shared_ptr<const LossPlan> p = registry().find(plan);
  SOFTSET_CHECK(p != nullptr, "_planned_soft_set_loss: no loss plan numbered ", plan,
                " (dropped, or never made by _soft_set_loss_plan)");
  return soft_set_loss_training(preds, target, weight, p->grid, p->approx, p->k, p->num_classes, p->ignore_index,
                                p->samplewise, p->shape, p->task, p->validate, p->metric, p->average, p->beta,
                                p->zero_division, with_grad, deterministic);
}

void drop_soft_set_loss_plan(int64_t plan) { registry().drop(plan); }

}  // namespace softset
