// The part of torch's C++ API the glue uses, all of it from torch's stable ABI
// (torch/csrc/stable, torch/headeronly): setup.py compiles with TORCH_TARGET_VERSION set to the
// oldest supported torch, so the one built extension loads in every torch from that release on.
// Tensors are torch::stable::Tensor; errors are standard exceptions, which torch raises in Python
// as RuntimeError (std::runtime_error) or ValueError (std::invalid_argument).
#pragma once

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/BFloat16.h>
#include <torch/headeronly/util/Half.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace softset {

using Tensor = torch::stable::Tensor;
using OptionalTensor = std::optional<Tensor>;
using ScalarType = torch::headeronly::ScalarType;
using Half = c10::Half;
using BFloat16 = c10::BFloat16;

namespace detail {

template <typename T>
void append(std::ostringstream& out, const T& x) {
  out << x;
}

template <typename T>
void append(std::ostringstream& out, const std::vector<T>& xs) {
  out << '[';
  for (size_t i = 0; i < xs.size(); ++i) out << (i ? ", " : "") << xs[i];
  out << ']';
}

template <typename... Args>
std::string message(const Args&... args) {
  std::ostringstream out;
  (append(out, args), ...);
  return out.str();
}

}  // namespace detail

// Errors: the message is the arguments written one after another.
template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw std::runtime_error(detail::message(args...));
}

// A bad value of the data (softset_fast/backends/loss_autograd.py raises it as ValueError: torch maps
// std::invalid_argument to ValueError up to 2.14 only, to RuntimeError from 2.15 on).
constexpr const char* kValueErrorPrefix = "ValueError: ";

template <typename... Args>
[[noreturn]] void fail_value(const Args&... args) {
  throw std::invalid_argument(detail::message(kValueErrorPrefix, args...));
}

#define SOFTSET_CHECK(cond, ...) \
  do {                           \
    if (!(cond)) ::softset::fail(__VA_ARGS__); \
  } while (0)

#define SOFTSET_CHECK_VALUE(cond, ...) \
  do {                                 \
    if (!(cond)) ::softset::fail_value(__VA_ARGS__); \
  } while (0)

// Sizes as a vector, which messages print as Python prints a shape's list: [2, 3].
inline std::vector<int64_t> sizes_of(const Tensor& x) {
  const auto s = x.sizes();
  return std::vector<int64_t>(s.begin(), s.end());
}

inline bool same_device(const Tensor& a, const Tensor& b) {
  return a.device() == b.device();
}

// A device as torch prints it: "cpu", "cuda:0", "meta".
std::string device_name(const Tensor& x);

// torch's Python name of a dtype ("float32"), as the Python checks print it.
std::string dtype_name(ScalarType t);

inline bool is_floating(ScalarType t) {
  return t == ScalarType::Half || t == ScalarType::BFloat16 || t == ScalarType::Float || t == ScalarType::Double;
}

inline bool is_integral(ScalarType t) {  // bool excluded
  return t == ScalarType::Byte || t == ScalarType::Char || t == ScalarType::Short || t == ScalarType::Int ||
         t == ScalarType::Long || t == ScalarType::UInt16 || t == ScalarType::UInt32 || t == ScalarType::UInt64;
}

// x in dtype: x itself when it already is (an op must not return an alias of its input, which
// aten::to would give).
inline Tensor as_dtype(const Tensor& x, ScalarType dtype) {
  return x.scalar_type() == dtype ? x : torch::stable::to(x, dtype);
}

inline Tensor as_contiguous(const Tensor& x) {
  return x.is_contiguous() ? x : torch::stable::contiguous(x);
}

// Row-major strides of sizes.
inline std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& sizes) {
  std::vector<int64_t> strides(sizes.size());
  int64_t stride = 1;
  for (size_t i = sizes.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= std::max<int64_t>(sizes[i], 1);
  }
  return strides;
}

inline int64_t numel_of(const std::vector<int64_t>& sizes) {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  return n;
}

// Tensors are made through torch's C shim directly where they can be: a dispatched aten op
// (torch::stable::new_empty, reshape) looks its schema up by name on every call, which costs a
// small batch's step more than its kernels.

// A new contiguous tensor of sizes on like's device.
inline Tensor new_empty(const Tensor& like, const std::vector<int64_t>& sizes, ScalarType dtype) {
  const std::vector<int64_t> strides = contiguous_strides(sizes);
  const torch::stable::Device device = like.device();
  AtenTensorHandle out = nullptr;
  STABLE_TORCH_ERROR_CODE_CHECK(aoti_torch_empty_strided(
      static_cast<int64_t>(sizes.size()), sizes.data(), strides.data(),
      torch::stable::detail::to<int32_t>(torch::stable::detail::from(dtype)),
      torch::stable::detail::to<int32_t>(torch::stable::detail::from(device.type())), device.index(), &out));
  return Tensor(out);
}

inline Tensor new_zeros(const Tensor& like, const std::vector<int64_t>& sizes, ScalarType dtype) {
  Tensor out = new_empty(like, sizes, dtype);
  if (out.is_cpu()) {
    // An empty tensor's data pointer may be null, which memset must not get (even for 0 bytes).
    if (out.numel() > 0) std::memset(out.data_ptr(), 0, static_cast<size_t>(out.numel()) * out.element_size());
    return out;
  }
  return torch::stable::zero_(out);
}

// x viewed as sizes (no copy for a contiguous x), op naming the error when the element counts differ.
inline Tensor view_as_sizes(const Tensor& x, const std::vector<int64_t>& sizes, const char* op) {
  if (numel_of(sizes) != x.numel()) {
    fail(op, ": shape ", sizes, " does not hold a tensor of shape ", sizes_of(x));
  }
  if (!x.is_contiguous()) return torch::stable::reshape(x, sizes);
  const std::vector<int64_t> strides = contiguous_strides(sizes);
  AtenTensorHandle out = nullptr;
  // The offset argument is added to x's own storage offset: 0 keeps x's first element.
  STABLE_TORCH_ERROR_CODE_CHECK(aoti_torch__reinterpret_tensor(x.get(), static_cast<int64_t>(sizes.size()),
                                                              sizes.data(), strides.data(), 0, &out));
  return Tensor(out);
}

// An aten op by name, through torch's stable dispatcher call: the outputs, converted to Out.
template <typename Out, typename... Args>
Out call_aten(const char* name, const char* overload, const Args&... args) {
  constexpr size_t kArgs = sizeof...(Args);
  std::array<StableIValue, (kArgs > 2 ? kArgs : 2)> stack{torch::stable::detail::from(args)...};
  STABLE_TORCH_ERROR_CODE_CHECK(torch_call_dispatcher(name, overload, stack.data(), TORCH_ABI_VERSION));
  if constexpr (std::is_same_v<Out, std::pair<Tensor, Tensor>>) {
    return {torch::stable::detail::to<Tensor>(stack[0]), torch::stable::detail::to<Tensor>(stack[1])};
  } else {
    return torch::stable::detail::to<Out>(stack[0]);
  }
}

}  // namespace softset
