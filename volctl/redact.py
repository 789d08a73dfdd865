"""Masking of CHAP secrets in any text that may reach a log, an error, history or a terminal."""

from __future__ import annotations

import re
from typing import Iterable

MASK = "***"

# provider_auth is "CHAP <user> <password>": mask the password wherever that shape shows up,
# even when the caller forgot to name the secret. Overlapping shapes ("CHAP CHAP <user> <password>")
# are all seen (a lookahead) and each one's password masked: which reading is meant cannot be told,
# and a user shown as *** costs less than a password shown.
_PROVIDER_AUTH = re.compile(r"(?=\bCHAP\s+(\S+)\s+(\S+))")


def mask(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    shapes = [(m.span(1), m.span(2)) for m in _PROVIDER_AUTH.finditer(text)]
    if not shapes:
        return text
    for start, end in sorted({password for _, password in shapes}, reverse=True):
        text = text[:start] + MASK + text[end:]
    return text


def mask_argv(argv: Iterable[str], secrets: Iterable[str] = ()) -> list[str]:
    hidden = [s for s in secrets if s]
    return [mask(arg, hidden) for arg in argv]
