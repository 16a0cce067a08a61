"""A progress bar for the command line: tqdm when installed, else a plain one on stderr."""
from __future__ import annotations

import sys
import time


class _PlainBar:
    """The few tqdm methods the CLI uses, printing ``desc: i/total [elapsed] postfix`` lines."""

    def __init__(self, total: int, desc: str, disable: bool):
        self.total, self.desc, self.disable = total, desc, disable
        self.count, self.postfix, self.start = 0, "", time.perf_counter()

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text

    def update(self, step: int = 1) -> None:
        self.count += step
        if not self.disable:
            elapsed = time.perf_counter() - self.start
            print(f"\r{self.desc}: {self.count}/{self.total} [{elapsed:5.1f}s] {self.postfix}"[:120],
                  end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if not self.disable:
            print(file=sys.stderr, flush=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def progress_bar(total: int, desc: str, disable: bool = False):
    """A context-managed bar with ``update()`` and ``set_postfix_str()``, written to stderr."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _PlainBar(total, desc, disable)
    return tqdm(total=total, desc=desc, disable=disable, file=sys.stderr, dynamic_ncols=True, leave=True)
