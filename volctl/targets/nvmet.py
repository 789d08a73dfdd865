"""NVMe/TCP through the kernel's nvmet, written in configfs (/sys/kernel/config/nvmet) as Cinder's
`nvmet` helper makes it, with two things Cinder leaves out: per-host access (`allow_any_host` 0,
each connected host linked into the subsystem's `allowed_hosts`, with its DH-HMAC-CHAP keys where
the kernel has in-band authentication), and persistence (the touched subsystems, their hosts and
ports rewritten in nvmetcli's JSON file, never a clear-and-restore). Facts: nvme-facts.md.

One subsystem per volume, `nqn.<prefix>-<volume id>`, with one namespace (`nvmet_ns_id`) whose
device is the LV and whose UUID and NGUID are the volume id (os-brick finds the device by it);
one port per address (`nvmet_port_id` upward), linked to every volctl subsystem.
"""

from __future__ import annotations

import errno
import time
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from volctl import nvmeof
from volctl.connection import manager_options
from volctl.errors import EnvironmentProblem, TargetFailed, UsageError
from volctl.locks import FileLock
from volctl.nvmeof import NvmeConfig
from volctl.targets import nvmet_config
from volctl.targets.driver import Defect, Secrets, TargetDriver
from volctl.targets.nvmet_config import ConfigFs
from volctl.targets.nvmet_saved import SavedNvmet

if TYPE_CHECKING:
    from volctl.model import Volume
    from volctl.runner import Runner

CONFIGFS_NVMET = Path("/sys/kernel/config/nvmet")
SAVE_FILE = Path("/etc/nvmet/config.json")  # nvmetcli's default, so `nvmetcli restore` loads it too
AUTH_KERNEL_OPTION = "CONFIG_NVME_TARGET_AUTH"
DHCHAP_HASH = "hmac(sha256)"
_PROBE_HOST = "nqn.2014-08.org.nvmexpress.volctl:probe"


