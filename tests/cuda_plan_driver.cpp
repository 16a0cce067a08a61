// Prints the CUDA planner's decisions (csrc/cuda/plan.h) as one JSON object per input line.
// Input lines: space-separated key=value fields of a Problem (see parse()) plus
// deterministic=0|1. Built and run by tests/test_cuda_planner.py with a plain C++ compiler.
#include <initializer_list>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#include "plan.h"

using namespace softset_cuda;

namespace {

DType parse_dtype(const std::string& v) {
  const char* names[] = {"bool", "uint8", "int32", "int64", "float16", "bfloat16", "float32", "float64"};
  for (int i = 0; i < 8; ++i)
    if (v == names[i]) return static_cast<DType>(i);
  throw std::runtime_error("unknown dtype " + v);
}

Approx parse_approx(const std::string& v) {
  if (v == "linear") return Approx::kLinear;
  if (v == "sigmoid") return Approx::kSigmoid;
  if (v == "step") return Approx::kStep;
  throw std::runtime_error("unknown approx " + v);
}

void parse(const std::string& line, Problem& p, bool& deterministic) {
  static const double dummy = 0.0;  // a non-null weight pointer
  std::istringstream in(line);
  std::string field;
  while (in >> field) {
    const size_t eq = field.find('=');
    const std::string key = field.substr(0, eq), v = field.substr(eq + 1);
    if (key == "approx") p.approx = parse_approx(v);
    else if (key == "preds") p.preds_dtype = parse_dtype(v);
    else if (key == "target") p.target_dtype = parse_dtype(v);
    else if (key == "weight") p.weight = v == "1" ? &dummy : nullptr;
    else if (key == "multiclass") p.multiclass = v == "1";
    else if (key == "samplewise") p.samplewise = v == "1";
    else if (key == "deterministic") deterministic = v == "1";
    else if (key == "N") p.N = std::stoll(v);
    else if (key == "C") p.C = std::stoll(v);
    else if (key == "L") p.L = std::stoll(v);
    else if (key == "T") p.T = std::stoll(v);
    else if (key == "sm_count") p.sm_count = std::stoi(v);
    else if (key == "max_smem_optin") p.max_smem_optin = std::stoi(v);
    else throw std::runtime_error("unknown field " + key);
  }
}

// {"name": [offset, bytes], ...}
std::string regions(std::initializer_list<std::pair<const char*, Region>> named) {
  std::string s = "{";
  for (const auto& [name, r] : named) {
    if (s.size() > 1) s += ", ";
    s += "\"" + std::string(name) + "\": [" + std::to_string(r.offset) + ", " + std::to_string(r.bytes) + "]";
  }
  return s + "}";
}

const char* path_name(ForwardPath path) {
  switch (path) {
    case ForwardPath::Direct: return "direct";
    case ForwardPath::Hist: return "hist";
    case ForwardPath::Hist32: return "hist32";
  }
  return "?";
}

}  // namespace

int main() {
  std::string line;
  while (std::getline(std::cin, line)) {
    Problem p;
    bool deterministic = false;
    parse(line, p, deterministic);
    const ForwardPlan f = plan_forward(p, deterministic);
    const BackwardPlan b = plan_backward(p);
    std::ostringstream out;
    out << std::boolalpha;
    out << "{\"forward\": {\"path\": \"" << path_name(f.path) << "\", \"kfix\": " << f.kfix << ", \"B\": " << f.B
        << ", \"R\": " << f.R << ", \"blocks_per_sm\": " << f.blocks_per_sm << ", \"smem\": " << f.smem
        << ", \"chunks\": " << f.split.chunks << ", \"chunk\": " << f.split.chunk << ", \"blocks\": " << f.blocks
        << ", \"regions\": "
        << regions({{"buckets", f.workspace.buckets}, {"ghist", f.workspace.ghist}, {"gint", f.workspace.gint},
                    {"side", f.workspace.side}, {"partial", f.workspace.partial}, {"pq", f.workspace.pq}})
        << ", \"bytes\": " << f.workspace.bytes << ", \"api_bytes\": "
        << forward_workspace_bytes(p, deterministic) << "}, ";
    out << "\"backward\": {\"B\": " << b.B << ", \"smem\": " << b.smem << ", \"use_smem\": " << b.use_smem
        << ", \"chunks\": " << b.split.chunks << ", \"chunk\": " << b.split.chunk << ", \"blocks\": " << b.blocks
        << ", \"regions\": "
        << regions({{"buckets", b.workspace.buckets}, {"ab", b.workspace.ab}, {"uv", b.workspace.uv},
                    {"table", b.workspace.table}})
        << ", \"bytes\": " << b.workspace.bytes << ", \"api_bytes\": " << backward_workspace_bytes(p)
        << "}}";
    std::cout << out.str() << std::endl;
  }
  return 0;
}
