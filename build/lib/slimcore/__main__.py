"""`python -m slimcore`: the command line (see slimcore.cli)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
