"""The LVM programs and dd of tests/fakehost.py's FakeHost, parsing their argv as the real ones do
(tests/fakeargs.py): state is the host's `vgs` (name -> bytes) and `lvs` ((vg, name) -> size, attr,
pool; a snapshot's "origin"; "content", a token for the LV's bytes that dd, snapshots and merges
carry over, so a test can tell whose data an LV holds)."""

from __future__ import annotations

import getopt
import json
import re

from fakeargs import (EXTENT, LVM_CMD_LINE, Refused, dd_operands, dm_name_parts, lvm_bad_argument, lvm_config, lvm_extents,
                      lvm_name, lvm_options, lvm_report_options, lvm_size)

GIB = 1024**3
_ACTIVE, _SKIP = 4, 9  # lv_attr's state ('a' = active) and activation-skip ('k') characters (lvs(8))


def _put(attr: str, index: int, char: str) -> str:
    return attr[:index] + char + attr[index + 1:]


class FakeLvm:
    vgs: dict[str, int]
    lvs: dict[tuple[str, str], dict]

    def _vg_free(self, vg: str) -> int:
        return self.vgs[vg] - sum(lv["size"] for (g, _), lv in self.lvs.items() if g == vg and not lv["attr"].startswith("V"))

    def _lv_path(self, tool: str, text: str) -> tuple[str, str]:
        vg, slash, name = text.partition("/")
        if not slash or not vg or not name or "/" in name:
            raise Refused(LVM_CMD_LINE, f'  Invalid logical volume path "{text}": use VG/LV.\n'
                                        "  Error during parsing of command line.\n")
        return vg, name

    def _open(self, vg: str, name: str) -> bool:
        """Held open: a LIO backstore on the LV (FakeHost's targets), as an iblock export holds it."""
        return any(t.device == f"/dev/{vg}/{name}" for t in getattr(self, "targets", {}).values())

    def _snapshots_of(self, vg: str, origin: str) -> list[tuple[str, str]]:
        """The thick (COW) snapshots of an LV; thin snapshots are LVs of their own in the pool."""
        return [key for key, lv in sorted(self.lvs.items())
                if key[0] == vg and lv["attr"][0] in "sS" and lv.get("origin") == origin]

    def _origin_attr(self, vg: str, origin: str) -> None:
        """lv_attr of a thick LV: 'o' (origin) while it has snapshots, 'O' while one merges, 's' the target type."""
        lv = self.lvs.get((vg, origin))
        if lv is None or lv["attr"][0] not in "-oO":
            return
        snapshots = self._snapshots_of(vg, origin)
        head = ("O" if any(self.lvs[k]["attr"][0] == "S" for k in snapshots) else "o") if snapshots else "-"
        lv["attr"] = head + lv["attr"][1:6] + ("s" if snapshots else "-") + lv["attr"][7:]

    def _lvcreate(self, args: list[str]):
        options, positional = lvm_options(
            "lvcreate", args, "n:L:l:TV:yW:Z:a:s",
            ["name=", "size=", "extents=", "thin", "virtualsize=", "thinpool=", "yes", "wipesignatures=", "zero=",
             "activate=", "snapshot"],
            {"--name": "-n", "--size": "-L", "--extents": "-l", "--thin": "-T", "--virtualsize": "-V", "--yes": "-y",
             "--wipesignatures": "-W", "--zero": "-Z", "--activate": "-a", "--snapshot": "-s"},
        )
        for flag in ("-W", "-Z", "-a"):
            for value in options.get(flag, []):
                if value not in ("y", "n"):
                    raise lvm_bad_argument(flag, value)
        if len(positional) != 1:
            assert len(positional) > 1 or not positional, positional
            if "-s" in options:
                raise Refused(LVM_CMD_LINE, "  Please specify a logical volume to act as the snapshot origin.\n")
            raise Refused(LVM_CMD_LINE, "  Please specify a volume group (or VG/LV) to create in.\n"
                                        "  Run `lvcreate --help' for more information.\n")
        vg, _, lv_part = positional[0].partition("/")
        if "-L" in options and "-l" in options:
            raise Refused(LVM_CMD_LINE, "  Please specify either size or extents (not both).\n")
        name = lvm_name(options["-n"][-1]) if "-n" in options else None
        if vg not in self.vgs:
            return 5, "", f'  Volume group "{vg}" not found\n  Cannot process volume group {vg}\n'
        size = None
        if "-L" in options:
            size = lvm_size("--size", options["-L"][-1])[1]
        elif "-l" in options:
            size = lvm_extents(options["-l"][-1], vg_size=self.vgs[vg], vg_free=self._vg_free(vg))[1]
        thin = "-T" in options or "--thinpool" in options
        if "-s" in options:
            assert not thin and "-V" not in options, f"FakeHost does not model sparse or pool-given snapshots: {args}"
            return self._lvcreate_snapshot(vg, lv_part, name, size)
        if "-V" in options:  # a thin volume in an existing pool
            assert thin and size is None, f"FakeHost models -V only as a thin volume without -L/-l: {args}"
            pool = options["--thinpool"][-1] if "--thinpool" in options else lv_part
            if not pool:
                raise Refused(LVM_CMD_LINE, "  Please specify the thin pool (VG/POOL or --thinpool).\n")
            size = lvm_size("--virtualsize", options["-V"][-1])[1]
            if (vg, pool) not in self.lvs or not self.lvs[(vg, pool)]["attr"].startswith("t"):
                return 5, "", f'  Failed to find logical volume "{vg}/{pool}"\n'
            name = name or self._free_lv_name(vg)
            attr = "Vwi-a-tz--"
        elif thin:  # a thin pool: -T -L SIZE VG/POOL
            name = options["--thinpool"][-1] if "--thinpool" in options else (lv_part or name)
            attr, pool = "twi-a-tz--", ""
            if size is not None:  # lvm2's estimate: 64 bytes per 64 KiB chunk, at least 2 MiB, whole extents
                metadata = -(-max(2 * 1024**2, size // 1024) // EXTENT) * EXTENT
                return self._new_lv(vg, name, size, {"attr": attr, "pool": "", "data_percent": 0.0,
                                                     "metadata_percent": 0.0, "metadata_size": metadata, "health": ""})
        else:
            name = name or lv_part or self._free_lv_name(vg)
            attr, pool = "-wi-a-----", ""
        if size is None:
            raise Refused(LVM_CMD_LINE, "  No command with matching syntax recognised.  Run 'lvcreate --help' for more "
                                        "information.\n  Please specify either size or extents.\n")
        return self._new_lv(vg, name, size, {"attr": attr, "pool": pool if attr.startswith("V") else ""})

    def _new_lv(self, vg: str, name: str, size: int, fields: dict):
        if size == 0:
            raise Refused(LVM_CMD_LINE, "  Size must be larger than 0.\n")
        if (vg, name) in self.lvs:
            return 5, "", f'  Logical Volume "{name}" already exists in volume group "{vg}"\n'
        pool = self.lvs.get((vg, fields.get("pool", ""))) if fields["attr"].startswith("V") else None
        if pool is not None and not self._pool_below_threshold(pool):  # lib/metadata/lv_manip.c
            return 5, "", f"  Cannot create new thin volume, free space in thin pool {vg}/{fields['pool']} reached threshold.\n"
        if not fields["attr"].startswith("V") and size > self._vg_free(vg):
            return 5, "", (f'  Volume group "{vg}" has insufficient free space ({self._vg_free(vg) // EXTENT} extents): '
                           f'{size // EXTENT} required.\n')
        self.lvs[(vg, name)] = {"size": size, **fields}
        return 0, f'  Logical volume "{name}" created.\n', ""

    def _lvcreate_snapshot(self, vg: str, origin: str, name: str | None, size: int | None):
        """lvm2's _determine_snapshot_type and validate_snapshot_origin: with a size, a COW snapshot
        (lv_attr 's', the origin 'o'); without, a thin LV in the thin origin's pool, made with the
        activation-skip flag (auto_set_activation_skip) and so inactive."""
        assert name, "volctl names every snapshot"
        source = self.lvs.get((vg, origin))
        if source is None:
            return 5, "", f"  Snapshot origin LV {origin} not found in Volume group {vg}.\n"
        refused = {"s": "snapshots", "S": "snapshots", "O": "an origin that has a merging snapshot",
                   "t": "thin pool type volumes"}.get(source["attr"][0])
        if refused:
            return 5, "", f"  Snapshots of {refused} are not supported.\n"
        fields = {"origin": origin, "content": source.get("content", "")}
        if source["attr"].startswith("V"):
            assert size is None, "FakeHost does not model a COW snapshot of a thin LV: Cinder's thin snapshots have no -L"
            return self._new_lv(vg, name, source["size"], {"attr": "Vwi---tz-k", "pool": source["pool"], **fields})
        if size is None:
            return 5, "", "  Please specify either size or extents with snapshots.\n"
        done = self._new_lv(vg, name, size, {"attr": f"swi-{source['attr'][_ACTIVE]}-s---", "pool": "", **fields})
        self._origin_attr(vg, origin)
        return done

    @staticmethod
    def _pool_below_threshold(pool: dict) -> bool:
        """lvm2's pool_below_threshold (thin_manip.c) at its defaults (autoextend threshold 100):
        a healthy pool whose data is not full and whose metadata keeps min(25 %, 4 MiB) free."""
        if pool.get("health") or pool.get("data_percent", 0.0) >= 100:
            return False
        size = pool.get("metadata_size", 0)
        reserve = min(25.0, 4 * 1024**2 * 100 / size) if size else 25.0
        return pool.get("metadata_percent", 0.0) < 100 - reserve

    def pool_use(self, vg: str, pool: str, *, data: float | None = None, metadata: float | None = None,
                 health: str | None = None) -> None:
        """Test control: what the kernel's dm-thin would report for the pool (writes, a full pool)."""
        lv = self.lvs[(vg, pool)]
        assert lv["attr"].startswith("t"), f"{vg}/{pool} is not a thin pool"
        assert health in (None, "", "partial", "failed", "out_of_data", "metadata_read_only"), health
        for key, value in (("data_percent", data), ("metadata_percent", metadata), ("health", health)):
            if value is not None:
                lv[key] = value

    def _free_lv_name(self, vg: str) -> str:
        return next(f"lvol{i}" for i in range(len(self.lvs) + 1) if (vg, f"lvol{i}") not in self.lvs)

    _LV_FIELDS = ("vg_name", "lv_name", "lv_size", "lv_attr", "lv_path", "pool_lv", "lv_full_name", "origin",
                  "data_percent", "metadata_percent", "lv_metadata_size", "lv_health_status", "vg_size", "vg_free")
    _VG_FIELDS = ("vg_name", "vg_size", "vg_free", "vg_extent_size", "lv_count")
    _REPORT_OPTS = ["reportformat=", "units=", "nosuffix", "options=", "noheadings"]

    def _lvs(self, args: list[str]):
        options, positional = lvm_options("lvs", args, "o:", self._REPORT_OPTS, {"--options": "-o"})
        fields = lvm_report_options("lvs", options, self._LV_FIELDS, "lv_")
        rows = []
        for spec in positional or sorted(self.vgs):
            vg, _, name = spec.partition("/")
            if vg not in self.vgs:
                return 5, "", f'  Volume group "{vg}" not found\n  Cannot process volume group {vg}\n'
            if name and (vg, name) not in self.lvs:
                return 5, "", f'  Failed to find logical volume "{vg}/{name}"\n'
            for (g, n), lv in sorted(self.lvs.items()):
                if g == vg and (not name or n == name):
                    attr = lv["attr"]
                    if self._open(g, n):  # lv_attr's sixth character: 'o' while the device is held open
                        attr = attr[:5] + "o" + attr[6:]
                    row = {"vg_name": g, "lv_name": n, "lv_size": str(lv["size"]), "lv_attr": attr,
                           "lv_path": f"/dev/{g}/{n}", "pool_lv": lv["pool"], "lv_full_name": f"{g}/{n}",
                           "origin": lv.get("origin", ""), "vg_size": str(self.vgs[g]), "vg_free": str(self._vg_free(g)),
                           **self._usage(lv)}
                    rows.append({f: row[f] for f in fields})
        return 0, json.dumps({"report": [{"lv": rows}]}), ""

    @staticmethod
    def _usage(lv: dict) -> dict:
        """The thin and snapshot columns as lvs prints them: percentages with two decimals only for
        an active pool, thin LV or COW snapshot ("" otherwise); the metadata size only for a pool."""
        attr, active = lv["attr"], lv["attr"][_ACTIVE] == "a"
        pool = attr.startswith("t")
        data = f"{lv.get('data_percent', 0.0):.2f}" if active and attr[0] in "tVsS" else ""
        return {"data_percent": data, "metadata_percent": f"{lv.get('metadata_percent', 0.0):.2f}" if pool and active else "",
                "lv_metadata_size": str(lv.get("metadata_size", 0)) if pool else "",
                "lv_health_status": lv.get("health", "") if pool else ""}

    def _vgs(self, args: list[str]):
        options, positional = lvm_options("vgs", args, "o:", self._REPORT_OPTS, {"--options": "-o"})
        fields = lvm_report_options("vgs", options, self._VG_FIELDS, "vg_")
        rows = []
        for vg in positional or sorted(self.vgs):
            if vg not in self.vgs:
                return 5, "", f'  Volume group "{vg}" not found\n  Cannot process volume group {vg}\n'
            row = {"vg_name": vg, "vg_size": str(self.vgs[vg]), "vg_free": str(self._vg_free(vg)),
                   "vg_extent_size": str(EXTENT), "lv_count": str(sum(g == vg for g, _ in self.lvs))}
            rows.append({f: row[f] for f in fields})
        return 0, json.dumps({"report": [{"vg": rows}]}), ""

    def _lvextend(self, args: list[str]):
        options, positional = lvm_options("lvextend", args, "L:l:rnfy", ["size=", "extents=", "resizefs", "nofsck", "force", "yes"],
                                          {"--size": "-L", "--extents": "-l", "--resizefs": "-r", "--nofsck": "-n",
                                           "--force": "-f", "--yes": "-y"})
        if len(positional) != 1:
            assert not positional, f"FakeHost does not model lvextend onto named PVs: {positional}"
            raise Refused(LVM_CMD_LINE, "  Please provide the logical volume name\n  Run `lvextend --help' for more information.\n")
        assert "-r" not in options, "volctl hands out block devices: there is no file system to resize"
        vg, name = self._lv_path("lvextend", positional[0])
        if ("-L" in options) == ("-l" in options):
            raise Refused(LVM_CMD_LINE, "  Please specify either size or extents but not both.\n" if "-L" in options else
                          "  Please specify either size or extents.\n")
        if vg not in self.vgs:
            return 5, "", f'  Volume group "{vg}" not found\n  Cannot process volume group {vg}\n'
        if (vg, name) not in self.lvs:
            return 5, "", f'  Failed to find logical volume "{vg}/{name}"\n'
        lv = self.lvs[(vg, name)]
        if "-L" in options:
            sign, size = lvm_size("--size", options["-L"][-1], signed=True)
        else:
            sign, size = lvm_extents(options["-l"][-1], vg_size=self.vgs[vg], vg_free=self._vg_free(vg), signed=True)
        new = lv["size"] + size if sign == "+" else size
        old_extents, new_extents = lv["size"] // EXTENT, new // EXTENT
        if new == lv["size"]:
            return 5, "", f"  New size ({new_extents} extents) matches existing size ({old_extents} extents).\n"
        if new < lv["size"]:
            return 5, "", f"  New size given ({new_extents} extents) not larger than existing size ({old_extents} extents)\n"
        if lv["attr"][0] in "oO" and lv["attr"][_ACTIVE] == "a":  # lib/metadata/lv_manip.c _lvresize_check_type
            return 5, "", "  Snapshot origin volumes can be resized only while inactive: try lvchange -an.\n"
        if not lv["attr"].startswith("V") and new - lv["size"] > self._vg_free(vg):
            return 5, "", (f"  Insufficient free space: {new_extents - old_extents} extents needed, but only "
                           f"{self._vg_free(vg) // EXTENT} available\n")
        lv["size"] = new
        return 0, (f'  Size of logical volume {vg}/{name} changed from {old_extents * 4} MiB ({old_extents} extents) to '
                   f'{new_extents * 4} MiB ({new_extents} extents).\n  Logical volume {vg}/{name} successfully resized.\n'), ""

    def _lvrename(self, args: list[str]):
        """`lvrename VG OLD NEW` or `lvrename VG/OLD VG/NEW`. device-mapper renames an open device
        too (an export keeps serving it, under the old path it was given: cinder-manage.md §1)."""
        options, positional = lvm_options("lvrename", args, "", [], {})
        if len(positional) == 3:
            vg, old, new = positional
        elif len(positional) == 2 and all("/" in p for p in positional):
            (vg, old), (vg2, new) = (self._lv_path("lvrename", p) for p in positional)
            if vg != vg2:
                return 3, "", f'  Old and new volume group names need to match ("{vg}" != "{vg2}")\n'
        else:
            raise Refused(LVM_CMD_LINE, "  Old and new logical volume names required\n"
                                        "  Run `lvrename --help' for more information.\n")
        if vg not in self.vgs:
            return 5, "", f'  Volume group "{vg}" not found\n  Cannot process volume group {vg}\n'
        if (vg, old) not in self.lvs:
            return 5, "", f'  Existing logical volume "{old}" not found in volume group "{vg}"\n'
        if (vg, new) in self.lvs:
            return 5, "", f'  Logical Volume "{new}" already exists in volume group "{vg}"\n'
        self.lvs[(vg, new)] = self.lvs.pop((vg, old))
        for lv in self.lvs.values():
            if lv.get("origin") == old:
                lv["origin"] = new
        return 0, f'  Renamed "{old}" to "{new}" in volume group "{vg}"\n', ""

    def _lvremove(self, args: list[str]):
        options, positional = lvm_options("lvremove", args, "fy", ["config=", "force", "yes"],
                                          {"--force": "-f", "--yes": "-y"})
        for value in options.get("--config", []):
            lvm_config(value)
        if not positional:
            raise Refused(LVM_CMD_LINE, "  Please enter one or more logical volume paths\n"
                                        "  Run `lvremove --help' for more information.\n")
        targets = []
        for spec in positional:
            assert "/" in spec, f"lvremove {spec} would remove every LV of the volume group"
            vg, name = self._lv_path("lvremove", spec)
            if vg not in self.vgs:
                return 5, "", f'  Volume group "{vg}" not found\n  Cannot process volume group {vg}\n'
            if (vg, name) not in self.lvs:
                return 5, "", f'  Failed to find logical volume "{vg}/{name}"\n'
            if self.lvs[(vg, name)]["attr"][0] == "S":  # lv_remove_with_dependencies
                return 5, "", f"  Can't remove merging snapshot logical volume {vg}/{name}.\n"
            targets.append((vg, name))
        if "-f" not in options:  # it would ask; with stdin closed the answer is no
            vg, name = targets[0]
            return 5, "", f"Do you really want to remove active logical volume {vg}/{name}? [y/n]: \n" \
                          f"  Logical volume {name} not removed.\n"
        out = ""
        for vg, name in targets:
            if (vg, name) not in self.lvs:  # went with its origin
                continue
            # a pool takes its thin LVs along, an origin its snapshots (the prompt -f answers)
            thin = [key for key, lv in self.lvs.items() if key[0] == vg and lv["pool"] == name]
            for key in [*thin, *self._snapshots_of(vg, name), (vg, name)]:
                gone = self.lvs.pop(key)
                out += f'  Logical volume "{key[1]}" successfully removed.\n'
                if gone["attr"][0] in "sS":
                    self._origin_attr(vg, gone["origin"])
            for (g, _), lv in self.lvs.items():  # a thin snapshot outlives its origin, which lvs then no longer names
                if g == vg and lv.get("origin") == name:
                    lv["origin"] = ""
        return 0, out, ""

    def _lvchange(self, args: list[str]):
        """lvchange -a y|n [--yes] [-K | -k y|n] VG/LV, as Cinder's activate_lv and extend_volume run
        it: -K activates an LV with the activation-skip flag (attr 'k') too, -k sets or clears the
        flag; a thick origin's snapshots go with it, and a merge put off while it was open runs at
        its next activation (lvconvert(8) --merge)."""
        options, positional = lvm_options("lvchange", args, "a:yKk:",
                                          ["activate=", "yes", "ignoreactivationskip", "setactivationskip="],
                                          {"--activate": "-a", "--yes": "-y", "--ignoreactivationskip": "-K",
                                           "--setactivationskip": "-k"})
        activate = options.get("-a", [""])[-1]
        assert activate in ("y", "n"), f"volctl only ever activates or deactivates with lvchange: {args}"
        for value in options.get("-k", []):
            if value not in ("y", "n"):
                raise lvm_bad_argument("--setactivationskip", value)
        if len(positional) != 1:
            raise Refused(LVM_CMD_LINE, "  Please give one logical volume path.\n")
        vg, name = self._lv_path("lvchange", positional[0])
        if (vg, name) not in self.lvs:
            return 5, "", f'  Failed to find logical volume "{vg}/{name}"\n'
        lv = self.lvs[(vg, name)]
        if "-k" in options:
            lv["attr"] = _put(lv["attr"], _SKIP, "k" if options["-k"][-1] == "y" else "-")
        head = lv["origin"] if lv["attr"][0] in "sS" else name  # a COW snapshot is active with its origin
        group = [(vg, head), *self._snapshots_of(vg, head)]
        if activate == "n":
            assert head == name, "volctl deactivates volumes, never a snapshot on its own"
            if self._open(vg, name):  # lib/activate/activate.c lv_check_not_in_use
                return 5, "", f"  Logical volume {vg}/{name} in use.\n"
            for key in group:
                self.lvs[key]["attr"] = _put(self.lvs[key]["attr"], _ACTIVE, "-")
            return 0, "", ""
        if "-K" not in options and lv["attr"][_SKIP:_SKIP + 1] == "k":
            return 0, "", ""  # skipped, as vgchange -aay skips it at boot
        was_active = self.lvs[(vg, head)]["attr"][_ACTIVE] == "a"
        for key in group:
            self.lvs[key]["attr"] = _put(self.lvs[key]["attr"], _ACTIVE, "a")
        merging = [key for key in group[1:] if self.lvs[key]["attr"][0] == "S"]
        if merging and not was_active:
            self._merge_now(*merging[0])
        return 0, "", ""

    def _lvconvert(self, args: list[str]):
        """lvconvert --merge VG/SNAPSHOT of a COW snapshot (tools/lvconvert.c _lvconvert_merge_old_snapshot):
        at once when the origin is active and closed, the snapshot LV gone after; else put off until
        the origin's next activation, exit 0 all the same."""
        options, positional = lvm_options("lvconvert", args, "bi:y", ["merge", "background", "interval=", "yes"],
                                          {"--background": "-b", "--interval": "-i", "--yes": "-y"})
        assert "--merge" in options, f"volctl only ever merges with lvconvert: {args}"
        if len(positional) != 1:
            raise Refused(LVM_CMD_LINE, "  Please specify a logical volume path.\n  Run `lvconvert --help' for more information.\n")
        vg, name = self._lv_path("lvconvert", positional[0])
        if vg not in self.vgs:
            return 5, "", f'  Volume group "{vg}" not found\n  Cannot process volume group {vg}\n'
        lv = self.lvs.get((vg, name))
        if lv is None:
            return 5, "", f'  Failed to find logical volume "{vg}/{name}"\n'
        assert not lv["attr"].startswith("V"), "FakeHost does not model merging a thin snapshot: volctl merges only COW ones"
        if lv["attr"][0] not in "sS":  # a plain LV goes to the split-mirror merge, which refuses it
            return 5, "", f"  {vg}/{name} cannot be merged because --trackchanges was not used.\n"
        origin = lv["origin"]
        merging = [key for key in self._snapshots_of(vg, origin) if self.lvs[key]["attr"][0] == "S"]
        if merging:
            return 5, "", (f"  Cannot merge snapshot {vg}/{name} into the origin {vg}/{origin} with merging snapshot "
                           f"{vg}/{merging[0][1]}.\n")
        active = self.lvs[(vg, origin)]["attr"][_ACTIVE] == "a"
        if not active or self._open(vg, origin):
            lv["attr"] = "S" + lv["attr"][1:]
            self._origin_attr(vg, origin)
            why = "Delaying merge since origin is open." if active else "Conversion starts after activation."
            return 0, f"  {why}\n  Merging of snapshot {vg}/{name} will occur on next activation of {vg}/{origin}.\n", ""
        self._merge_now(vg, name)
        return 0, f"  Merging of volume {vg}/{name} started.\n  {vg}/{origin}: Merged: 100.00%\n", ""

    def _merge_now(self, vg: str, name: str) -> None:
        """The origin gets the snapshot's bytes back; the snapshot LV is gone."""
        snapshot = self.lvs.pop((vg, name))
        self.lvs[(vg, snapshot["origin"])]["content"] = snapshot.get("content", "")
        self._origin_attr(vg, snapshot["origin"])

    def _udevadm(self, args: list[str]):
        if not args or args[0] != "settle":
            return 1, "", f"udevadm: unknown command '{args[0] if args else ''}'\n" if args else "udevadm: missing command\n"
        try:
            options, extra = getopt.gnu_getopt(args[1:], "t:E:q", ["timeout=", "exit-if-exists=", "quiet"])
        except getopt.GetoptError as e:
            return 1, "", f"udevadm settle: {e.msg}\n"
        if extra:
            return 1, "", f"udevadm settle: extraneous argument '{extra[0]}'\n"
        return 0, "", ""

    def _device(self, path: str) -> tuple[tuple[str, str], str]:
        """(vg, lv) and the device-mapper layer ('' or 'cow') of an LV's device node; anything else
        (the host's disks, a file, an unknown VG, '-' not doubled) is never what volctl means."""
        match = re.fullmatch(r"/dev/([^/]+)/([^/]+)", path)
        if match and match.group(1) != "mapper":
            vg, name, layer = match.group(1), match.group(2), ""
        else:
            parts = dm_name_parts(path.removeprefix("/dev/mapper/")) if path.startswith("/dev/mapper/") else []
            assert 2 <= len(parts) <= 3 and all(parts), f"dd on {path!r}, which is not an LV's device"
            vg, name, layer = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
            assert layer in ("", "cow"), f"dd on the {layer} layer of {vg}/{name}: volctl only zeroes a COW store"
        assert vg in self.vgs, f"dd on {path!r}, which is not an LV's device"
        return (vg, name), layer

    def _node(self, path: str) -> dict | None:
        """The LV behind a device node, None when the node is not there: only an active LV has one,
        a thin pool none to write to, and only a COW snapshot a '-cow' layer."""
        key, layer = self._device(path)
        lv = self.lvs.get(key)
        if lv is None or lv["attr"].startswith("t") or lv["attr"][_ACTIVE] != "a":
            return None
        return lv if not layer or lv["attr"][0] in "sS" else None

    def _dd(self, args: list[str]):
        """Zeroing (if=/dev/zero) an LV or a snapshot's COW store, or copying one LV onto another."""
        operands = dd_operands(args)
        source, device = operands.get("if", ""), operands.get("of", "")
        if source == "/dev/zero":
            if "direct" in operands["iflag"]:  # /dev/zero has no O_DIRECT
                return 1, "", "dd: failed to open '/dev/zero': Invalid argument\n"
            data, available = "zero", None
        else:
            assert not self._device(source)[1] and not self._device(device)[1], f"volctl copies only whole LVs: {args}"
            lv = self._node(source)
            if lv is None:
                return 1, "", f"dd: failed to open '{source}': No such file or directory\n"
            data, available = lv.get("content", ""), lv["size"]
        lv = self._node(device)
        if lv is None:
            return 1, "", f"dd: failed to open '{device}': No such file or directory\n"
        block = operands.get("bs", 512)
        wanted = operands.get("count")
        if wanted is not None and "count_bytes" not in operands["iflag"]:
            wanted *= block
        limits = [x for x in (wanted, available) if x is not None]
        read = min(limits) if limits else None  # None: /dev/zero with no count, endless
        written = lv["size"] if read is None else min(read, lv["size"])
        full, part = divmod(written, block)
        status = operands.get("status")
        err = f"{written // 2} bytes ({written // 2} B) copied, 0.05 s, 1 GB/s\r" if status == "progress" else ""
        if status != "none":
            err += f"{full}+{int(part > 0)} records in\n{full}+{int(part > 0)} records out\n"
            err += f"{written} bytes ({written} B) copied, 0.1 s, 1 GB/s\n"
        if read is None or read > lv["size"]:  # the bytes it wrote are not what anyone asked for: content stays
            return 1, "", f"dd: error writing '{device}': No space left on device\n" + err
        whole = written == (available if available is not None else lv["size"])
        lv["content"] = data if whole else f"{data}[:{written}]+{lv.get('content', '')}"
        return 0, "", err
