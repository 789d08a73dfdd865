"""volctl's NVMe/TCP formats against Cinder 29's own NVMeOF target code, run in the Cinder venv
(tests/cinder/nvmeof_formats.py) with the same inputs: the subsystem NQN, provider_location and
the connection info (versions 1 and 2), key for key and type for type. The venv comes with
`scripts/setup --vm` (tests/vm/setup-host.sh), which the README's test command runs first."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from volctl.connection import manager_options
from volctl.locks import FileLock
from volctl.model import Volume
from volctl.nvmeof import NvmeConfig
from volctl.runner import Runner
from volctl.targets.nvmet import NvmetTarget

ROOT = Path(__file__).resolve().parent.parent
CINDER_PYTHON = ROOT / ".cache" / "vm" / "cinder" / "bin" / "python"
SCRIPT = ROOT / "tests" / "cinder" / "nvmeof_formats.py"
VOL = "6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10"
HOST = "nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427"

# volctl's settings -> Cinder's options of the same meaning (Cinder's target_port and target_prefix
# serve nvmet too; volctl keeps iSCSI's and NVMe's apart)
CASES = [
    dict(ips=("127.0.0.1",), port=4420, port_id=1, ns_id=10, prefix="nvme-subsystem-1", version=1),
    dict(ips=("10.0.0.5",), port=4421, port_id=3, ns_id=1, prefix="nvme-host-a", version=1),
    dict(ips=("10.0.0.5", "10.0.0.6"), port=4420, port_id=1, ns_id=10, prefix="nvme-subsystem-1", version=2),
    dict(ips=("192.0.2.7",), port=4420, port_id=1, ns_id=8192, prefix="nvme-subsystem-1", version=2),
]


@pytest.fixture(scope="module")
def cinders() -> list[dict]:
    if not CINDER_PYTHON.exists():
        pytest.fail(f"{CINDER_PYTHON} is missing: run scripts/setup --vm (the README's test command does)")
    cases = [{"settings": {"target_ip_address": c["ips"][0], "target_secondary_ip_addresses": list(c["ips"][1:]),
                           "target_port": c["port"], "nvmet_port_id": c["port_id"], "nvmet_ns_id": c["ns_id"],
                           "target_prefix": c["prefix"], "target_protocol": "nvmet_tcp",
                           "nvmeof_conn_info_version": c["version"]},
              "volume_id": VOL, "host": HOST} for c in CASES]
    done = subprocess.run([str(CINDER_PYTHON), str(SCRIPT)], input=json.dumps(cases), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.parametrize("i", range(len(CASES)))
def test_nqn_location_and_connection_info_are_cinders(tmp_path, cinders, i):
    c, cinder = CASES[i], cinders[i]
    nvmet = NvmetTarget(Runner(), FileLock(tmp_path / "nvmet.lock", wait=5), tmp_path / "nvmet", tmp_path / "nvmet.json",
                        NvmeConfig(c["prefix"], c["ips"], c["port"], c["port_id"], c["ns_id"], c["version"]), "off")
    volume = Volume(id=VOL, name="v", size=1, status="available", attach_status="detached", multiattach=False,
                    volume_group="cinder-volumes", lv_name=f"volume-{VOL}", lv_path=f"/dev/cinder-volumes/volume-{VOL}",
                    provider_location=None, provider_auth=None, previous_status=None, created_at="t", updated_at="t")
    assert nvmet.target_name(volume) == cinder["nqn"]
    location = nvmet.location(volume)
    assert location == cinder["location"]
    info = nvmet.connection_info(volume.but(provider_location=location), {"nqn": HOST}, "rw")
    manager = manager_options({"nqn": HOST}, "rw")  # what Cinder's volume manager adds to every protocol's
    target_part = {k: v for k, v in info["data"].items() if k not in manager}
    assert {**info, "data": target_part} == cinder["info"]
    assert json.dumps(target_part, sort_keys=True) == json.dumps(cinder["info"]["data"], sort_keys=True)  # types too
