"""Transcription conventions of eScriptorium-style transcriptions: superscripts and struck-out text."""

from __future__ import annotations

import re

from ...errors import UserError

CONVENTION_MODES = ("keep", "strip", "drop", "map")
SUPERSCRIPT, STRIKETHROUGH, TOKEN = "strip", "drop", "#"  # the defaults (see apply_conventions)
_STRIKE = re.compile(r"⟦(.*?)⟧", re.S)
_SUPER = re.compile(r"\^(\S*)")


def apply_conventions(text: str, superscript: str = SUPERSCRIPT, strikethrough: str = STRIKETHROUGH,
                      token: str = TOKEN) -> str:
    """Apply the transcription conventions of eScriptorium-style transcriptions (e.g. the Stanford memorials pages).

    ``^`` marks the following run of non-space characters as superscript (``M^r``); ``⟦ ⟧`` wrap struck-out
    or illegible text. Each convention is one of:

    * ``keep``: leave the markup in the text (the charset must then hold ``^``/``⟦``/``⟧``, or the OOV
      policy applies);
    * ``strip``: remove the markers, keep the text they mark (``M^r`` → ``Mr``, ``⟦the⟧`` → ``the``);
    * ``drop``: remove the markers and the marked text (``M^r`` → ``M``, ``a ⟦the⟧ b`` → ``a b``);
    * ``map``: replace the marked span with ``token`` (``⟦the⟧`` → ``#``).

    Defaults: superscripts stripped (a reader types ``Mr``), struck-out text dropped (it is not part of the
    text the writer meant). Whitespace is collapsed afterwards by the charset's NFC step.
    """
    for mode in (superscript, strikethrough):
        if mode not in CONVENTION_MODES:
            raise UserError(f"transcription convention mode must be one of {CONVENTION_MODES}, got {mode!r}")
    text = _convert(text, _STRIKE, strikethrough, token)
    return _convert(text, _SUPER, superscript, token)


def _convert(text: str, pattern: re.Pattern, mode: str, token: str) -> str:
    if mode == "keep":
        return text
    repl = {"strip": lambda m: m.group(1), "drop": lambda m: "", "map": lambda m: token}[mode]
    return pattern.sub(repl, text)
