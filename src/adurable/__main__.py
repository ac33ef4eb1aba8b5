"""``python -m adurable``: the ``adurable`` command line (see ``adurable._cli``)."""

import sys

from adurable._cli import main

if __name__ == "__main__":
    sys.exit(main())
