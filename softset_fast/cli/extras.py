"""The command line's optional packages (the ``bench`` extra), looked for before a command works.

``demo`` and ``bench`` run without them and say once, up front, what they skip, rather than
failing with ModuleNotFoundError after minutes of training or timing.
"""
from __future__ import annotations

import importlib

INSTALL = 'pip install "softset_fast[bench]"'


def importable(name: str) -> bool:
    """Whether ``import name`` works (a broken install counts as missing)."""
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def missing(command: str, needs: dict[str, str]) -> set[str]:
    """The packages of ``needs`` (name -> what the command skips without it) that are not installed.

    Prints one line naming them, what is skipped and the install command, when any is missing.
    """
    absent = {name: skipped for name, skipped in needs.items() if not importable(name)}
    if absent:
        print(f"{command}: {', '.join(absent)} not installed, so {'; '.join(absent.values())} "
              f"(to add: {INSTALL})", flush=True)
    return set(absent)
