"""The import-time check for two C++ runtimes in one process (softset_fast/backends/libstdcxx_check.py):
its /proc/self/maps parsing and verdicts on fake input, and a clean verdict for this process."""
import io
import os
import shutil
import subprocess
import sys
import warnings

import pytest

import softset_fast
from softset_fast.backends import libstdcxx_check
from softset_fast.backends.registry import unavailable_reason

SYSTEM = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30"
PRIVATE = "/opt/gcc/lib64/libstdc++.so.6.0.32"

FAKE_MAPS = f"""\
55d0c0a00000-55d0c0a2c000 r--p 00000000 fe:00 1049                       /usr/bin/python3.11
7f2e06600000-7f2e06699000 r--p 00000000 fe:00 339903                     {SYSTEM}
7f2e06699000-7f2e0679a000 r-xp 00099000 fe:00 339903                     {SYSTEM}
7f2e06814000-7f2e06817000 rw-p 00214000 fe:00 339903                     {SYSTEM}
7f2e06817000-7f2e0681a000 rw-p 00000000 00:00 0
7f2e1cf32000-7f2e1cf35000 r--p 00000000 fe:00 339525                     /usr/lib/x86_64-linux-gnu/libgcc_s.so.1
7f2e20000000-7f2e20099000 r-xp 00099000 fe:00 771234                     {PRIVATE}
7f2e20100000-7f2e20101000 r--p 00000000 fe:00 771240                     /tmp/with space/libstdc++.so.6 (deleted)
7ffd4a5e0000-7ffd4a601000 rw-p 00000000 00:00 0                          [stack]
"""


def test_maps_parsing_finds_each_distinct_libstdcxx_once():
    assert libstdcxx_check.mapped_libstdcxx(FAKE_MAPS) == [SYSTEM, PRIVATE, "/tmp/with space/libstdc++.so.6"]
    one = "\n".join(line for line in FAKE_MAPS.splitlines() if "/opt/" not in line and "/tmp/" not in line)
    assert libstdcxx_check.mapped_libstdcxx(one) == [SYSTEM]
    assert libstdcxx_check.mapped_libstdcxx("") == []


def test_two_mapped_copies_are_a_mismatch_naming_both_and_the_fix():
    problem = libstdcxx_check.describe(libstdcxx_check.mapped_libstdcxx(FAKE_MAPS)[:2], SYSTEM, SYSTEM)
    assert problem is not None
    assert SYSTEM in problem and PRIVATE in problem and "CC=/usr/bin/gcc CXX=/usr/bin/g++" in problem


def test_extension_resolving_elsewhere_is_a_mismatch():
    ext = "/site/softset_fast/_C.abi3.so"
    own_copy = libstdcxx_check.describe([SYSTEM], ext, SYSTEM, ext)
    assert own_copy is not None and "its own copy" in own_copy and SYSTEM in own_copy
    other = libstdcxx_check.describe([SYSTEM, PRIVATE], PRIVATE, SYSTEM, ext)
    assert other is not None and f"resolves libstdc++ to {PRIVATE}" in other


def test_one_runtime_is_not_a_mismatch():
    assert libstdcxx_check.describe([SYSTEM], SYSTEM, SYSTEM, "/x/_C.so") is None
    assert libstdcxx_check.describe([SYSTEM], None, None) is None  # unknown resolution: maps alone decide
    assert libstdcxx_check.describe([], None, None) is None


def test_warning_carries_the_problem(monkeypatch):
    monkeypatch.setattr(libstdcxx_check, "check", lambda: ("MISMATCH", "two runtimes; fix it"))
    with pytest.warns(RuntimeWarning, match="softset_fast: two runtimes; fix it"):
        libstdcxx_check.warn_on_mismatch()
    monkeypatch.setattr(libstdcxx_check, "check", lambda: ("fine", None))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        libstdcxx_check.warn_on_mismatch()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
@pytest.mark.skipif(unavailable_reason("cpu") is not None, reason="the C++ extension is not built")
def test_this_process_has_one_runtime():
    facts = libstdcxx_check._facts()
    assert len(facts["mapped"]) == 1, facts
    assert facts["extension_runtime"] is not None and facts["torch_runtime"] is not None, facts
    assert facts["extension_runtime"] == facts["torch_runtime"] == os.path.realpath(facts["mapped"][0]), facts
    summary, problem = libstdcxx_check.check()
    assert problem is None and facts["torch_runtime"] in summary
    out = io.StringIO()
    config = softset_fast.show_config(file=out)
    assert config["libstdcxx_mismatch"] is None
    assert f"libstdc++:           {summary}" in out.getvalue().splitlines()


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("g++") is None, reason="needs Linux and g++")
def test_a_library_with_its_own_libstdcxx_is_caught(tmp_path):
    """A static copy maps no second libstdc++ file; the symbol look-up still finds it (real ELF, real loader)."""
    source = tmp_path / "own.cpp"
    source.write_text('#include <locale>\n'
                      'extern "C" int probe() { return (int)std::locale::classic().name().size(); }\n')
    library = tmp_path / "libown.so"
    subprocess.run(["g++", "-shared", "-fPIC", "-static-libstdc++", str(source), "-o", str(library)], check=True)
    script = f"""
import ctypes, torch
from softset_fast.backends import libstdcxx_check as c
ctypes.CDLL({str(library)!r}).probe()
print(c.describe([], c.symbol_file({str(library)!r}), c.symbol_file(torch._C.__file__), {str(library)!r}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert "carries its own copy of libstdc++" in done.stdout, done.stdout + done.stderr
