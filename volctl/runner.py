"""The one place that starts external programs (the only user of `sh`).

Every command runs from PATH with LC_ALL=C, no shell, no terminal, closed stdin and a timeout.
A failure becomes CommandFailed with argv and stderr already masked, so a secret can never ride
out on an error message. Each finished command is reported to `on_command` (the history).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Callable, Iterable, Mapping, Sequence

from volctl.errors import CommandFailed, EnvironmentProblem, ToolMissing
from volctl.record import Record
from volctl.redact import mask, mask_argv

DEFAULT_TIMEOUT = 600.0
_BUFSIZE = 64 * 1024


def _log():
    import logging  # deferred: only -v shows this log, and the import costs every command

    return logging.getLogger("volctl")


class CommandResult(Record):
    """One finished program."""

    argv: tuple[str, ...]  # masked
    exit_code: int | None  # None: killed by the timeout
    stdout: str  # not masked: callers parse it; secrets do not appear in what we read
    stderr: str  # masked
    duration: float

    def __init__(self, argv: tuple[str, ...], exit_code: int | None, stdout: str, stderr: str, duration: float):
        self._init(locals())


CommandObserver = Callable[[CommandResult], None]


class Runner:
    def __init__(self, timeout: float = DEFAULT_TIMEOUT, on_command: CommandObserver | None = None):
        self.timeout = timeout
        self.on_command = on_command

    def run(
        self,
        argv: Sequence[str],
        *,
        secrets: Iterable[str] = (),
        ok_codes: Sequence[int] = (0,),
        timeout: float | None = None,
        on_stderr: Callable[[str], None] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """env: variables added to the program's environment (LVM's udev mode, lvm.conf)."""
        argv = [str(a) for a in argv]
        hidden = [s for s in secrets if s]
        shown = tuple(mask_argv(argv, hidden))
        limit = self.timeout if timeout is None else timeout
        extra = dict(env or {})
        _log().debug("run: %s", " ".join([*(f"{k}={v}" for k, v in extra.items()), *shown]))
        started = time.monotonic()
        code, out, err = self._start(argv, limit, on_stderr, extra)
        duration = time.monotonic() - started
        result = CommandResult(shown, code, out, mask(err, hidden), duration)
        _log().debug("exit %s after %.3f s: %s", code, duration, shown[0])
        if self.on_command is not None:
            self.on_command(result)
        if code is None:
            raise CommandFailed(shown, None, result.stderr, reason=f"timed out after {limit:g} s")
        if code not in ok_codes:
            raise CommandFailed(shown, code, result.stderr)
        return result

    def _start(
        self, argv: list[str], timeout: float, on_stderr: Callable[[str], None] | None, env: dict[str, str]
    ) -> tuple[int | None, str, str]:
        """Start the program and wait for it: (exit code, None when the timeout killed it; stdout;
        stderr), both unmasked. The one step a test host replaces, so masking, the log and the
        history in run() are the same code in tests as in production."""
        import sh  # deferred: read-only commands never start a program, so they need not pay for it

        try:
            program = sh.Command(argv[0])
        except sh.CommandNotFound:
            raise ToolMissing(argv[0]) from None
        # Our own timer, not sh's `_timeout`: sh's watcher thread polls every 0.1 s and each wait
        # joins it, which cost every program 100 ms (BENCHMARKS.md section 7). Large buffers: sh's
        # default line buffering handles each line in Python, 40x slower on a 1,000-LV `lvs`.
        options: dict = dict(
            _env={**os.environ, "LC_ALL": "C", **env},
            _ok_code=[0],
            _bg=True,
            _bg_exc=False,
            _tty_in=False,
            _tty_out=False,
            _in=None,
            _return_cmd=True,
            _decode_errors="replace",
            _out_bufsize=_BUFSIZE,
            _err_bufsize=_BUFSIZE,
            _internal_bufsize=_BUFSIZE,
        )
        streamed: list[str] = []
        if on_stderr is not None:
            def _on_err(chunk: str | bytes) -> None:
                text = chunk.decode("utf-8", "replace") if isinstance(chunk, bytes) else chunk
                streamed.append(text)
                on_stderr(text)

            options.update(_err=_on_err, _err_bufsize=0)
        try:
            running = program(*argv[1:], **options)
        except sh.ErrorReturnCode as e:
            return e.exit_code, _text(e.stdout), _text(e.stderr)
        except PermissionError:
            raise EnvironmentProblem(f"{argv[0]}: permission denied") from None
        killed = threading.Event()

        def kill() -> None:
            if running.process.exit_code is not None:
                return  # ended as the timer fired: not a timeout
            killed.set()
            try:
                running.signal(signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.daemon = True
        timer.start()
        try:
            running.wait()
            code, out, err = running.exit_code, _text(running.stdout), _text(running.stderr)
        except sh.ErrorReturnCode as e:
            code, out, err = e.exit_code, _text(e.stdout), _text(e.stderr)
        finally:
            timer.cancel()
        if killed.is_set():
            return None, "", "".join(streamed)
        return code, out, err or "".join(streamed)


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data
