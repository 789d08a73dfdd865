"""Races across real processes, once per target helper (tests/worlds.py): at least 16 volctl
processes released at once (tests/fakebin.py holds them at a start line until each has imported
everything), sharing one SQLite inventory and one fake host. ROUNDS per helper: a race that ran
three rounds over one helper runs one over each of the three.

For the one-winner races the processes also meet before their first write transaction (after
reading the volume), so a check-then-act (read the status, then write it unconditionally) lets every
racer win on every run instead of once in several.

State changes are compare-and-swaps, so of concurrent callers on one volume exactly one wins and
the others exit 5 naming the expected and the current status; on different volumes nobody fails;
"database is locked" never reaches a user; external steps of one volume never interleave
(per-volume flock) and the target helper's steps never overlap anywhere, each made by a process
holding the helper's host-wide lock.
"""

from __future__ import annotations

import uuid
from collections import defaultdict

from fakebin import FakeBin
from worlds import ProcessWorld

from volctl.errors import NotFound
from volctl.model import AttachStatus, Status, status_from_attachments

N = 16
ROUNDS = 1  # per helper
VG = "cinder-volumes"
INSTANCE = "6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10"
INITIATOR = "iqn.1994-05.com.redhat:client1"


def exits(procs) -> list[int]:
    return [p.exit_code for p in procs]


def volume(fb: FakeBin, ref: str):
    with fb.service() as svc:
        try:
            return svc.show(ref)
        except NotFound:
            return None


def in_use_volume(fb: FakeBin, name: str, **create) -> str:
    """A volume reserved, exported, connected and attached, as Nova leaves it."""
    with fb.service() as svc:
        vid = svc.create(size=1, name=name, **create).volume.id
        svc.reserve(name)
        svc.connect(name, {"initiator": INITIATOR})
        svc.attach(name, instance=INSTANCE, host="compute1")
    return vid


# -- reading the call log: the fake programs' runs and the helper's steps -------------------------------

def overlapping(intervals: list[tuple[int, int, object]]) -> list[tuple]:
    ordered = sorted(intervals)
    return [(a, b) for a, b in zip(ordered, ordered[1:]) if b[0] < a[1]]


def assert_volume_steps_never_interleave(records: list[dict], procs_by_volume: dict[str, list]) -> None:
    """For each volume, the span from the first to the last tool call of each volctl process working
    on it is disjoint from every other such process's span: nobody else's step falls between two
    steps of one operation (calls that do not name the volume, like get-targets, count too)."""
    by_volctl = defaultdict(list)
    for record in records:
        by_volctl[record["volctl"]].append(record)
    for volume_id, procs in procs_by_volume.items():
        spans = [(min(r["start"] for r in by_volctl[p.pid]), max(r["end"] for r in by_volctl[p.pid]), p.pid)
                 for p in procs if by_volctl[p.pid]]
        assert spans, f"no process worked on {volume_id}"
        assert overlapping(spans) == [], f"external steps on {volume_id} interleaved: {overlapping(spans)}"


def assert_helper_steps_never_overlap(records: list[dict]) -> int:
    """The helper's steps, host-wide: no two overlap, and each was made by a process holding the
    helper's host-wide lock. Returns how many there were."""
    steps = [(r["start"], r["end"], r["step"]) for r in records if r["step"] is not None]
    assert overlapping(steps) == [], f"helper steps overlapped: {overlapping(steps)}"
    unlocked = [r for r in records if r["step"] is not None and r["locked"] is not True]
    assert unlocked == [], f"helper steps made without the host-wide lock: {unlocked}"
    return len(steps)


# -- one volume, many callers -----------------------------------------------------------------------

def test_reserve_one_winner_per_round(proc_world):
    fb = proc_world.fb
    with fb.service() as svc:
        svc.create(size=1, name="v1")
    rounds = ROUNDS
    for _ in range(rounds):
        procs = fb.together([["reserve", "v1"]] * N, meet_before_write=True)
        assert sorted(exits(procs)) == [0] + [5] * (N - 1), [str(p) for p in procs]
        for loser in (p for p in procs if p.exit_code):
            assert "volume v1 is 'attaching'; reserve needs 'available'" in loser.stderr, loser
            assert loser.stdout == "", loser
        assert volume(fb, "v1").status == Status.ATTACHING
        with fb.service() as svc:
            svc.unreserve("v1")
    reserves = [t for t in fb.transitions("v1") if t.action == "reserve"]
    assert [(t.from_status, t.to_status) for t in reserves] == [("available", "attaching")] * rounds
    fb.check_inventory()
    fb.assert_never_locked()


