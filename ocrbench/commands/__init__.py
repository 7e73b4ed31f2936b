"""CLI subcommands, one module each; add a module here to add a command."""

from . import data, eval, list, report, run, train

COMMANDS = [list, train, eval, run, report, data]
