// The launch planner (plan.h): plain C++, compiled by the host compiler.
#include "plan.h"

#include <algorithm>

namespace softset_cuda {
namespace {

constexpr size_t kInt4 = 16, kDouble2 = 16;  // sizeof(int4), sizeof(double2)
constexpr int64_t kMinChunk = 8192;         // positions a block streams at least

// Blocks per SM that `smem` bytes allow (228 KB per SM, 1 KB reserved per block), 1 to 4.
int blocks_per_sm_for(size_t smem) {
  return static_cast<int>(std::max<size_t>(1, std::min<size_t>(4, (228 * 1024) / (smem + 1024))));
}

// Bool, integer or class-index targets: y is exactly 0 or 1 (or an outlier hist32 routes aside).
bool hard_target(const Problem& p) {
  return p.multiclass || p.target_dtype == DType::Bool || p.target_dtype == DType::UInt8 ||
         p.target_dtype == DType::Int32 || p.target_dtype == DType::Int64;
}

}  // namespace

Split make_split(int64_t groups, int64_t len, int sm_count, int blocks_per_sm, int64_t min_chunk) {
  Split s;
  const int64_t want = static_cast<int64_t>(sm_count) * blocks_per_sm;
  int64_t chunks = (len + min_chunk - 1) / min_chunk;
  int64_t cap = (want + groups - 1) / groups;
  if (cap < 1) cap = 1;
  if (chunks > cap) chunks = cap;
  const int64_t max_chunk = int64_t(1) << 30;  // keeps per-block partial sums well inside float64's exact range
  if (chunks < (len + max_chunk - 1) / max_chunk) chunks = (len + max_chunk - 1) / max_chunk;
  if (chunks < 1) chunks = 1;
  int64_t chunk = (len + chunks - 1) / chunks;
  chunk = (chunk + kItems - 1) / kItems * kItems;
  if (chunk < kItems) chunk = kItems;
  s.chunk = chunk;
  s.chunks = (len + chunk - 1) / chunk;
  if (s.chunks < 1) s.chunks = 1;
  return s;
}

int bucket_count(int64_t T) {
  int B = 256;
  while (B < 2 * (T + 1) && B < 2048) B *= 2;
  return B;
}

size_t hist_smem_bytes(int64_t T, int B, int R) {
  return static_cast<size_t>(2 * T) * sizeof(double) + static_cast<size_t>(B) * kInt4 +
         static_cast<size_t>(8 * (T + 1)) * R * sizeof(double);
}

size_t hist32_smem_bytes(int64_t T, int B, int R, bool linear) {
  return static_cast<size_t>(2 * T) * sizeof(double) + static_cast<size_t>(B) * kInt4 +
         static_cast<size_t>(hist32_words(T, linear)) * R * sizeof(uint32_t);
}

size_t backward_linear_smem_bytes(int64_t T, int B) {
  return sizeof(double) * 2 * T + kDouble2 * 2 * (T + 1) + kInt4 * B;
}

Region Layout::add(size_t bytes) {
  Region r;
  r.offset = (end_ + kWorkspaceAlign - 1) / kWorkspaceAlign * kWorkspaceAlign;
  r.bytes = bytes;
  end_ = r.offset + bytes;
  return r;
}

ForwardPlan plan_forward(const Problem& p, bool deterministic) {
  ForwardPlan plan;
  const int64_t groups = p.groups(), len = p.group_len();
  if (p.approx != Approx::kSigmoid && !deterministic) {
    const bool linear = p.approx == Approx::kLinear;
    const int B = bucket_count(p.T);
    const size_t fits = static_cast<size_t>(p.max_smem_optin);
    // Hist32 needs hard targets and no weight, and <= 2^31 elements per group so that p
    // keeps >= 31 fixed-point bits. Otherwise float64 bins for every dtype: float32 bins
    // round each bin by ~1e-7 relative, and the segment-2 terms m2·Σp + c2·Σ1 (m2, |c2| ~ T)
    // amplify that by T (1e-3 absolute at T = 1000).
    const bool hist32 = hard_target(p) && p.weight == nullptr && len <= (int64_t(1) << 31) &&
                        hist32_smem_bytes(p.T, B, 1, linear) <= fits;
    if (hist32 || hist_smem_bytes(p.T, B, 1) <= fits) {
      plan.path = hist32 ? ForwardPath::Hist32 : ForwardPath::Hist;
      plan.B = B;
      auto smem_bytes = [&](int R) { return hist32 ? hist32_smem_bytes(p.T, B, R, linear) : hist_smem_bytes(p.T, B, R); };
      const int64_t words_per_replica = hist32 ? hist32_words(p.T, linear) : 8 * (p.T + 1);
      // Replicas R (halved from 32) while they fit in ~100 KB of shared memory and cost no
      // more than ~4 zeroings per element (positions per block if ~4 blocks per SM shared
      // the groups); then the blocks per SM that memory allows.
      const size_t budget = std::min<size_t>(fits, 100 * 1024);
      const int64_t per_block_hint =
          std::max<int64_t>(len / std::max<int64_t>(1, (p.sm_count * 4) / std::max<int64_t>(1, groups)), 1);
      int R = 32;
      while (R > 1 && (smem_bytes(R) > budget || words_per_replica * R > 4 * per_block_hint)) R /= 2;
      plan.R = R;
      plan.smem = smem_bytes(R);
      plan.blocks_per_sm = blocks_per_sm_for(plan.smem);
      if (hist32) {
        int bits = 0;
        while ((int64_t(1) << bits) < len) ++bits;
        plan.kfix = 62 - bits;
      }
    }
  }
  plan.split = make_split(groups, len, p.sm_count, plan.blocks_per_sm, kMinChunk);
  plan.blocks = groups * plan.split.chunks;

  Layout layout;
  ForwardWorkspace& w = plan.workspace;
  if (plan.path == ForwardPath::Direct) {
    w.partial = layout.add(sizeof(double) * plan.blocks * p.T * 2);
    w.pq = layout.add(sizeof(double) * plan.blocks * 2);
  } else {
    const size_t bins = static_cast<size_t>(groups) * 8 * (p.T + 1);
    w.buckets = layout.add(kInt4 * plan.B);
    w.ghist = layout.add(sizeof(double) * bins);
    if (plan.path == ForwardPath::Hist32) {
      w.gint = layout.add(sizeof(uint64_t) * bins);
      w.side = layout.add(sizeof(double) * bins);
    }
  }
  w.bytes = layout.bytes();
  return plan;
}

BackwardPlan plan_backward(const Problem& p) {
  BackwardPlan plan;
  const int64_t groups = p.groups(), len = p.group_len();
  Layout layout;
  BackwardWorkspace& w = plan.workspace;
  if (p.approx == Approx::kLinear) {
    plan.B = bucket_count(p.T);
    plan.smem = backward_linear_smem_bytes(p.T, plan.B);
    plan.use_smem = plan.smem <= static_cast<size_t>(p.max_smem_optin);
    plan.split = make_split(groups, len, p.sm_count, plan.use_smem ? blocks_per_sm_for(plan.smem) : 4, kMinChunk);
    w.buckets = layout.add(kInt4 * plan.B);
    w.ab = layout.add(sizeof(double) * 2 * p.T);
    w.uv = layout.add(kDouble2 * 2 * groups * (p.T + 1));
  } else if (p.approx == Approx::kSigmoid) {
    const size_t s = p.preds_dtype == DType::Double ? sizeof(double) : sizeof(float);
    plan.smem = s * 4 * p.T;
    plan.use_smem = plan.smem <= static_cast<size_t>(p.max_smem_optin);
    plan.split = make_split(groups, len, p.sm_count, 4, kMinChunk);
    w.table = layout.add(s * 4 * groups * p.T);
  }
  if (p.approx != Approx::kStep) plan.blocks = groups * plan.split.chunks;
  w.bytes = layout.bytes();
  return plan;
}

size_t forward_workspace_bytes(const Problem& p, bool deterministic) {
  return plan_forward(p, deterministic).workspace.bytes;
}

size_t backward_workspace_bytes(const Problem& p) { return plan_backward(p).workspace.bytes; }

}  // namespace softset_cuda