def test_reserve_one_winner_json(proc_world):
    """The same race with --json: the winner prints the volume, the losers nothing on stdout."""
    fb = proc_world.fb
    with fb.service() as svc:
        vid = svc.create(size=1, name="v1").volume.id
    procs = fb.together([["reserve", vid, "--json"]] * N, meet_before_write=True)
    winners = [p for p in procs if p.exit_code == 0]
    assert len(winners) == 1 and winners[0].json()["status"] == "attaching"
    assert all(p.exit_code == 5 and p.stdout == "" and "'attaching'" in p.stderr for p in procs if p.exit_code)
    fb.assert_never_locked()


def test_attach_one_winner_on_a_volume_without_multiattach(proc_world):
    fb = proc_world.fb
    with fb.service() as svc:
        svc.create(size=1, name="v1")
    rounds = ROUNDS
    for _ in range(rounds):
        with fb.service() as svc:
            svc.reserve("v1")
        instances = [str(uuid.uuid4()) for _ in range(N)]
        procs = fb.together([["attach", "v1", "--instance", i, "--host", "compute1", "--json"] for i in instances],
                            meet_before_write=True)
        assert sorted(exits(procs)) == [0] + [5] * (N - 1), [str(p) for p in procs]
        winner = next(i for i, p in zip(instances, procs) if p.exit_code == 0)
        for loser in (p for p in procs if p.exit_code):
            assert "volume v1 is 'in-use'; attach needs 'attaching'" in loser.stderr, loser
        v = volume(fb, "v1")
        assert (v.status, v.attach_status) == (Status.IN_USE, AttachStatus.ATTACHED)
        assert [a.instance_uuid for a in v.live_attachments] == [winner]
        with fb.service() as svc:
            svc.detach("v1")
    attaches = [t for t in fb.transitions("v1") if t.action == "attach"]
    assert [(t.from_status, t.to_status) for t in attaches] == [("attaching", "in-use")] * rounds
    fb.check_inventory()
    fb.assert_never_locked()


def test_attach_everyone_wins_on_a_multiattach_volume(proc_world):
    fb = proc_world.fb
    with fb.service() as svc:
        svc.create(size=1, name="shared", multiattach=True)
        svc.reserve("shared")
    instances = [str(uuid.uuid4()) for _ in range(N)]
    procs = fb.together([["attach", "shared", "--instance", i] for i in instances], meet_before_write=True)
    assert exits(procs) == [0] * N, [str(p) for p in procs]
    v = volume(fb, "shared")
    assert v.status == Status.IN_USE and sorted(a.instance_uuid for a in v.live_attachments) == sorted(instances)
    assert len([t for t in fb.transitions("shared") if t.action == "attach"]) == N
    fb.check_inventory()
    fb.assert_never_locked()


def _settles(transitions, action: str) -> list:
    """A change's final transition: out of its busy status (detach, delete), or the one step (reset-state)."""
    busy = {"detach": Status.DETACHING, "delete": Status.DELETING}.get(action)
    return [t for t in transitions if t.action == action and (busy is None or t.from_status == busy)]


def _check_mix(pw: ProcessWorld, vid: str, procs, kinds: list[str]) -> None:
    fb = pw.fb
    assert set(exits(procs)) <= {0, 3, 5}, [str(p) for p in procs]
    won = defaultdict(int)
    for kind, proc in zip(kinds, procs):
        won[kind] += proc.exit_code == 0
    transitions = fb.transitions(vid)  # one chain, whoever won
    assert won["detach"] <= 1 and won["delete"] <= 1
    assert len(_settles(transitions, "detach")) == won["detach"]
    assert len([t for t in transitions if t.action == "delete" and t.to_status == "deleted"]) == won["delete"]
    assert len(_settles(transitions, "reset-state")) == won["reset-state"]
    v = volume(fb, vid)
    host = fb.host()
    lv = f"volume-{vid}"
    if won["delete"]:
        assert v is None and (VG, lv) not in host.lvs
        assert pw.target_for(lv) not in pw.live()
        assert transitions[-1].to_status == "deleted"
        return
    assert v is not None and (VG, lv) in host.lvs
    assert v.status == transitions[-1].to_status
    if transitions[-1].action != "reset-state":  # an admin's reset is the last word, whatever it says
        assert (v.status, v.attach_status) == status_from_attachments(a.attach_status for a in v.live_attachments)
    if won["detach"]:
        assert v.live_attachments == ()


