"""``python -m ocrbench``: the ``ocrbench`` command, also what ``torchrun -m ocrbench train ...`` starts."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
