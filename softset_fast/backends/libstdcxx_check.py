"""Import-time check that softset_fast._C and torch share one libstdc++.

A compiler that links its own libstdc++ into the extension (seen on a GPU machine whose
default g++ linked a private copy) leaves two C++ runtimes in one process: every C++
error the extension throws (each TORCH_CHECK) then segfaults instead of raising. Two signs
of it: more than one distinct libstdc++ file mapped (/proc/self/maps), or a libstdc++
symbol that the extension resolves to another file than torch does (a copy linked into
``_C`` itself maps no second file). Linux only; elsewhere nothing is checked.
"""
from __future__ import annotations

import ctypes
import os
import sys
import warnings

FIX = ("rebuild the extension with the system compiler: `CC=/usr/bin/gcc CXX=/usr/bin/g++ "
       "pip install --no-build-isolation -e .` (or `python setup.py build_ext --inplace`)")
# std::locale::classic(): in every libstdc++, and used by anything that formats a message.
_PROBE_SYMBOL = "_ZNSt6locale7classicEv"


def mapped_libstdcxx(maps_text: str) -> list[str]:
    """Distinct libstdc++ files in /proc/<pid>/maps text, in the order first mapped."""
    paths: list[str] = []
    for line in maps_text.splitlines():
        fields = line.split(maxsplit=5)  # address perms offset dev inode [path, which may hold spaces]
        if len(fields) < 6:
            continue
        path = fields[5].strip()
        if path.endswith(" (deleted)"):
            path = path[: -len(" (deleted)")]
        name = os.path.basename(path)
        if name.startswith("libstdc++.so") and path not in paths:
            paths.append(path)
    return paths


def describe(mapped: list[str], extension_runtime: str | None, torch_runtime: str | None,
             extension_path: str | None = None) -> str | None:
    """What is wrong and the fix, or None when one libstdc++ serves both (pure: testable on fakes).

    mapped: the libstdc++ files mapped in the process; extension_runtime / torch_runtime: the
    file the probe symbol resolves to from softset_fast._C / torch._C (None: unknown).
    """
    if extension_runtime and torch_runtime and extension_runtime != torch_runtime:
        if extension_path and extension_runtime == extension_path:
            where = "carries its own copy of libstdc++ (linked in by the compiler that built it)"
        else:
            where = f"resolves libstdc++ to {extension_runtime}"
        return (f"softset_fast._C {where} but torch uses {torch_runtime}; with two C++ runtimes every "
                f"error the extension raises crashes the process instead; {FIX}")
    if len(mapped) > 1:
        return (f"{len(mapped)} copies of libstdc++ are loaded ({', '.join(mapped)}); with two C++ runtimes "
                f"an error raised by softset_fast._C can crash the process instead; {FIX}")
    return None


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def _dladdr():
    for name in (None, "libdl.so.2"):  # libc since glibc 2.34, libdl before
        try:
            function = ctypes.CDLL(name).dladdr
        except (OSError, AttributeError):
            continue
        function.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
        function.restype = ctypes.c_int
        return function
    return None


def symbol_file(library_path: str, symbol: str = _PROBE_SYMBOL) -> str | None:
    """The real path of the file that ``symbol`` resolves to from the loaded ``library_path``
    (dlsym searches the library, then its dependencies), or None when it cannot be told."""
    dladdr = _dladdr()
    if dladdr is None:
        return None
    try:  # RTLD_NOLOAD: the handle of the copy already loaded, never a second one
        address = ctypes.cast(ctypes.CDLL(library_path, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)[symbol],
                              ctypes.c_void_p).value
    except (OSError, AttributeError):
        return None
    info = _DlInfo()
    if not dladdr(address, ctypes.byref(info)) or not info.dli_fname:
        return None
    return os.path.realpath(os.fsdecode(info.dli_fname))


def _facts() -> dict:
    import torch

    from .. import _C
    with open("/proc/self/maps") as f:
        mapped = mapped_libstdcxx(f.read())
    extension_path = os.path.realpath(_C.__file__)
    return {"mapped": mapped, "extension_path": extension_path,
            "extension_runtime": symbol_file(extension_path), "torch_runtime": symbol_file(torch._C.__file__)}


_RESULT: list = []  # computed once per process: (summary line, mismatch or None)


def check() -> tuple[str, str | None]:
    """(one line saying which libstdc++ serves the extension, the mismatch with the fix or None)."""
    if not _RESULT:
        _RESULT.append(_compute())
    return _RESULT[0]


def _compute() -> tuple[str, str | None]:
    if not sys.platform.startswith("linux"):
        return "not checked (Linux only)", None
    try:
        facts = _facts()
    except (ImportError, OSError) as err:
        return f"not checked ({type(err).__name__}: {err})", None
    problem = describe(facts["mapped"], facts["extension_runtime"], facts["torch_runtime"], facts["extension_path"])
    if problem is not None:
        return "MISMATCH: " + problem, problem
    runtime = facts["torch_runtime"] or (facts["mapped"][0] if facts["mapped"] else None)
    return (f"{runtime} (one copy, shared with torch)" if runtime else "none mapped"), None


def warn_on_mismatch() -> None:
    problem = check()[1]
    if problem is not None:
        warnings.warn(f"softset_fast: {problem}", RuntimeWarning, stacklevel=3)