def test_detach_and_delete_mix_ends_consistent(proc_world):
    pw, fb = proc_world, proc_world.fb
    kinds = ["detach", "delete"] * (N // 2)
    for round_ in range(ROUNDS):
        name = f"r{round_}"
        vid = in_use_volume(fb, name)
        procs = fb.together([[kind, name] for kind in kinds])
        # no delete can go first (the volume is attached), so the first detach to take the lock wins
        assert [k for k, p in zip(kinds, procs) if p.exit_code == 0].count("detach") == 1, [str(p) for p in procs]
        _check_mix(pw, vid, procs, kinds)
        v = volume(fb, vid)
        if v is not None:
            assert (v.status, v.attach_status, v.provider_location, v.connections) == ("available", "detached", None, ())
    fb.check_inventory()
    doctor = fb.run("doctor", "--json", "--stale-after", "0")
    assert doctor.exit_code == 0, doctor
    assert pw.live() == {} and pw.persisted() == {}  # every export went with its last attachment
    fb.assert_never_locked()


def test_detach_delete_reset_state_mix_ends_consistent(proc_world):
    pw, fb = proc_world, proc_world.fb
    kinds = (["detach", "delete", "reset-state"] * N)[: N + 2]
    args = {"detach": [], "delete": [], "reset-state": ["--status", "in-use", "--attach-status", "attached"]}
    for round_ in range(ROUNDS):
        name = f"r{round_}"
        vid = in_use_volume(fb, name)
        procs = fb.together([[kind, name, *args[kind]] for kind in kinds])
        _check_mix(pw, vid, procs, kinds)
    fb.check_inventory()
    # What an admin's reset may have left (an export a rolled-back detach had removed) doctor repairs.
    repaired = fb.run("doctor", "--repair", "--json", "--stale-after", "0")
    assert all(d["repaired"] for d in repaired.json()["drift"]), repaired
    assert fb.run("doctor", "--stale-after", "0").exit_code == 0
    fb.assert_never_locked()


# -- many volumes, no losers ------------------------------------------------------------------------

def test_creates_on_a_fresh_inventory_all_succeed(proc_world):
    """16 processes create 16 volumes on an inventory none of them has seen: the file, its schema
    and WAL mode are set up once, and every create wins. Their admissions (one vgs each) take turns
    under the group's space lock; with an lvcreate slower than that, the fake host sees their
    lvcreate calls overlap (the LVs of different volumes are made side by side), which shows the
    call log can see an overlap where volctl allows one."""
    pw, fb = proc_world, proc_world.fb
    assert not fb.db.exists()
    rounds = ROUNDS
    for round_ in range(rounds):
        names = [f"c{round_}-{i}" for i in range(N)]
        seq = pw.last_seq()
        procs = fb.together([["create", "--size", "1", "--name", n, "--json"] for n in names], env={"FAKEHOST_DELAY": "0.1", "FAKEHOST_DELAY_LVCREATE": "0.6"})
        assert exits(procs) == [0] * N, [str(p) for p in procs if p.exit_code != 0]
        assert sorted(p.json()["name"] for p in procs) == sorted(names)
        lvcreates = [(r["start"], r["end"], r["volctl"]) for r in pw.step_records(seq) if r["argv"][0] == "lvcreate"]
        assert len(lvcreates) == N and overlapping(lvcreates)
    with fb.service() as svc:
        volumes = list(svc.list())
    assert len(volumes) == rounds * N and {v.status for v in volumes} == {"available"}
    assert len(fb.host().lvs) == rounds * N
    assert fb.db.stat().st_mode & 0o777 == 0o600
    fb.check_inventory()
    fb.assert_never_locked()


def test_reserve_unreserve_loops_on_different_volumes_all_succeed(proc_world):
    fb = proc_world.fb
    with fb.service() as svc:
        names = [svc.create(size=1, name=f"l{i}").volume.name for i in range(N)]
    rounds = ROUNDS
    for _ in range(rounds):
        for action in ("reserve", "unreserve"):
            procs = fb.together([[action, n] for n in names])
            assert exits(procs) == [0] * N, [str(p) for p in procs if p.exit_code != 0]
    for n in names:
        actions = [t.action for t in fb.transitions(n)]
        assert actions == ["create", "create"] + ["reserve", "unreserve"] * rounds
        assert volume(fb, n).status == Status.AVAILABLE
    fb.check_inventory()
    fb.assert_never_locked()


# -- the locks --------------------------------------------------------------------------------------

def test_external_steps_of_one_volume_never_interleave(proc_world):
    """connect, export, unexport, extend and delete on one volume, all at once, with slow tools and
    slow helper steps. connect lets the helper's lock go between the export and the ACL, and extend's
    and delete's LVM steps run outside it, so only the volume's lock keeps one operation's steps
    together. With it, a command that waited finds the volume as the one before left it: gone (3),
    or already at the size asked (2), never in another operation's busy state."""
    pw, fb = proc_world, proc_world.fb
    commands = ([["connect", "{v}", "--initiator", f"iqn.1994-05.com.example:host{i}"] for i in range(5)]
                + [["export", "{v}"]] * 3 + [["unexport", "{v}"]] * 3
                + [["extend", "{v}", "--size", str(size)] for size in (2, 3, 4)] + [["delete", "{v}"]] * 2)
    allowed = {"connect": {0, 3}, "export": {0, 3}, "unexport": {0, 3}, "extend": {0, 2, 3}, "delete": {0, 3}}
    assert len(commands) == N
    for round_ in range(ROUNDS):
        name = f"v{round_}"
        with fb.service() as svc:
            vid = svc.create(size=1, name=name).volume.id
        seq = pw.last_seq()
        procs = fb.together([[a.replace("{v}", name) for a in c] for c in commands], env={"FAKEHOST_DELAY": "0.02"})
        for command, proc in zip(commands, procs):
            assert proc.exit_code in allowed[command[0]], proc
            if command[0] == "extend" and proc.exit_code == 2:
                assert "must be larger than the current" in proc.stderr, proc
        assert [c[0] for c, p in zip(commands, procs) if p.exit_code == 0].count("delete") <= 1
        records = pw.step_records(seq)
        assert_volume_steps_never_interleave(records, {vid: procs})
        steps = assert_helper_steps_never_overlap(records)
        exported = [c for c, p in zip(commands, procs) if c[0] in ("connect", "export") and p.exit_code == 0]
        assert steps > 0 or not exported  # a delete that went first leaves nothing to export
        fb.transitions(vid)
    assert fb.run("doctor", "--stale-after", "0").exit_code == 0
    fb.check_inventory()
    fb.assert_never_locked()


def test_helper_steps_never_overlap_host_wide(proc_world):
    """16 volumes exported and connected at once: different volume locks, one host-wide lock."""
    pw, fb = proc_world, proc_world.fb
    with fb.service() as svc:
        vids = [svc.create(size=1, name=f"v{i}").volume.id for i in range(N)]
    seq = pw.last_seq()
    procs = fb.together([["connect", f"v{i}", "--initiator", INITIATOR, "--json"] for i in range(N)],
                        env={"FAKEHOST_DELAY": "0.02"})
    assert exits(procs) == [0] * N, [str(p) for p in procs]
    records = pw.step_records(seq)
    assert assert_helper_steps_never_overlap(records) == len(pw.flow_steps("connect-fresh")) * N
    assert_volume_steps_never_interleave(records, {vid: [p] for vid, p in zip(vids, procs)})
    live = pw.live()
    assert {pw.target_in(p.json()) for p in procs} == set(live)
    assert all(hosts == {INITIATOR} for hosts in live.values()) and pw.persisted() == live
    assert fb.run("doctor", "--stale-after", "0").exit_code == 0
    fb.check_inventory()
    fb.assert_never_locked()

