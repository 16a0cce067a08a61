"""Command line: ``python -m softset_fast {demo,bench,info}`` (also installed as ``softset-fast``)."""
from __future__ import annotations

import argparse
import importlib.util
import sys


def info() -> int:
    """What is built and usable here; the detailed report lives in softset_fast._config when present."""
    import torch

    import softset_fast as sf
    if importlib.util.find_spec("softset_fast._config") is not None:
        from softset_fast._config import show_config
        result = show_config()
        if isinstance(result, str):
            print(result)
        return 0
    from softset_fast._backends import BACKENDS, unavailable_reason
    print(f"softset_fast {sf.__version__}")
    print(f"torch {torch.__version__} (CUDA available: {torch.cuda.is_available()})")
    print(f"torch threads: {torch.get_num_threads()}")
    print(f"available backends: {sf.available_backends()}")
    for name in BACKENDS:
        reason = unavailable_reason(name)
        if reason is not None:
            print(f"  {name}: unavailable: {reason}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from . import bench, demo

    parser = argparse.ArgumentParser(prog="python -m softset_fast",
                                     description="softset_fast: soft-set confusion-matrix metrics as losses")
    commands = parser.add_subparsers(dest="command", required=True)
    demo.add_arguments(commands.add_parser(
        "demo", help="train an MLP with BCE and the F1 / accuracy / AUROC / F2 losses (Tsoi et al. §5.1)"))
    bench.add_arguments(commands.add_parser(
        "bench", help="time and measure the memory of every backend against the reference"))
    commands.add_parser("info", help="version, torch and the backends available here")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo.main(args)
    if args.command == "bench":
        return bench.main(args)
    return info()


if __name__ == "__main__":
    sys.exit(main())
