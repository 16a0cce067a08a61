"""Fails when a built extension reaches past torch's stable ABI.

    python tools/check_stable_abi.py softset_fast/_C.abi3.so [more.so ...]

A stable-ABI extension calls torch only through the C shim (plain C names: aoti_torch_*, torch_*);
everything else it imports must come from the C/C++ runtimes (libc, libm, libstdc++, libgcc,
libgomp, the CUDA runtime) or the Python API. Any undefined C++ symbol of torch's own namespaces
(at::, c10::, torch::, caffe2::) binds the .so to one torch release's C++ ABI, and anything of
libtorch_python ties it to torch's Python bindings. Exit 1 lists the offenders, exit 0 says the
.so is clean. Reads the symbols with binutils (nm -D --undefined-only, c++filt, readelf -d); stdlib only.
"""
from __future__ import annotations

import re
import subprocess
import sys

TORCH_NAMESPACE = re.compile(r"(?<![\w:])(at|c10|torch|caffe2)::")
# What demangled libstdc++ / C++ runtime symbols start with (after "typeinfo for " and the like).
CXX_RUNTIME = ("std::", "__gnu_cxx::", "__cxxabiv1::", "operator new", "operator delete")
SPECIAL_PREFIX = re.compile(r"^(typeinfo name for |typeinfo for |vtable for |VTT for |construction vtable for |"
                            r"guard variable for |non-virtual thunk to |virtual thunk to )+")
FORBIDDEN_LIBRARIES = ("libtorch_python",)


def undefined_symbols(path: str) -> list[str]:
    """The dynamic symbols the .so imports, mangled, without their @VERSION suffix."""
    out = subprocess.run(["nm", "-D", "--undefined-only", path], check=True, capture_output=True, text=True).stdout
    return sorted({line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()})


def demangle(names: list[str]) -> list[str]:
    """c++filt of each name, in order (a C name comes back unchanged)."""
    if not names:
        return []
    out = subprocess.run(["c++filt"], input="\n".join(names) + "\n", check=True, capture_output=True, text=True).stdout
    return out.splitlines()


def needed_libraries(path: str) -> list[str]:
    out = subprocess.run(["readelf", "-d", path], check=True, capture_output=True, text=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def classify(mangled: str, demangled: str) -> str | None:
    """None for an allowed import, else why it is not."""
    if mangled.startswith("THP"):  # torch's Python bindings (THPVariable_Wrap, ...), in libtorch_python
        return "libtorch_python"
    if not mangled.startswith("_Z"):
        return None  # a C name: the shim (aoti_torch_*, torch_*), libc, libgomp, Python, CUDA runtime
    if TORCH_NAMESPACE.search(demangled):
        return "torch C++ (unstable ABI)"
    if SPECIAL_PREFIX.sub("", demangled).startswith(CXX_RUNTIME):
        return None
    return "C++ outside the standard library"


def violations(symbols: list[tuple[str, str]], libraries: list[str]) -> list[str]:
    """Lines naming every forbidden import, given (mangled, demangled) symbols and the NEEDED libraries."""
    found = [f"links {lib} (torch's Python bindings)" for lib in libraries if lib.startswith(FORBIDDEN_LIBRARIES)]
    for mangled, demangled in symbols:
        why = classify(mangled, demangled)
        if why is not None:
            found.append(f"{why}: {demangled}" + (f"  [{mangled}]" if demangled != mangled else ""))
    return found


def check(path: str) -> list[str]:
    names = undefined_symbols(path)
    return violations(list(zip(names, demangle(names))), needed_libraries(path))


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    status = 0
    for path in argv:
        found = check(path)
        if found:
            status = 1
            print(f"{path}: {len(found)} import(s) outside torch's stable ABI:")
            print("\n".join(f"  {line}" for line in found))
        else:
            print(f"{path}: only torch's stable C shim, the C/C++ runtimes and Python (stable ABI)")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
