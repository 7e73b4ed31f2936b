"""Importing this module registers the datasets shipped with ocrbench (synthetic, built-in real, user-supplied)."""
# ruff: noqa: F401
from ..datasets import emnist, emnist_lines, iam, memorials, synth_lines, synth_pages, xml_pages
