// Host-only planner of the CUDA launches: which forward path a problem takes, the work
// split, shared-memory sizes and the workspace layout. Plain C++ (no CUDA, no torch), so
// tests/test_cuda_planner.py checks it with g++ on a machine without a GPU.
#pragma once

#include <cstddef>
#include <cstdint>

#include "problem.h"

namespace softset_cuda {

constexpr int kThreads = 256;  // threads per block for every streaming kernel
constexpr int kItems = 8;      // consecutive elements a thread reads at once (one vector load)

// Blocks are (group, chunk) pairs; a chunk is a multiple of kItems positions.
struct Split {
  int64_t chunks;  // chunks per group
  int64_t chunk;   // positions per chunk
};
Split make_split(int64_t groups, int64_t len, int sm_count, int blocks_per_sm, int64_t min_chunk);

// Buckets of the grid look-up table (grid_lookup.cuh): a power of two in 256..2048.
int bucket_count(int64_t T);

// Shared memory of the histogram kernels: a[T], b[T] (double), buckets[B] (int4), then R
// replicas of the histogram: 8 (T + 1) float64 bins, or hist32_words uint32 words.
constexpr int hist32_words(int64_t T, bool linear) { return static_cast<int>((linear ? 12 : 2) * (T + 1)); }
size_t hist_smem_bytes(int64_t T, int B, int R);
size_t hist32_smem_bytes(int64_t T, int B, int R, bool linear);
// Shared memory of the linear backward's element kernel: a[T], b[T], U[T+1], V[T+1] (double2), buckets[B].
size_t backward_linear_smem_bytes(int64_t T, int B);

// ---- workspace layout: one description sizes the workspace and carves it ----------
constexpr size_t kWorkspaceAlign = 256;

// A buffer inside the workspace: byte offset (a multiple of kWorkspaceAlign) and size.
struct Region {
  size_t offset = 0, bytes = 0;
};

// Places buffers one after another, each at the next kWorkspaceAlign boundary.
class Layout {
 public:
  Region add(size_t bytes);
  size_t bytes() const { return end_; }

 private:
  size_t end_ = 0;
};

template <typename T>
T* carve(void* workspace, const Region& r) {
  return reinterpret_cast<T*>(static_cast<unsigned char*>(workspace) + r.offset);
}

// ---- forward ---------------------------------------------------------------------
enum class ForwardPath : int {
  Direct,  // sigmoid; linear/step in deterministic mode or when no histogram fits in shared memory
  Hist,    // linear/step: float64 shared histogram
  Hist32,  // linear/step with hard targets and no weight: uint32 shared histogram, exact sums
};

// Unused regions have zero bytes.
struct ForwardWorkspace {
  Region buckets;  // int4[B] (histogram paths)
  Region ghist;    // double[groups, 8 (T + 1)] (histogram paths)
  Region gint;     // uint64 fixed-point histogram, ghist's shape (Hist32)
  Region side;     // double side histogram, ghist's shape (Hist32)
  Region partial;  // double[blocks, T, 2] (Direct)
  Region pq;       // double[blocks, 2] (Direct)
  size_t bytes = 0;
};

struct ForwardPlan {
  ForwardPath path = ForwardPath::Direct;
  int kfix = 0;           // Hist32: fixed-point bits of p
  int B = 0;              // histogram paths: buckets of the grid look-up table
  int R = 1;              // histogram paths: replicas of the shared histogram
  int blocks_per_sm = 4;  // occupancy the split aims at
  size_t smem = 0;        // dynamic shared memory of the main kernel
  Split split{1, kItems};
  int64_t blocks = 0;     // main kernel's grid: groups * split.chunks
  ForwardWorkspace workspace;
};
ForwardPlan plan_forward(const Problem& p, bool deterministic);

// ---- backward --------------------------------------------------------------------
struct BackwardWorkspace {
  Region buckets;  // int4[B] (linear)
  Region ab;       // double a[T] then b[T] (linear)
  Region uv;       // double2 U[groups, T + 1] then V[groups, T + 1] (linear)
  Region table;    // S[groups, T, 4], S the accumulation type (sigmoid)
  size_t bytes = 0;
};

// Step needs no plan (its gradient is zero): every field keeps its default.
struct BackwardPlan {
  int B = 0;              // linear: buckets
  size_t smem = 0;        // shared memory the element kernel would use for its tables
  bool use_smem = false;  // whether they fit (else it reads them from global memory)
  Split split{1, kItems};
  int64_t blocks = 0;     // element kernel's grid: groups * split.chunks
  BackwardWorkspace workspace;
};
BackwardPlan plan_backward(const Problem& p);

// Workspace bytes the glue allocates for forward / backward (soft_counts_cuda.h).
size_t forward_workspace_bytes(const Problem& p, bool deterministic);
size_t backward_workspace_bytes(const Problem& p);

}  // namespace softset_cuda
