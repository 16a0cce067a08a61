"""Command line: ``python -m softset_fast {demo,bench,info,--version}`` (also installed as ``softset-fast``)."""
from __future__ import annotations

import argparse
import sys


def info() -> int:
    """What is built and usable here (softset_fast.show_config)."""
    from softset_fast import show_config
    show_config()
    return 0


def version() -> str:
    """'softset_fast 0.1.0 (softset-fast-cu130)': the version and, for a build, the distribution it was built as."""
    from softset_fast import __version__
    from softset_fast._config import build_info
    built = build_info()
    if built is None or not built.get("distribution"):
        return f"softset_fast {__version__}"
    return f"softset_fast {built['version']} ({built['distribution']})"


def main(argv: list[str] | None = None) -> int:
    from . import bench, demo

    parser = argparse.ArgumentParser(prog="python -m softset_fast",
                                     description="softset_fast: soft-set confusion-matrix metrics as losses")
    parser.add_argument("--version", action="version", version=version())
    commands = parser.add_subparsers(dest="command", required=True)
    demo.add_arguments(commands.add_parser(
        "demo", help="train an MLP with BCE and the F1 / accuracy / AUROC / F2 losses (Tsoi et al. §5.1)"))
    bench.add_arguments(commands.add_parser(
        "bench", help="time and measure the memory of every backend against the reference",
        description=bench.DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter))
    commands.add_parser("info", help="version, torch and the backends available here")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo.main(args)
    if args.command == "bench":
        return bench.main(args)
    return info()


if __name__ == "__main__":
    sys.exit(main())
