"""The LVM programs and dd of tests/fakehost.py's FakeHost, parsing their argv as the real ones do
(tests/fakeargs.py): state is the host's `vgs` (name -> bytes) and `lvs` ((vg, name) -> size, attr, pool)."""

from __future__ import annotations

import getopt
import json
import re

from fakeargs import (EXTENT, LVM_CMD_LINE, Refused, dd_operands, lvm_bad_argument, lvm_config, lvm_extents, lvm_name,
                      lvm_options, lvm_report_options, lvm_size)

GIB = 1024**3


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

    def _lvcreate(self, args: list[str]):
        options, positional = lvm_options(
            "lvcreate", args, "n:L:l:TV:yW:Z:a:",
            ["name=", "size=", "extents=", "thin", "virtualsize=", "thinpool=", "yes", "wipesignatures=", "zero=",
             "activate="],
            {"--name": "-n", "--size": "-L", "--extents": "-l", "--thin": "-T", "--virtualsize": "-V", "--yes": "-y",
             "--wipesignatures": "-W", "--zero": "-Z", "--activate": "-a"},
        )
        for flag in ("-W", "-Z", "-a"):
            for value in options.get(flag, []):
                if value not in ("y", "n"):
                    raise lvm_bad_argument(flag, value)
        if len(positional) != 1:
            assert len(positional) > 1 or not positional, positional
            raise Refused(LVM_CMD_LINE, "  Please specify a volume group (or VG/LV) to create in.\n"
                                        "  Run `lvcreate --help' for more information.\n")
        vg, _, lv_part = positional[0].partition("/")
        if vg not in self.vgs:
            return 5, "", f'  Volume group "{vg}" not found\n  Cannot process volume group {vg}\n'
        if "-L" in options and "-l" in options:
            raise Refused(LVM_CMD_LINE, "  Please specify either size or extents (not both).\n")
        size = None
        if "-L" in options:
            size = lvm_size("--size", options["-L"][-1])[1]
        elif "-l" in options:
            size = lvm_extents(options["-l"][-1], vg_size=self.vgs[vg], vg_free=self._vg_free(vg))[1]
        name = lvm_name(options["-n"][-1]) if "-n" in options else None
        thin = "-T" in options or "--thinpool" in options
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
        else:
            name = name or lv_part or self._free_lv_name(vg)
            attr, pool = "-wi-a-----", ""
        if size is None:
            raise Refused(LVM_CMD_LINE, "  No command with matching syntax recognised.  Run 'lvcreate --help' for more "
                                        "information.\n  Please specify either size or extents.\n")
        if size == 0:
            raise Refused(LVM_CMD_LINE, "  Size must be larger than 0.\n")
        if (vg, name) in self.lvs:
            return 5, "", f'  Logical Volume "{name}" already exists in volume group "{vg}"\n'
        if not attr.startswith("V") and size > self._vg_free(vg):
            return 5, "", (f'  Volume group "{vg}" has insufficient free space ({self._vg_free(vg) // EXTENT} extents): '
                           f'{size // EXTENT} required.\n')
        self.lvs[(vg, name)] = {"size": size, "attr": attr, "pool": pool if attr.startswith("V") else ""}
        return 0, f'  Logical volume "{name}" created.\n', ""

    def _free_lv_name(self, vg: str) -> str:
        return next(f"lvol{i}" for i in range(len(self.lvs) + 1) if (vg, f"lvol{i}") not in self.lvs)

    _LV_FIELDS = ("vg_name", "lv_name", "lv_size", "lv_attr", "lv_path", "pool_lv", "lv_full_name")
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
                    row = {"vg_name": g, "lv_name": n, "lv_size": str(lv["size"]), "lv_attr": lv["attr"],
                           "lv_path": f"/dev/{g}/{n}", "pool_lv": lv["pool"], "lv_full_name": f"{g}/{n}"}
                    rows.append({f: row[f] for f in fields})
        return 0, json.dumps({"report": [{"lv": rows}]}), ""

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
        if not lv["attr"].startswith("V") and new - lv["size"] > self._vg_free(vg):
            return 5, "", (f"  Insufficient free space: {new_extents - old_extents} extents needed, but only "
                           f"{self._vg_free(vg) // EXTENT} available\n")
        lv["size"] = new
        return 0, (f'  Size of logical volume {vg}/{name} changed from {old_extents * 4} MiB ({old_extents} extents) to '
                   f'{new_extents * 4} MiB ({new_extents} extents).\n  Logical volume {vg}/{name} successfully resized.\n'), ""

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
            targets.append((vg, name))
        if "-f" not in options:  # it would ask; with stdin closed the answer is no
            vg, name = targets[0]
            return 5, "", f"Do you really want to remove active logical volume {vg}/{name}? [y/n]: \n" \
                          f"  Logical volume {name} not removed.\n"
        out = ""
        for vg, name in targets:
            thin = [key for key, lv in self.lvs.items() if key[0] == vg and lv["pool"] == name]
            for key in [*thin, (vg, name)]:
                del self.lvs[key]
                out += f'  Logical volume "{key[1]}" successfully removed.\n'
        return 0, out, ""

    def _lvchange(self, args: list[str]):
        """lvchange -a y --yes -K VG/LV: activates, even an LV with the activation-skip flag (attr 'k')."""
        options, positional = lvm_options("lvchange", args, "a:yK", ["activate=", "yes", "ignoreactivationskip"],
                                          {"--activate": "-a", "--yes": "-y", "--ignoreactivationskip": "-K"})
        assert options.get("-a") == ["y"], f"volctl only ever activates with lvchange: {args}"
        if len(positional) != 1:
            raise Refused(LVM_CMD_LINE, "  Please give one logical volume path.\n")
        vg, name = self._lv_path("lvchange", positional[0])
        if (vg, name) not in self.lvs:
            return 5, "", f'  Failed to find logical volume "{vg}/{name}"\n'
        attr = self.lvs[(vg, name)]["attr"]
        if "-K" in options or attr[9:10] != "k":
            self.lvs[(vg, name)]["attr"] = attr[:4] + "a" + attr[5:]
        return 0, "", ""

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

    def _dd(self, args: list[str]):
        operands = dd_operands(args)
        assert operands.get("if") == "/dev/zero", f"volctl only ever zeroes with dd: {args}"
        device = operands.get("of", "")
        match = re.fullmatch(r"/dev/([^/]+)/([^/]+)", device)
        assert match and match.group(1) in self.vgs, f"dd onto {device!r}, which is not an LV's device: {args}"
        lv = self.lvs.get((match.group(1), match.group(2)))
        if lv is None or lv["attr"].startswith("t"):  # a thin pool has no /dev/VG/POOL to write to
            return 1, "", f"dd: failed to open '{device}': No such file or directory\n"
        block = operands.get("bs", 512)
        wanted = operands.get("count")
        if wanted is not None and "count_bytes" not in operands["iflag"]:
            wanted *= block
        written = lv["size"] if wanted is None else min(wanted, lv["size"])
        full, part = divmod(written, block)
        status = operands.get("status")
        err = f"{written // 2} bytes ({written // 2} B) copied, 0.05 s, 1 GB/s\r" if status == "progress" else ""
        if status != "none":
            err += f"{full}+{int(part > 0)} records in\n{full}+{int(part > 0)} records out\n"
            err += f"{written} bytes ({written} B) copied, 0.1 s, 1 GB/s\n"
        if wanted is None or wanted > lv["size"]:
            return 1, "", f"dd: error writing '{device}': No space left on device\n" + err
        return 0, "", err
