"""The saved LIO config (rtslib's saveconfig.json): read it, write it the way a host's restore
can load it, and merge one target's entries into it.

Both helpers write the same file, and the host's own restore (`targetctl restore`, the unit at
boot) reads it, so every write here is atomic (a rename), mode 0600 (it holds CHAP passwords)
and made under the LIO lock by the caller.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from volctl import files
from volctl.errors import EnvironmentProblem

BLOCK_PLUGIN = "block"
ISCSI_FABRIC = "iscsi"


@dataclass(frozen=True)
class SavedTarget:
    iqn: str
    initiators: tuple[str, ...]


def read(path: Path) -> dict | None:
    """The document; None when there is no file. An unreadable file is an EnvironmentProblem."""
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EnvironmentProblem(f"saved LIO config {path} is unreadable: {e}") from None
    if not isinstance(document, dict):
        raise EnvironmentProblem(f"saved LIO config {path} is unreadable: not a JSON object")
    return document


def targets(document: dict) -> list[SavedTarget]:
    saved = []
    for target in document.get("targets", []):
        initiators = tuple(
            acl.get("node_wwn", "") for tpg in target.get("tpgs", [])[:1] for acl in tpg.get("node_acls", [])
        )
        saved.append(SavedTarget(target.get("wwn", ""), initiators))
    return saved


def restorable_by_older_rtslib(document: dict) -> bool:
    """Drop "exclusive": true from block storage objects; returns whether any was dropped.

    PyPI's rtslib (2.2.x) writes the key; Debian 12's 2.1.75, which rtslib-fb-targetctl.service
    restores with, rejects it ("unexpected keyword argument 'exclusive', skipped") and brings every
    target back without its LUN (measured in the VM tier). true is the default of every rtslib that
    knows the key, so dropping it loses nothing."""
    changed = False
    for so in document.get("storage_objects", []):
        if so.get("exclusive") is True:
            del so["exclusive"]
            changed = True
    return changed


def write(path: Path, document: dict) -> None:
    """Atomically and durably, 0600 (it holds the CHAP passwords)."""
    files.write_private(path, files.json_lines(document), "saved LIO config")


def merged(document: dict, iqn: str, target: dict | None, storage_object: dict | None) -> dict:
    """document with the iSCSI target `iqn` and the block storage object of the same name (how
    cinder-rtstool names it) replaced by what is live now: updated in place in the list, appended
    when new, removed when gone (None). Everything else stays as it was, as rtslib's own
    `_get_saveconf` leaves it: other targets and storage objects, and `fabric_modules`."""
    result = dict(document)
    result["targets"] = _replaced(
        document.get("targets", []), target,
        lambda t: t.get("fabric") == ISCSI_FABRIC and t.get("wwn") == iqn,
    )
    result["storage_objects"] = _replaced(
        document.get("storage_objects", []), storage_object,
        lambda so: so.get("plugin") == BLOCK_PLUGIN and so.get("name") == iqn,
    )
    return result


def _replaced(entries: list, entry: dict | None, matches) -> list:
    out: list = []
    placed = False
    for existing in entries:
        if not matches(existing):
            out.append(existing)
        elif entry is not None and not placed:
            out.append(entry)
            placed = True
    if entry is not None and not placed:
        out.append(entry)
    return out


def normalized(document: dict) -> dict:
    """The document with its lists in a fixed order: what a restore loads does not depend on the
    order rtslib happened to list configfs in, so two files that normalize equal restore equal."""
    result = dict(document)
    result["storage_objects"] = sorted(document.get("storage_objects", []),
                                       key=lambda so: (so.get("plugin", ""), so.get("name", "")))
    result["targets"] = sorted(document.get("targets", []), key=lambda t: (t.get("fabric", ""), t.get("wwn", "")))
    result["fabric_modules"] = sorted(document.get("fabric_modules", []), key=lambda f: f.get("name", ""))
    return result


def differences(ours: dict, full: dict, ours_is: str = "volctl's file") -> list[str]:
    """Which entries two saved configs disagree on, by name: for a person reading why a check failed."""
    out = []
    for key, name in (("targets", "wwn"), ("storage_objects", "name")):
        a = {e.get(name): e for e in ours.get(key, [])}
        b = {e.get(name): e for e in full.get(key, [])}
        out += [f"{key}: {n}: only in {ours_is}" for n in sorted(set(a) - set(b))]
        out += [f"{key}: {n}: missing from {ours_is}" for n in sorted(set(b) - set(a))]
        out += [f"{key}: {n}: differs" for n in sorted(set(a) & set(b)) if a[n] != b[n]]
    return out + [f"{k}: differs" for k in sorted((set(ours) | set(full)) - {"targets", "storage_objects"})
                  if ours.get(k) != full.get(k)]
