"""The ``ocrbench`` command line: thin subcommands over the library; no logic of its own.

Each subcommand lives in ``ocrbench/commands/<name>.py`` with ``register(subparsers)``; its handler returns a
dict, printed as one JSON object with ``--json`` or as readable text otherwise. User mistakes
(:class:`~ocrbench.errors.UserError`) become one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
import warnings

from .commands import command_modules
from .errors import UserError
from .progress import set_quiet

# a full disk or quota anywhere (a report, a plot) is the user's machine, not a bug: one line, exit 2
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocrbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in command_modules():
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    set_quiet(getattr(args, "quiet", False))
    formatwarning, warnings.formatwarning = warnings.formatwarning, _one_line_warning
    try:
        result = args.handler(args)
    except UserError as e:
        print(f"ocrbench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ocrbench: interrupted; finished results are kept, rerun to resume", file=sys.stderr)
        return 130
    except OSError as e:
        if e.errno not in _DISK_FULL:  # anything else is a bug or a machine fault: keep its traceback
            raise
        print(f"ocrbench: error: no space left on the device writing {e.filename or 'a file'}: free space and "
              "rerun (finished results are kept)", file=sys.stderr)
        return 2
    finally:
        set_quiet(False)  # main() may be called again in this process (tests, notebooks)
        warnings.formatwarning = formatwarning
    if getattr(args, "json", False):
        print(json.dumps(result, default=str))
    elif isinstance(result, dict) and result.get("text"):
        print(result["text"])
    return 0 if not (isinstance(result, dict) and result.get("failed")) else 1


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings to a user are one line: ours say what was skipped and where; the source line would only
    confuse (Python prints the line of ocrbench code that warned)."""
    return f"ocrbench: warning: {message}\n"


if __name__ == "__main__":
    sys.exit(main())
