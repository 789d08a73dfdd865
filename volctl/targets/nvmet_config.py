"""nvmet in configfs and nvmetcli's JSON: the one place that changes configfs (ConfigFs, which tests
replace with a fake kernel), and the dump of a subsystem, host or port in the shape nvmetcli's
`save` writes it (every writable attribute of its groups, by name), so `nvmetcli restore` loads
volctl's file as its own (nvme-facts.md §6)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from volctl import files
from volctl.errors import EnvironmentProblem

# An attribute group's files are "<group>_<name>" (nvmetcli's CFSNode).
GROUPS = {"subsystem": ("attr",), "namespace": ("device",), "port": ("addr",)}


class ConfigFs:
    """The calls that change configfs, in one place: the kernel makes an object's attributes and
    default groups on mkdir and takes them away on rmdir, and enforces its rules on each write and
    link (tests stand a fake kernel in here)."""

    @staticmethod
    def mkdir(path: Path) -> None:
        path.mkdir()

    @staticmethod
    def rmdir(path: Path) -> None:
        path.rmdir()

    @staticmethod
    def write(path: Path, value: str) -> None:
        path.write_text(value)

    @staticmethod
    def symlink(link: Path, to: Path) -> None:
        link.symlink_to(to)

    @staticmethod
    def unlink(link: Path) -> None:
        link.unlink()


def read_attr(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _group(path: Path, groups: tuple[str, ...]) -> dict:
    """The writable attribute files of these groups, by name without the group prefix. One listing
    and one stat per file: a restore dumps every subsystem it made, and each configfs call is slow
    under TCG."""
    out: dict = {group: {} for group in groups}
    with os.scandir(path) as entries:
        found = sorted((e for e in entries if "_" in e.name), key=lambda e: e.name)
    for entry in found:
        group, _, name = entry.name.partition("_")
        if group not in out:
            continue
        mode = entry.stat().st_mode
        if stat.S_ISREG(mode) and mode & 0o400 and mode & 0o200:
            out[group][name] = read_attr(Path(entry.path))
    return out


def subsystem(root: Path, nqn: str) -> dict | None:
    path = root / "subsystems" / nqn
    if not path.is_dir():
        return None
    namespaces = []
    for ns in sorted((path / "namespaces").iterdir(), key=lambda p: int(p.name)):
        entry = {"nsid": int(ns.name), "enable": int(read_attr(ns / "enable") or 0), **_group(ns, GROUPS["namespace"])}
        if (ns / "ana_grpid").exists():
            entry["ana_grpid"] = int(read_attr(ns / "ana_grpid") or 1)
        namespaces.append(entry)
    allowed = path / "allowed_hosts"
    return {"nqn": nqn, **_group(path, GROUPS["subsystem"]), "namespaces": namespaces,
            "allowed_hosts": sorted(p.name for p in allowed.iterdir()) if allowed.is_dir() else []}


def host(root: Path, nqn: str) -> dict | None:
    """A host, with its DH-HMAC-CHAP settings where the kernel has them (nvmetcli 7a94d92's "dhchap")."""
    path = root / "hosts" / nqn
    if not path.is_dir():
        return None
    dumped: dict = {"nqn": nqn}
    if (path / "dhchap_key").exists():
        dumped["dhchap"] = {name: read_attr(path / f"dhchap_{name}") for name in ("key", "ctrl_key", "hash", "dhgroup")}
    return dumped


def port(path: Path) -> dict:
    return {"portid": int(path.name), **_group(path, GROUPS["port"]),
            "subsystems": sorted(p.name for p in (path / "subsystems").iterdir()), "referrals": [], "ana_groups": []}


def read(path: Path) -> dict | None:
    """The saved document; None when there is no file. An unreadable file is an EnvironmentProblem."""
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise EnvironmentProblem(f"saved nvmet config {path} is unreadable: {e}") from None
    if not isinstance(document, dict):
        raise EnvironmentProblem(f"saved nvmet config {path} is unreadable: not a JSON object")
    return document


def write(path: Path, document: dict) -> None:
    """As nvmetcli's save_to_file: sorted keys, 0600, atomic and durable (it holds the keys); one
    subsystem, host or port a line (json's C encoder: see files.json_lines)."""
    files.write_private(path, files.json_lines(document), "saved nvmet config")
