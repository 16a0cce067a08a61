"""A progress bar for the command line: tqdm on a terminal when installed, else a plain one."""
from __future__ import annotations

import sys
import time


class _PlainBar:
    """The few tqdm methods the CLI uses, printing ``desc: i/total [elapsed] postfix`` lines.

    On a terminal each update overwrites the last (``\\r``); elsewhere (a log file, a pipe, CI)
    each update is a line of its own, so the log stays readable.
    """

    def __init__(self, total: int, desc: str, disable: bool, stream=None):
        self.total, self.desc, self.disable = total, desc, disable
        self.stream = sys.stderr if stream is None else stream
        self.tty = self.stream.isatty()
        self.count, self.postfix, self.start = 0, "", time.perf_counter()

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text

    def update(self, step: int = 1) -> None:
        self.count += step
        if not self.disable:
            elapsed = time.perf_counter() - self.start
            line = f"{self.desc}: {self.count}/{self.total} [{elapsed:5.1f}s] {self.postfix}"[:120]
            if self.tty:
                print("\r" + line, end="", file=self.stream, flush=True)
            else:
                print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if not self.disable and self.tty:
            print(file=self.stream, flush=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def progress_bar(total: int, desc: str, disable: bool = False, stream=None):
    """A context-managed bar with ``update()`` and ``set_postfix_str()``, written to ``stream`` (stderr).

    tqdm only on a terminal: elsewhere it too joins its updates with ``\\r`` into one line.
    """
    stream = sys.stderr if stream is None else stream
    if stream.isatty():
        try:
            from tqdm.auto import tqdm
        except ImportError:
            pass
        else:
            return tqdm(total=total, desc=desc, disable=disable, file=stream, dynamic_ncols=True, leave=True)
    return _PlainBar(total, desc, disable, stream)
