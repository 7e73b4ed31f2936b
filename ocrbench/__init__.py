"""ocrbench: handwriting text recognition architectures compared under one fixed, honest harness."""

__version__ = "0.1.0"

from . import _deprecated  # noqa: E402  (old module paths of 0.1 keep importing)

_deprecated.install()
