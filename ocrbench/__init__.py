"""ocrbench: handwriting text recognition architectures compared under one fixed, honest harness."""

__version__ = "0.1.0"
