"""What the nvmet helper (volctl/targets/nvmet.py) persists: nvmetcli's JSON file, rewritten for the
subsystems a change set touched (with their hosts and volctl's ports), never cleared and loaded
whole; and how it differs from what is live. Mixed into NvmetTarget, which gives the configfs
root, the save file, the settings and the live views."""

from __future__ import annotations

from typing import Callable

from volctl.errors import EnvironmentProblem
from volctl.targets import nvmet_config
from volctl.targets.driver import PersistenceProblem


class SavedNvmet:
    @property
    def persisted_to(self) -> str:
        return str(self.save_file)

    def _dump_subsystem(self, nqn: str) -> dict | None:
        return nvmet_config.subsystem(self.root, nqn)

    def _dump_host(self, host: str) -> dict | None:
        return nvmet_config.host(self.root, host)

    def _read_saved(self) -> dict | None:
        return nvmet_config.read(self.save_file)

    def _persist(self, targets: frozenset[str]) -> None:
        if not targets:
            return
        try:
            document = self._read_saved()
        except EnvironmentProblem:
            document = None  # unreadable: as a full save would, write it anew
        if document is None:
            self._save_all()
            return
        try:
            subsystems = {s["nqn"]: s for s in document.get("subsystems", []) if isinstance(s, dict) and "nqn" in s}
            hosts = {h["nqn"]: h for h in document.get("hosts", []) if isinstance(h, dict) and "nqn" in h}
            touched_hosts = {h for nqn in targets for h in subsystems.get(nqn, {}).get("allowed_hosts", [])}
            for nqn in targets:
                dumped = self._dump_subsystem(nqn)
                if dumped is None:
                    subsystems.pop(nqn, None)
                else:
                    subsystems[nqn] = dumped
                    touched_hosts |= set(dumped["allowed_hosts"])
            for host in touched_hosts:
                dumped = self._dump_host(host)
                if dumped is None:
                    hosts.pop(host, None)
                else:
                    hosts[host] = dumped
            ports = {p["portid"]: p for p in document.get("ports", []) if isinstance(p, dict) and "portid" in p}
            for port_id, _ in self._ports():
                port = self.root / "ports" / str(port_id)
                if port.is_dir():
                    ports[port_id] = nvmet_config.port(port)
                else:
                    ports.pop(port_id, None)
        except OSError as e:
            raise self._failed("read the subsystems to save", e) from None
        document.update(subsystems=[subsystems[k] for k in sorted(subsystems)], hosts=[hosts[k] for k in sorted(hosts)],
                        ports=[ports[k] for k in sorted(ports)])
        document.setdefault("discovery", {})
        nvmet_config.write(self.save_file, document)

    def _save_all(self) -> None:
        try:
            subsystems = [self._dump_subsystem(nqn) for nqn in self._targets()]
            hosts_dir = self.root / "hosts"
            hosts = [self._dump_host(h.name) for h in sorted(hosts_dir.iterdir())] if hosts_dir.is_dir() else []
            ports = [nvmet_config.port(port) for port in self._port_dirs()]
        except OSError as e:
            raise self._failed("read the running config", e) from None
        nvmet_config.write(self.save_file, {"discovery": {}, "hosts": [h for h in hosts if h], "ports": ports,
                                            "subsystems": [s for s in subsystems if s]})

    def unsaved(self, ours: Callable[[str], bool] | None = None) -> list[str]:
        """volctl's subsystems whose saved entry (the subsystem, its hosts' keys) differs from the live one."""
        document = self._read_saved() or {}
        stored = {s.get("nqn"): s for s in document.get("subsystems", []) if isinstance(s, dict)}
        stored_hosts = {h.get("nqn"): h for h in document.get("hosts", []) if isinstance(h, dict)}
        wanted = lambda nqn: self.volume_id_of(nqn or "") is not None and (ours is None or ours(nqn))  # noqa: E731
        names = {n for n in stored if wanted(n)} | {n for n in self._targets() if wanted(n)}
        differ = []
        for nqn in sorted(names):
            live = self._dump_subsystem(nqn)
            saved = stored.get(nqn)
            if live != saved:
                differ.append(nqn)
            elif live and any(self._dump_host(h) != stored_hosts.get(h) for h in live["allowed_hosts"]):
                differ.append(nqn)
        return differ

    def persistence_problems(self, ours: Callable[[str], bool] | None = None) -> list[PersistenceProblem]:
        path = str(self.save_file)
        try:
            differ = self.unsaved(ours)
        except EnvironmentProblem as e:
            return [PersistenceProblem("saved_config", path, str(e))]
        if not differ:
            return []
        if not self.save_file.exists():
            return [PersistenceProblem("saved_config", path,
                                       "no saved nvmet config: the subsystems would not come back after a reboot")]
        return [PersistenceProblem("saved_config", path,
                                   f"the saved nvmet config differs from the running one for: {', '.join(differ)}")]