class NvmetTarget(SavedNvmet, TargetDriver):
    name = "nvmet"
    family = "nvmet"
    protocols = (nvmeof.PROTOCOL,)
    what = "nvmet config"
    auth_method = nvmeof.AUTH_METHOD
    data_unit = "its namespace"

    def __init__(self, runner: Runner, lock: FileLock, root: Path = CONFIGFS_NVMET, save_file: Path = SAVE_FILE,
                 nvme: NvmeConfig = NvmeConfig(), auth: str = "auto", fs: ConfigFs = ConfigFs()):
        super().__init__(lock)
        self.runner = runner
        self.root = root
        self.fs = fs
        self.save_file = save_file
        self.nvme = nvme
        self.auth = auth
        # Ports whose address this process has checked (or made): a port's addr_* cannot change while
        # it links a subsystem, so checking its three attributes again for each export of a restore
        # (3,000 reads at 1,000) would find the same.
        self._checked_ports: set[int] = set()

    # -- names, credentials and formats ------------------------------------------------------

    def target_name(self, volume: Volume) -> str:
        return nvmeof.recorded_nqn(volume.provider_location) or self.nvme.nqn(volume.id)

    def volume_id_of(self, target: str) -> str | None:
        return self.nvme.volume_id_of(target)

    def new_secrets(self, volume: Volume) -> Secrets | None:
        return None  # an export has no secret of its own: each host has its keys

    def location(self, volume: Volume) -> str:
        return nvmeof.provider_location(self.nvme.ips, self.nvme.port, self.target_name(volume), self.nvme.ns_id)

    def connector_for(self, host: str) -> dict:
        if not nvmeof.looks_like_nqn(host):
            raise UsageError(f"{host} is not a host NQN, and this export is NVMe/TCP: give the host's NQN "
                             "(/etc/nvme/hostnqn on the host)")
        return {"nqn": host}

    def host_of(self, connector: dict) -> str:
        host = connector.get("nqn")
        if not isinstance(host, str):
            raise UsageError("the connector has no 'nqn': an NVMe/TCP export needs the host's NQN "
                             "(os-brick's connector properties have it; or --initiator <host NQN>)")
        return nvmeof.host_nqn(host)

    def connection_info(self, volume: Volume, connector: dict, access_mode: str,
                        force_multipath: bool = False, host_secrets: dict | None = None) -> dict:
        keys = nvmeof.HostKeys(host_secrets["dhchap_key"], host_secrets["dhchap_ctrl_key"]) if host_secrets else None
        data = nvmeof.connection_properties(volume_id=volume.id, location=volume.provider_location,
                                            version=self.nvme.conn_info_version, keys=keys)
        return {"driver_volume_type": nvmeof.DRIVER_VOLUME_TYPE, "data": {**data, **manager_options(connector, access_mode)}}

    # -- configfs ----------------------------------------------------------------------------

    def _subsystem(self, nqn: str) -> Path:
        return self.root / "subsystems" / nqn

    def _namespace(self, nqn: str) -> Path:
        return self._subsystem(nqn) / "namespaces" / str(self.nvme.ns_id)

    def _loaded(self) -> None:
        """nvmet in configfs, loading the modules when it is not (as rtslib loads LIO's)."""
        if not self.root.is_dir():
            for module in ("nvmet", "nvmet-tcp"):
                self.runner.run(["modprobe", module])
            if not self.root.is_dir():
                raise EnvironmentProblem(f"nvmet is not in configfs ({self.root}) after modprobe nvmet: "
                                         "mount configfs at /sys/kernel/config")

    def _failed(self, what: str, error: OSError) -> TargetFailed:
        return TargetFailed(f"nvmet: {what}: {error.strerror or error}")

    def _write(self, path: Path, value: str) -> None:
        self.fs.write(path, value)

    @staticmethod
    def _read(path: Path) -> str:
        return nvmet_config.read_attr(path)

    @cached_property
    def supports_auth(self) -> bool:
        """Whether this kernel's nvmet authenticates (its host entries have dhchap_key): a host
        entry is looked at, made for the question and removed when there is none."""
        self._loaded()
        hosts = self.root / "hosts"
        existing = [h for h in hosts.iterdir()] if hosts.is_dir() else []
        if existing:
            return (existing[0] / "dhchap_key").exists()
        probe = hosts / _PROBE_HOST
        try:
            self.fs.mkdir(probe)
        except FileExistsError:
            pass
        except OSError as e:
            raise self._failed("look for in-band authentication", e) from None
        try:
            return (probe / "dhchap_key").exists()
        finally:
            try:
                self.fs.rmdir(probe)
            except OSError:
                pass

    def authenticates(self) -> bool:
        """nvmet_auth: "off" never, "on" always (refused where the kernel cannot), "auto" where it can."""
        if self.auth == "off":
            return False
        if self.supports_auth:
            return True
        if self.auth == "on":
            raise EnvironmentProblem(f"nvmet_auth = \"on\", but this kernel's nvmet has no in-band authentication "
                                     f"({AUTH_KERNEL_OPTION}; Debian 12's backports kernel has it): not exporting")
        return False

    def credentials_for(self, host: str, stored: dict | None) -> tuple[dict | None, Secrets | None]:
        """The host's DH-HMAC-CHAP keys where exports authenticate: its stored pair, or a new one
        on its first connect (one pair per host NQN, for every subsystem that allows it)."""
        if not self.authenticates():
            return None, None
        if stored:
            return stored, None
        keys = nvmeof.generate_host_keys()
        fields = {"dhchap_key": keys.host_key, "dhchap_ctrl_key": keys.ctrl_key}
        return fields, Secrets(fields, f"generated DH-HMAC-CHAP keys for host {host}, not shown")

    # -- making and removing -----------------------------------------------------------------

    def _create_export(self, volume: Volume, target: str) -> None:
        self._loaded()
        self.authenticates()  # nvmet_auth = "on" on a kernel without it: refused before anything is made
        subsystem = self._subsystem(target)
        if subsystem.is_dir():
            return  # as every helper: a live target is left as it is (restore completes it)
        made = False
        try:
            self.fs.mkdir(subsystem)
            made = True
            self._write(subsystem / "attr_allow_any_host", "0")
            self._ensure_namespace(volume, target)
            self._link_ports(target)
        except (OSError, TargetFailed) as e:
            if made:
                self._remove_export(target)  # unlike Cinder's, leave nothing half-made behind
            if isinstance(e, TargetFailed):
                raise
            raise self._failed(f"create subsystem {target}", e) from None

    def _ensure_namespace(self, volume: Volume, target: str) -> None:
        namespace = self._namespace(target)
        if (namespace / "enable").is_file() and self._read(namespace / "enable") == "1" \
                and self._read(namespace / "device_path") == volume.lv_path:
            return
        if namespace.is_dir():
            self._write(namespace / "enable", "0")  # its device is settable only while disabled
        else:
            self.fs.mkdir(namespace)
        self._write(namespace / "device_path", volume.lv_path)
        self._write(namespace / "device_uuid", volume.id)
        self._write(namespace / "device_nguid", volume.id)
        self._write(namespace / "enable", "1")

    def _ports(self) -> list[tuple[int, str]]:
        return list(zip(self.nvme.port_ids(), self.nvme.ips))

    def _ensure_port(self, port_id: int, ip: str) -> Path:
        port = self.root / "ports" / str(port_id)
        want = {"trtype": nvmeof.TRANSPORT, "traddr": ip, "trsvcid": str(self.nvme.port)}
        exists = port.is_dir()
        if exists and port_id in self._checked_ports:
            return port
        if exists:
            have = {key: self._read(port / f"addr_{key}") for key in want}
            if have != want:
                raise TargetFailed(f"nvmet: port {port_id} listens on {have['traddr']}:{have['trsvcid']} "
                                   f"({have['trtype']}), not {ip}:{self.nvme.port} (tcp) as the settings say: another "
                                   f"tool's port? (nvmet_port_id picks volctl's)")
            self._checked_ports.add(port_id)
            return port
        self.fs.mkdir(port)
        self._write(port / "addr_trtype", nvmeof.TRANSPORT)
        self._write(port / "addr_adrfam", "ipv6" if ":" in ip else "ipv4")
        self._write(port / "addr_traddr", ip)
        self._write(port / "addr_trsvcid", str(self.nvme.port))
        self._checked_ports.add(port_id)
        return port

    def _link_ports(self, target: str) -> None:
        for port_id, ip in self._ports():
            port = self._ensure_port(port_id, ip)
            link = port / "subsystems" / target
            if link.is_symlink():
                continue
            deadline = time.monotonic() + self.address_wait
            while True:
                try:
                    # The first link enables the port: the transport binds its address here.
                    self.fs.symlink(link, self._subsystem(target))
                    break
                except OSError as e:
                    if e.errno != errno.EADDRNOTAVAIL or time.monotonic() >= deadline:
                        raise
                    time.sleep(1.0)  # at boot the address may come up after us

    def _remove_export(self, target: str) -> None:
        subsystem = self._subsystem(target)
        try:
            for port in self._port_dirs():
                link = port / "subsystems" / target
                if link.is_symlink():
                    self.fs.unlink(link)
            hosts = self.hosts(target)
            for host in hosts:
                self.fs.unlink(subsystem / "allowed_hosts" / host)
            namespaces = subsystem / "namespaces"
            for namespace in sorted(namespaces.iterdir()) if namespaces.is_dir() else ():
                self._write(namespace / "enable", "0")
                self.fs.rmdir(namespace)
            if subsystem.is_dir():
                self.fs.rmdir(subsystem)
            for host in hosts:
                self._drop_unused_host(host)
            self._drop_unused_ports()
        except OSError as e:
            raise self._failed(f"remove subsystem {target}", e) from None

    def _port_dirs(self) -> list[Path]:
        ports = self.root / "ports"
        return sorted(ports.iterdir()) if ports.is_dir() else []

    def _drop_unused_ports(self) -> None:
        """volctl's ports that link no subsystem any more (another tool's are not volctl's to remove)."""
        for port_id, _ in self._ports():
            port = self.root / "ports" / str(port_id)
            if port.is_dir() and not any((port / "subsystems").iterdir()):
                self._checked_ports.discard(port_id)
                self.fs.rmdir(port)

    def _drop_unused_host(self, host: str) -> None:
        subsystems = self.root / "subsystems"
        if any((s / "allowed_hosts" / host).is_symlink() for s in subsystems.iterdir()):
            return
        entry = self.root / "hosts" / host
        if entry.is_dir():
            self.fs.rmdir(entry)

    def _allow(self, volume: Volume, target: str, host: str, host_secrets: dict | None) -> None:
        subsystem = self._subsystem(target)
        if not subsystem.is_dir():
            raise TargetFailed(f"nvmet: allow {host}: subsystem {target} is not live")
        entry = self.root / "hosts" / host
        try:
            if not entry.is_dir():
                self.fs.mkdir(entry)
            if host_secrets and not (entry / "dhchap_key").exists():
                # a host that authenticated before (another kernel) must not now connect without it
                raise EnvironmentProblem(f"host {host} authenticates with DH-HMAC-CHAP, which this kernel's nvmet "
                                         f"cannot ({AUTH_KERNEL_OPTION}): not allowing it without")
            if host_secrets:
                self._write(entry / "dhchap_hash", DHCHAP_HASH)
                self._write(entry / "dhchap_key", host_secrets["dhchap_key"])
                self._write(entry / "dhchap_ctrl_key", host_secrets["dhchap_ctrl_key"])
            link = subsystem / "allowed_hosts" / host
            if not link.is_symlink():
                self.fs.symlink(link, entry)
        except OSError as e:
            raise self._failed(f"allow {host} on {target}", e) from None

    def _disallow(self, target: str, host: str) -> bool:
        link = self._subsystem(target) / "allowed_hosts" / host
        if not link.is_symlink():
            return False
        try:
            self.fs.unlink(link)
            self._drop_unused_host(host)
        except OSError as e:
            raise self._failed(f"remove {host} from {target}", e) from None
        return True

    # -- looking -----------------------------------------------------------------------------

    def _targets(self) -> list[str]:
        subsystems = self.root / "subsystems"
        return sorted(p.name for p in subsystems.iterdir()) if subsystems.is_dir() else []

    def is_live(self, target: str) -> bool:
        return self._subsystem(target).is_dir()

    def is_whole(self, target: str) -> bool:
        namespace = self._namespace(target)
        return self._read(namespace / "enable") == "1" and bool(self._read(namespace / "device_path"))

    def grown(self, volume: Volume) -> str | None:
        """The namespace revalidated (its `revalidate_size`, in 6.1's nvmet too): connected hosts
        get the Namespace-Attribute-Changed event and read the new size."""
        target = self.target_name(volume)
        path = self._namespace(target) / "revalidate_size"
        with self.lock.held():
            try:
                self.fs.write(path, "1")
            except OSError as e:
                raise self._failed(f"revalidate namespace {self.nvme.ns_id} of {target}", e) from None
        return f"namespace {self.nvme.ns_id} of {target} revalidated: connected hosts are told the new size"

    def rescan_hint(self, volume: Volume, host: str) -> str:
        return f"nvme ns-rescan /dev/nvmeN (the controller of {self.target_name(volume)}; the change event rescans by itself)"

    def defects(self, volume: Volume) -> list[Defect]:
        target = self.target_name(volume)
        subsystem, namespace = self._subsystem(target), self._namespace(target)
        found = []
        if self._read(subsystem / "attr_allow_any_host") == "1":
            found.append(Defect("open_to_any_host", target, f"the subsystem of {volume.name} lets any host connect "
                                "(attr_allow_any_host = 1): its allowed_hosts and keys are not asked for", None))
        device = self._read(namespace / "device_path")
        if not namespace.is_dir() or self._read(namespace / "enable") != "1" or device != volume.lv_path:
            state = "missing" if not namespace.is_dir() else f"on {device or 'no device'}, " + \
                ("enabled" if self._read(namespace / "enable") == "1" else "disabled")
            found.append(Defect("namespace", f"{target} namespace {self.nvme.ns_id}",
                                f"the namespace of {volume.name} is {state}, not enabled on {volume.lv_path}",
                                "enable it on the LV"))
        for port_id, ip in self._ports():
            port = self.root / "ports" / str(port_id)
            if not (port / "subsystems" / target).is_symlink():
                found.append(Defect("port_unlinked", f"port {port_id}", f"the subsystem of {volume.name} is not on "
                                    f"port {port_id} ({ip}:{self.nvme.port})" + ("" if port.is_dir() else ", which is missing"),
                                    "make the port and link the subsystem"))
        return found

    def mend(self, volume: Volume) -> list[str]:
        """The namespace on the LV and enabled, the subsystem on every port; never
        allow_any_host (a subsystem open to any host is the operator's to close)."""
        target = self.target_name(volume)
        done = [d.repair for d in self.defects(volume) if d.repair]
        if done:
            with self.changing(target):
                try:
                    self._ensure_namespace(volume, target)
                    self._link_ports(target)
                except OSError as e:
                    raise self._failed(f"mend subsystem {target}", e) from None
        return done

    def hosts(self, target: str) -> list[str]:
        allowed = self._subsystem(target) / "allowed_hosts"
        return sorted(p.name for p in allowed.iterdir()) if allowed.is_dir() else []

    def live_host_secrets(self, host: str) -> dict | None:
        entry = self.root / "hosts" / host
        key = self._read(entry / "dhchap_key")
        return {"dhchap_key": key, "dhchap_ctrl_key": self._read(entry / "dhchap_ctrl_key")} if key else None
