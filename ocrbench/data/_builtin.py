from . import synth_lines  # noqa: F401
from . import synth_pages  # noqa: F401
