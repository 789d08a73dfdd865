"""Masking of CHAP secrets in any text that may reach a log, an error, history or a terminal."""

from __future__ import annotations

import re
from typing import Iterable

MASK = "***"

# provider_auth is "CHAP <user> <password>": mask the password wherever that shape shows up,
# even when the caller forgot to name the secret.
_PROVIDER_AUTH = re.compile(r"\b(CHAP\s+\S+\s+)\S+")


def mask(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return _PROVIDER_AUTH.sub(lambda m: m.group(1) + MASK, text)


def mask_argv(argv: Iterable[str], secrets: Iterable[str] = ()) -> list[str]:
    hidden = [s for s in secrets if s]
    return [mask(arg, hidden) for arg in argv]
