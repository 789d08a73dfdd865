"""The Runner against real processes (`sh -c ...`): no mocks."""

from __future__ import annotations

import logging
import os
import stat

import pytest

from volctl.errors import CommandFailed, ExitCode, ToolMissing
from volctl.runner import CommandResult, Runner

SECRET = "Jo57JJGdFmiLqNtK"


@pytest.fixture
def records():
    return []


@pytest.fixture
def runner(records):
    return Runner(timeout=20, on_command=records.append)


def test_stdout_is_captured(runner):
    result = runner.run(["sh", "-c", 'printf "hello\\nworld\\n"; printf "warn\\n" >&2'])
    assert result.stdout == "hello\nworld\n"
    assert result.stderr == "warn\n"
    assert result.exit_code == 0
    assert result.argv == ("sh", "-c", 'printf "hello\\nworld\\n"; printf "warn\\n" >&2')


def test_large_output_is_whole_on_both_streams(runner):
    """An `lvs` of thousands of LVs: every byte of a big stdout and stderr, in order."""
    script = 'seq 1 200000; seq 1 50000 >&2; printf "é-last"'
    result = runner.run(["sh", "-c", script])
    assert result.stdout == "".join(f"{i}\n" for i in range(1, 200001)) + "é-last"
    assert result.stderr == "".join(f"{i}\n" for i in range(1, 50001))


def test_output_after_the_program_exits_with_a_failure_is_whole(runner):
    with pytest.raises(CommandFailed) as info:
        runner.run(["sh", "-c", "seq 1 100000 >&2; exit 3"])
    assert info.value.returncode == 3
    assert info.value.stderr.endswith("99999\n100000\n")


def test_no_shell_between_us_and_the_program(runner):
    result = runner.run(["printf", "%s|", "$HOME; ls", "*", "`id`"])
    assert result.stdout == "$HOME; ls|*|`id`|"


def test_lc_all_is_c_in_the_child(runner, monkeypatch):
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    monkeypatch.setenv("VOLCTL_TEST_MARKER", "kept")
    result = runner.run(["sh", "-c", 'printf "%s %s" "$LC_ALL" "$VOLCTL_TEST_MARKER"'])
    assert result.stdout == "C kept"
    assert os.environ["LC_ALL"] == "de_DE.UTF-8"  # our own environment is left alone


def test_stdin_is_closed(runner):
    # A child that reads stdin gets EOF at once instead of waiting for a terminal.
    assert runner.run(["cat"], timeout=10).stdout == ""
    out = runner.run(["sh", "-c", "if read line; then echo got; else echo eof; fi"], timeout=10).stdout
    assert out == "eof\n"


def test_no_terminal(runner):
    out = runner.run(["sh", "-c", "[ -t 0 ] && echo in-tty || echo in-notty; [ -t 1 ] && echo out-tty || echo out-notty"]).stdout
    assert out == "in-notty\nout-notty\n"


def test_non_zero_exit_is_command_failed_with_masked_argv_and_stderr(runner, records):
    argv = ["sh", "-c", 'echo "rtstool: bad password $1" >&2; echo "line two" >&2; exit 3', "sh", SECRET]
    with pytest.raises(CommandFailed) as info:
        runner.run(argv, secrets=[SECRET])
    error = info.value
    assert error.exit_code == ExitCode.COMMAND_FAILED == 6
    assert error.returncode == 3
    assert SECRET not in str(error)
    assert SECRET not in " ".join(error.argv)
    assert SECRET not in error.stderr
    assert error.argv[-1] == "***"
    assert error.stderr == "rtstool: bad password ***\nline two\n"
    text = str(error)
    assert text.startswith("command failed: sh -c ")
    assert "exit code 3" in text
    assert text.endswith(": line two")  # the last stderr line
    # The observer (the history) got the same masked record.
    assert len(records) == 1
    record = records[0]
    assert isinstance(record, CommandResult)
    assert record.exit_code == 3
    assert SECRET not in " ".join(record.argv) and SECRET not in record.stderr
    assert record.stderr == error.stderr


def test_secret_in_argv_is_masked_on_success_too(runner, records):
    result = runner.run(["sh", "-c", "echo ok >&2", "sh", f"--password={SECRET}"], secrets=[SECRET, ""])
    assert result.argv[-1] == "--password=***"
    assert SECRET not in repr(records)


def test_provider_auth_shape_masked_without_naming_secret(runner):
    with pytest.raises(CommandFailed) as info:
        runner.run(["sh", "-c", f"echo 'auth CHAP user {SECRET}' >&2; exit 1"])
    assert SECRET not in str(info.value)


