"""CLI subcommands, one module each; add a module here to add a command."""

from . import ci, data, eval, list, lm, lr_find, page, profile, report, run, train, viz

COMMANDS = [list, train, eval, run, report, ci, data, profile, page, lr_find, viz, lm]
