"""tools/check_stable_abi.py: which imports of a built extension it lets through (fixed symbol
lists, so no build is needed; mangled and demangled names as nm and c++filt give them)."""
import importlib.util
import os
import shutil

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("check_stable_abi", os.path.join(ROOT, "tools", "check_stable_abi.py"))
check_stable_abi = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_stable_abi)

# From a tiny STABLE_TORCH_LIBRARY extension built for torch 2.11 (TORCH_TARGET_VERSION=0x020b...).
STABLE = [
    ("aoti_torch_library_init_def", "aoti_torch_library_init_def"),
    ("aoti_torch_get_numel", "aoti_torch_get_numel"),
    ("torch_parallel_for", "torch_parallel_for"),
    ("torch_call_dispatcher", "torch_call_dispatcher"),
    ("PyModule_Create2", "PyModule_Create2"),
    ("GOMP_parallel", "GOMP_parallel"),
    ("strcmp", "strcmp"),
    ("cudaLaunchKernel", "cudaLaunchKernel"),
    ("_Unwind_Resume", "_Unwind_Resume"),
    ("__cxa_throw", "__cxa_throw"),
    ("_Znwm", "operator new(unsigned long)"),
    ("_ZdlPvm", "operator delete(void*, unsigned long)"),
    ("_ZNSt13runtime_errorC1EPKc", "std::runtime_error::runtime_error(char const*)"),
    ("_ZNSo9_M_insertIlEERSoT_", "std::ostream& std::ostream::_M_insert<long>(long)"),
    ("_ZTISt16invalid_argument", "typeinfo for std::invalid_argument"),
    ("_ZTVN10__cxxabiv117__class_type_infoE", "vtable for __cxxabiv1::__class_type_info"),
]
# From the extension built against torch's unstable C++ API (TORCH_LIBRARY, at::Tensor, autograd in C++).
UNSTABLE = [
    ("_ZN2at15get_num_threadsEv", "at::get_num_threads()"),
    ("_ZNK2at10TensorBase8data_ptrIfEEPT_v", "float* at::TensorBase::data_ptr<float>() const"),
    ("_ZNK3c1010TensorImpl13requires_gradEv", "c10::TensorImpl::requires_grad() const"),
    ("_ZN6caffe28TypeMeta13typeMetaDatasEv", "caffe2::TypeMeta::typeMetaDatas()"),
    ("_ZNK5torch8autograd4Node4nameB5cxx11Ev", "torch::autograd::Node::name[abi:cxx11]() const"),
    ("_ZNR5torch7Library5_implEPKcONS_11CppFunctionENS_17_RegisterOrVerifyE",
     "torch::Library::_impl(char const*, torch::CppFunction&&, torch::_RegisterOrVerify) &"),
    ("_ZTVN5torch8autograd4NodeE", "vtable for torch::autograd::Node"),
    # a standard-library template instantiated over a torch type, exported by libtorch
    ("_ZNSt6vectorIN2at6TensorESaIS1_EE17_M_realloc_insertIJRKS1_EEEvN9__gnu_cxx17__normal_iteratorIPS1_S3_EEDpOT_",
     "void std::vector<at::Tensor, std::allocator<at::Tensor> >::_M_realloc_insert<at::Tensor const&>(...)"),
]


def test_a_stable_abi_extension_passes():
    libraries = ["libc10.so", "libtorch_cpu.so", "libstdc++.so.6", "libgomp.so.1", "libgcc_s.so.1", "libc.so.6"]
    assert check_stable_abi.violations(STABLE, libraries) == []


@pytest.mark.parametrize("mangled, demangled", UNSTABLE)
def test_torch_cxx_symbols_fail(mangled, demangled):
    assert check_stable_abi.classify(mangled, demangled) == "torch C++ (unstable ABI)"


def test_every_offender_is_listed_with_both_names():
    found = check_stable_abi.violations(STABLE + UNSTABLE, ["libc10.so"])
    assert len(found) == len(UNSTABLE)
    assert "torch C++ (unstable ABI): at::get_num_threads()  [_ZN2at15get_num_threadsEv]" in found


def test_libtorch_python_fails():
    assert check_stable_abi.violations(STABLE, ["libtorch_python.so"]) == [
        "links libtorch_python.so (torch's Python bindings)"]
    assert check_stable_abi.classify("THPVariable_Wrap", "THPVariable_Wrap") == "libtorch_python"


@pytest.mark.parametrize("mangled, demangled", [
    ("_ZN8pybind116detail13get_internalsEv", "pybind11::detail::get_internals()"),
    ("_ZN4absl12StrCatEv", "absl::StrCat()"),
])
def test_other_cxx_libraries_fail(mangled, demangled):
    # only libstdc++'s C++ may be imported: anything else comes from a library torch happens to load
    assert check_stable_abi.classify(mangled, demangled) == "C++ outside the standard library"


def test_namespace_match_is_exact():
    # 'at::' inside another name (format::, cat::) is not torch's namespace
    assert check_stable_abi.classify("_ZNSt6chrono3fmtEv", "std::format::cat::x()") is None


def test_demangle_uses_cxxfilt():
    assert shutil.which("c++filt"), "binutils' c++filt is needed by tools/check_stable_abi.py"
    assert check_stable_abi.demangle(["_ZN2at15get_num_threadsEv", "aoti_torch_get_numel"]) == [
        "at::get_num_threads()", "aoti_torch_get_numel"]