def test_debug_log_never_shows_the_secret(runner, caplog):
    with caplog.at_level(logging.DEBUG, logger="volctl"):
        runner.run(["sh", "-c", "true", "sh", SECRET], secrets=[SECRET])
        with pytest.raises(CommandFailed):
            runner.run(["sh", "-c", 'echo "$1" >&2; exit 2', "sh", SECRET], secrets=[SECRET])
    assert "sh -c" in caplog.text
    assert SECRET not in caplog.text


def test_ok_codes(runner, records):
    result = runner.run(["sh", "-c", "echo partial; exit 1"], ok_codes=(0, 1))
    assert result.exit_code == 1
    assert result.stdout == "partial\n"
    with pytest.raises(CommandFailed) as info:
        runner.run(["sh", "-c", "exit 0"], ok_codes=(1,))
    assert info.value.returncode == 0
    assert [r.exit_code for r in records] == [1, 0]


def test_timeout_is_command_failed_naming_the_timeout(runner, records):
    with pytest.raises(CommandFailed) as info:
        runner.run(["sh", "-c", "echo started >&2; sleep 30"], timeout=0.5)
    assert info.value.returncode is None
    assert "timed out after 0.5 s" in str(info.value)
    assert info.value.exit_code == 6
    assert records and records[-1].exit_code is None


def test_default_timeout_from_the_runner():
    with pytest.raises(CommandFailed) as info:
        Runner(timeout=0.3).run(["sleep", "30"])
    assert "timed out after 0.3 s" in str(info.value)


def test_missing_program_is_tool_missing(runner, records):
    with pytest.raises(ToolMissing) as info:
        runner.run(["volctl-no-such-program", "--version"])
    assert info.value.exit_code == ExitCode.ENVIRONMENT == 7
    assert "volctl-no-such-program" in str(info.value)
    assert records == []


def test_program_is_found_on_path(runner, tmp_path, monkeypatch):
    tool = tmp_path / "bin" / "cinder-rtstool"
    tool.parent.mkdir()
    tool.write_text('#!/bin/sh\necho "fake rtstool $*"\n')
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tool.parent}:{os.environ['PATH']}")
    assert runner.run(["cinder-rtstool", "get-targets"]).stdout == "fake rtstool get-targets\n"


def test_observer_receives_every_command_in_order(runner, records):
    runner.run(["sh", "-c", "echo one"])
    runner.run(["sh", "-c", "echo two >&2"])
    with pytest.raises(CommandFailed):
        runner.run(["sh", "-c", "exit 9"])
    assert [r.argv[-1] for r in records] == ["echo one", "echo two >&2", "exit 9"]
    assert [r.exit_code for r in records] == [0, 0, 9]
    assert records[0].stdout == "one\n" and records[1].stderr == "two\n"
    assert all(r.duration >= 0 for r in records)


def test_runner_without_observer():
    assert Runner().run(["sh", "-c", "echo x"]).stdout == "x\n"


def test_on_stderr_receives_streamed_text(runner):
    chunks: list[str] = []
    result = runner.run(["sh", "-c", "printf '10 bytes\\r20 bytes\\r' >&2; printf 'done\\n' >&2; echo out"], on_stderr=chunks.append)
    assert "".join(chunks) == "10 bytes\r20 bytes\rdone\n"
    assert all(isinstance(c, str) for c in chunks)
    assert result.stderr == "10 bytes\r20 bytes\rdone\n"
    assert result.stdout == "out\n"


def test_on_stderr_and_failure_keep_stderr_masked(runner):
    chunks: list[str] = []
    with pytest.raises(CommandFailed) as info:
        runner.run(["sh", "-c", 'echo "dd: error $1" >&2; exit 1', "sh", SECRET], secrets=[SECRET], on_stderr=chunks.append)
    assert "".join(chunks).startswith("dd: error")
    assert info.value.stderr == "dd: error ***\n"
    assert SECRET not in str(info.value)


def test_on_stderr_before_a_timeout_reaches_the_error(runner):
    chunks: list[str] = []
    with pytest.raises(CommandFailed) as info:
        runner.run(["sh", "-c", "echo 512 bytes copied >&2; sleep 30"], timeout=1.0, on_stderr=chunks.append)
    assert "".join(chunks) == "512 bytes copied\n"
    assert info.value.stderr == "512 bytes copied\n"
    assert str(info.value).endswith("512 bytes copied")


def test_undecodable_output_does_not_crash(runner):
    result = runner.run(["sh", "-c", "printf 'a\\377b'"])
    assert result.stdout.startswith("a") and result.stdout.endswith("b")
