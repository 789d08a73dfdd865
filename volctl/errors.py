"""The one error hierarchy. Each class carries the contract's exit code; messages are for operators."""

from __future__ import annotations

from enum import IntEnum
from typing import Iterable, Sequence


def escaped(text: str) -> str:
    """text with every character that could break a one-line message made visible: control
    characters as Python escapes, and bytes that were not UTF-8 (surrogate-escaped by Python's
    argv decoding) as \\xNN, the byte the operator typed."""
    if text.isprintable():
        return text
    out = []
    for char in text:
        if "\udc80" <= char <= "\udcff":
            out.append(f"\\x{ord(char) - 0xDC00:02x}")
        elif char.isprintable():
            out.append(char)
        else:
            out.append(repr(char)[1:-1])
    return "".join(out)


def quoted(value: object) -> str:
    """A value as an error message shows it: quoted, always on one line."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "surrogateescape")
    if isinstance(value, str):
        return "'" + escaped(value.replace("\\", "\\\\").replace("'", "\\'")) + "'"
    return escaped(repr(value))


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1
    USAGE = 2
    NOT_FOUND = 3
    ALREADY_EXISTS = 4
    INVALID_STATE = 5
    COMMAND_FAILED = 6
    ENVIRONMENT = 7


class VolctlError(Exception):
    exit_code: ExitCode = ExitCode.INTERNAL


class UsageError(VolctlError):
    exit_code = ExitCode.USAGE


class NotFound(VolctlError):
    exit_code = ExitCode.NOT_FOUND


class AlreadyExists(VolctlError):
    exit_code = ExitCode.ALREADY_EXISTS


class InvalidState(VolctlError):
    """The volume's state does not allow the action; names what was expected and what is."""

    exit_code = ExitCode.INVALID_STATE

    def __init__(self, volume: str, action: str, expected: Iterable[str], current: str, why: str = "",
                 kind: str = "volume"):
        self.volume, self.action, self.current = volume, action, current
        self.expected = tuple(expected)
        wanted = " or ".join(f"'{s}'" for s in self.expected)
        message = f"{kind} {volume} is '{current}'; {action} needs {wanted}"
        super().__init__(f"{message} ({why})" if why else message)


class NoSpace(VolctlError):
    """Admission refused a create, snapshot, clone or extend: the pool or group has not the room
    (the message names the numbers). Nothing was claimed, made or recorded: exit 5."""

    exit_code = ExitCode.INVALID_STATE


class CommandFailed(VolctlError):
    """An external program exited non-zero. argv and stderr arrive here already masked."""

    exit_code = ExitCode.COMMAND_FAILED

    def __init__(self, argv: Sequence[str], returncode: int | None, stderr: str, reason: str = ""):
        self.argv, self.returncode, self.stderr = list(argv), returncode, stderr
        last_line = next((line for line in reversed(stderr.strip().splitlines()) if line.strip()), "")
        outcome = reason or f"exit code {returncode}"
        text = f"command failed: {' '.join(self.argv)}: {outcome}"
        super().__init__(f"{text}: {last_line.strip()}" if last_line else text)


class EnvironmentProblem(VolctlError):
    """A tool is missing, permission is denied, or the inventory cannot be used."""

    exit_code = ExitCode.ENVIRONMENT


class ToolMissing(EnvironmentProblem):
    def __init__(self, program: str):
        self.program = program
        super().__init__(f"{program}: not found on PATH")


class TargetFailed(VolctlError):
    """The in-process target helper (rtslib) could not change LIO; the message names what."""

    exit_code = ExitCode.COMMAND_FAILED


class NotRestorable(VolctlError):
    """An export restore cannot re-create until the inventory is settled (doctor, reset-state,
    export): exit 5."""

    exit_code = ExitCode.INVALID_STATE


class RestoreFailed(VolctlError):
    """The host is missing something restore cannot re-create (an LV): exit 6."""

    exit_code = ExitCode.COMMAND_FAILED
