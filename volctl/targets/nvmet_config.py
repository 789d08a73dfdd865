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

    # Plain os calls: a restore of 1,000 makes 5,000 writes, and io's buffered file per write
    # cost more than the write itself under TCG (BENCHMARKS.md section 7).
    @staticmethod
    def mkdir(path: Path) -> None:
        os.mkdir(path)

    @staticmethod
    def rmdir(path: Path) -> None:
        os.rmdir(path)

    @staticmethod
    def write(path: Path, value: str) -> None:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, value.encode())  # configfs takes an attribute in one write
        finally:
            os.close(fd)

    @staticmethod
    def symlink(link: Path, to: Path) -> None:
        os.symlink(to, link)

    @staticmethod
    def unlink(link: Path) -> None:
        os.unlink(link)


def read_attr(path: str | Path) -> str:
    """An attribute's value ("" when it cannot be read): a restore dumps every subsystem it made,
    16 reads each (files.read_text's plain os calls)."""
    return files.read_text(path)


def _group(path: str, groups: tuple[str, ...]) -> dict:
    """The writable attribute files of these groups, by name without the group prefix: one
    listing, one stat per file."""
    out: dict = {group: {} for group in groups}
    with os.scandir(path) as entries:
        found = sorted((e for e in entries if "_" in e.name), key=lambda e: e.name)
    for entry in found:
        group, _, name = entry.name.partition("_")
        if group not in out:
            continue
        mode = entry.stat().st_mode
        if stat.S_ISREG(mode) and mode & 0o400 and mode & 0o200:
            out[group][name] = read_attr(entry.path)
    return out


def subsystem(root: Path, nqn: str) -> dict | None:
    path = f"{root}/subsystems/{nqn}"
    if not os.path.isdir(path):
        return None
    namespaces = []
    for nsid in sorted(int(n) for n in os.listdir(f"{path}/namespaces")):
        ns = f"{path}/namespaces/{nsid}"
        entry = {"nsid": nsid, "enable": int(read_attr(f"{ns}/enable") or 0), **_group(ns, GROUPS["namespace"])}
        if os.path.exists(f"{ns}/ana_grpid"):
            entry["ana_grpid"] = int(read_attr(f"{ns}/ana_grpid") or 1)
        namespaces.append(entry)
    allowed = f"{path}/allowed_hosts"
    return {"nqn": nqn, **_group(path, GROUPS["subsystem"]), "namespaces": namespaces,
            "allowed_hosts": sorted(os.listdir(allowed)) if os.path.isdir(allowed) else []}


def host(root: Path, nqn: str) -> dict | None:
    """A host, with its DH-HMAC-CHAP settings where the kernel has them (nvmetcli 7a94d92's "dhchap")."""
    path = f"{root}/hosts/{nqn}"
    if not os.path.isdir(path):
        return None
    dumped: dict = {"nqn": nqn}
    if os.path.exists(f"{path}/dhchap_key"):
        dumped["dhchap"] = {name: read_attr(f"{path}/dhchap_{name}") for name in ("key", "ctrl_key", "hash", "dhgroup")}
    return dumped


def port(path: Path) -> dict:
    return {"portid": int(path.name), **_group(str(path), GROUPS["port"]),
            "subsystems": sorted(os.listdir(f"{path}/subsystems")), "referrals": [], "ana_groups": []}


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
