"""Errors the CLI turns into one clear line and a non-zero exit (user mistakes, not bugs)."""

from __future__ import annotations

import difflib


class UserError(Exception):
    """A mistake in the user's input: unknown name, bad config field, missing file."""


class UnknownNameError(UserError, KeyError):
    def __init__(self, kind: str, name: str, valid: list[str]):
        close = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        super().__init__(f"unknown {kind} {name!r}.{hint} Valid {kind}s: {', '.join(sorted(valid))}")
        self.name, self.valid = name, valid

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class DataError(UserError):
    """Missing or corrupt data: the message names the file and where to get it."""


class NotDownloaded(DataError):
    """A downloadable dataset is not in the cache yet: the message names the command that fetches it, so a
    suite can skip its evaluation set and say so instead of failing."""

    def __init__(self, dataset: str, searched: str):
        self.dataset, self.command = dataset, f"ocrbench data download {dataset}"
        super().__init__(f"dataset {dataset!r} is not downloaded (looked in {searched}): run `{self.command}`")
