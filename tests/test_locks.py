"""FileLock: exclusive across processes, re-entrant within one, times out as an environment problem."""

from __future__ import annotations

import multiprocessing
import os
import queue
import stat

import pytest

from volctl.errors import EnvironmentProblem, ExitCode
from volctl.locks import FileLock, Locks

ctx = multiprocessing.get_context("fork")


def _hold(path, held, release):
    with FileLock(path, wait=5).held():
        held.set()
        release.wait(20)


def _hold_and_die(path, held):
    lock = FileLock(path, wait=5)
    lock._acquire()
    held.set()
    os._exit(0)  # no release: the kernel drops the flock with the process


def _try(path, wait, result):
    try:
        with FileLock(path, wait=wait).held():
            result.put("got it")
    except EnvironmentProblem as e:
        result.put(f"refused: {e}")


@pytest.fixture
def path(tmp_path):
    return tmp_path / "volume-x.lock"


def free(path) -> bool:
    try:
        with FileLock(path, wait=0).held():
            return True
    except EnvironmentProblem:
        return False


def test_exclusive_across_processes(path):
    held, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(path, held, release))
    holder.start()
    try:
        assert held.wait(10)
        with pytest.raises(EnvironmentProblem) as info:
            with FileLock(path, wait=0.2).held():
                pass
        assert info.value.exit_code == ExitCode.ENVIRONMENT == 7
        assert str(path) in str(info.value)
        assert "0.2" in str(info.value)
        # The file tells who holds it.
        assert path.read_text() == f"{holder.pid}\n"
    finally:
        release.set()
        holder.join(10)
    assert holder.exitcode == 0
    with FileLock(path, wait=0).held():
        assert path.read_text() == f"{os.getpid()}\n"


def test_a_waiter_gets_the_lock_once_it_is_released(path):
    held, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(path, held, release))
    holder.start()
    assert held.wait(10)
    result = ctx.Queue()
    waiter = ctx.Process(target=_try, args=(path, 10, result))
    waiter.start()
    with pytest.raises(queue.Empty):  # it waits while the holder holds on
        result.get(timeout=0.3)
    release.set()
    assert result.get(timeout=15) == "got it"
    holder.join(10)
    waiter.join(10)


def test_other_process_is_refused_while_we_hold_it(path):
    result = ctx.Queue()
    with FileLock(path).held():
        child = ctx.Process(target=_try, args=(path, 0, result))
        child.start()
        outcome = result.get(timeout=10)
        child.join(10)
    assert outcome.startswith("refused:") and str(path) in outcome


def test_crashed_holder_does_not_leave_it_locked(path):
    held = ctx.Event()
    child = ctx.Process(target=_hold_and_die, args=(path, held))
    child.start()
    assert held.wait(10)
    child.join(10)
    assert free(path)


def test_reentrant_within_one_process(path):
    lock = FileLock(path, wait=0)
    with lock.held():
        with lock.held():
            with lock.held():
                assert not free(path)
            assert not free(path)
        assert not free(path)  # the inner exits did not let it go
    assert free(path)


def test_released_after_an_exception(path):
    lock = FileLock(path, wait=0)
    with pytest.raises(RuntimeError):
        with lock.held():
            with lock.held():
                raise RuntimeError("boom")
    assert free(path)
    with lock.held():  # and it can be taken again
        assert not free(path)


def test_two_instances_in_one_process_exclude_each_other(path):
    with FileLock(path).held():
        with pytest.raises(EnvironmentProblem):
            with FileLock(path, wait=0).held():
                pass


def test_timeout_names_the_lock(path):
    with FileLock(path).held():
        with pytest.raises(EnvironmentProblem) as info:
            with FileLock(path, wait=0.1).held():
                pass
    message = str(info.value)
    assert str(path) in message and "0.1" in message
    assert info.value.exit_code == 7


def test_writes_holder_pid_over_a_stale_one(path):
    path.write_text("999999999 stale holder\n")
    with FileLock(path).held():
        assert path.read_text() == f"{os.getpid()}\n"


def test_lock_file_is_private(path):
    with FileLock(path).held():
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_unopenable_lock_is_environment_problem(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(EnvironmentProblem) as info:
        with FileLock(tmp_path / "a-file" / "x.lock").held():
            pass
    assert "a-file" in str(info.value)


def test_a_missing_lock_directory_is_made_private(tmp_path):
    """doctor takes the LIO lock before any inventory (and so any lock directory) exists."""
    lock = FileLock(tmp_path / "state" / "volctl.db.locks" / "lio.lock")
    with lock.held():
        pass
    for directory in (tmp_path / "state", tmp_path / "state" / "volctl.db.locks"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_locks_layout(tmp_path):
    locks = Locks(tmp_path / "state" / "volctl.db.locks", wait=3)
    locks.ensure_directory()
    assert stat.S_IMODE(locks.directory.stat().st_mode) == 0o700
    assert locks.host("lio").path == locks.directory / "lio.lock"
    assert locks.host("lio").wait == 3
    a = locks.volume("a")
    assert a is locks.volume("a")  # one instance per volume, so re-entrancy works across helpers
    assert a.path == locks.directory / "volume-a.lock"
    assert locks.volume("b") is not a
    with a.held():
        with locks.volume("a").held():
            assert not free(a.path)
        assert free(locks.volume("b").path)
