"""The command line tools: ``python -m softset_fast {demo,bench,info}`` (main.py), the benchmark
harness (bench.py), the paper's demo (demo.py) and their progress bar (progress.py)."""
