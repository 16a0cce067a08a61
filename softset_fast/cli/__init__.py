"""The command line tools: ``python -m softset_fast {demo,bench,info}`` (main.py), the benchmark
harness (bench.py), the paper's demo (demo.py) and its OpenML datasets (datasets.py), their
progress bar (progress.py) and their optional packages (extras.py)."""
