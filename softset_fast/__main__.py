"""``python -m softset_fast``: see softset_fast.cli.main."""
import sys

from .cli.main import main

if __name__ == "__main__":
    sys.exit(main())
