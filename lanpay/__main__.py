"""``python3 -m lanpay`` runs the command line."""

import sys

from lanpay.cli import main

if __name__ == "__main__":
    sys.exit(main())
