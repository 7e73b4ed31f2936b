from . import synth_lines  # noqa: F401
