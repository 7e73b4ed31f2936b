"""Importing this module registers the datasets shipped with ocrbench (synthetic and user-supplied)."""
# ruff: noqa: F401
from . import emnist, emnist_lines, iam, synth_lines, synth_pages, xml_pages
