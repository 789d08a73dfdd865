"""Cinder 29's own LVM driver (LVMVolumeDriver with the lioadm target helper, cinder-rtstool), run
in-process with no database and no message bus, as ../shared/reference/cinder-manage.md §7 says:
the other side of volctl's hand-off test (tests/vm/e2e/test_cinder_handoff.py).

Runs in the Cinder venv (.cache/vm/cinder, made by tests/vm/setup-host.sh), as root in the guest,
so Cinder's commands run as root directly (processutils drops the root helper for euid 0, privsep
runs in-process). Its imports take long under TCG, so one process serves the whole test: one JSON
request a line on stdin, one JSON reply a line on stdout ({"ok": ...} or {"error": "..."});
Cinder's logging goes to stderr.

The two database reads the driver makes are stood in for: Volume.exists (manage_existing's
"already managed" check) by the ids this process knows, and the target's db.volume_get (the CHAP
credentials a volume already has) by this process's volumes."""

import json
import os
import sys
import tempfile
import traceback
import warnings

warnings.simplefilter("ignore")
reply_to = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
sys.stdout = sys.stderr  # whatever Cinder prints stays off the reply channel

from oslo_config import cfg  # noqa: E402

from cinder.common import config as _registers_options  # noqa: E402,F401
from cinder import context as cinder_context  # noqa: E402
from cinder import objects  # noqa: E402

objects.register_all()
from cinder import privsep  # noqa: E402
from cinder.volume import configuration, driver  # noqa: E402
from cinder.volume.drivers import lvm  # noqa: E402

BACKEND = "lvm"
HOST = f"handoff@{BACKEND}"
VOLUMES: dict[str, objects.Volume] = {}  # Cinder's "database": this process's volumes by id


class Db:
    """cinder.db.api's volume_get, as the iSCSI target asks it for a volume's CHAP credentials."""

    @staticmethod
    def volume_get(ctxt, volume_id):
        from cinder import exception

        if volume_id not in VOLUMES:
            raise exception.NotFound()
        return {"id": volume_id, "provider_auth": VOLUMES[volume_id].provider_auth}


def start(settings: dict) -> lvm.LVMVolumeDriver:
    cfg.CONF([], project="cinder", default_config_files=[], default_config_dirs=[])
    cfg.CONF.set_override("lock_path", tempfile.mkdtemp(prefix="cinder-locks-"), group="oslo_concurrency")
    conf = configuration.Configuration(driver.volume_opts, config_group=BACKEND)
    conf.append_config_values(lvm.volume_opts)
    options = {"lvm_type": "default", "lvm_conf_file": "None", "target_helper": "lioadm", "target_protocol": "iscsi",
               "target_prefix": "iqn.2010-10.org.openstack:", "target_port": 3260, "volume_backend_name": BACKEND,
               "volume_clear": "none", **settings}
    for key, value in options.items():
        cfg.CONF.set_override(key, value, group=BACKEND)
    privsep.sys_admin_pctxt.set_client_mode(False)  # root already: privsep entrypoints (lvrename) in-process
    objects.Volume.exists = classmethod(lambda cls, ctxt, volume_id: volume_id in VOLUMES)
    found = lvm.LVMVolumeDriver(configuration=conf, host=HOST)
    found.target_driver.db = Db
    found.do_setup(None)
    found.check_for_setup_error()
    found.set_initialized()
    return found


def new_volume(ctxt, volume_id: str, size: int) -> objects.Volume:
    return objects.Volume(
        context=ctxt, id=volume_id, _name_id=None, size=size, status="creating", host=f"{HOST}#{BACKEND}",
        volume_type_id=None, encryption_key_id=None, provider_location=None, provider_auth=None,
        provider_geometry=None, multiattach=False, admin_metadata={},
        volume_attachment=objects.VolumeAttachmentList(objects=[]))


def export(drv, ctxt, volume, connector: dict) -> dict:
    """create_export, its model update recorded as Cinder's manager does, then initialize_connection."""
    update = drv.create_export(ctxt, volume, connector)
    volume.provider_location, volume.provider_auth = update["provider_location"], update["provider_auth"]
    info = drv.initialize_connection(volume, connector)
    return {"name": volume.name, "provider_location": volume.provider_location,
            "provider_auth": volume.provider_auth, "connection_info": info}


def handle(drv, ctxt, request: dict):
    op = request["op"]
    if op == "manage":  # what `cinder manage <host> <source-name>` has the driver do, then an attach's export
        volume = new_volume(ctxt, request["id"], 0)
        ref = {"source-name": request["source_name"]}
        volume.size = drv.manage_existing_get_size(volume, ref)
        drv.manage_existing(volume, ref)
        volume.status = "available"
        VOLUMES[volume.id] = volume
        return {"size": volume.size, **export(drv, ctxt, volume, request["connector"])}
    if op == "manage_refused":  # manage_existing of a reference Cinder must refuse: its message
        volume = new_volume(ctxt, request["id"], 0)
        try:
            drv.manage_existing(volume, {"source-name": request["source_name"]})
        except Exception as e:  # noqa: BLE001 - the refusal is the answer
            return {"refused": type(e).__name__, "message": str(e)}
        return {"refused": None}
    if op == "create":
        volume = new_volume(ctxt, request["id"], request["size"])
        drv.create_volume(volume)
        volume.status = "available"
        VOLUMES[volume.id] = volume
        return export(drv, ctxt, volume, request["connector"])
    if op == "release":  # detach (terminate_connection), then what `cinder unmanage` has the driver do
        volume = VOLUMES[request["id"]]
        drv.terminate_connection(volume, request["connector"])
        drv.remove_export(ctxt, volume)
        drv.unmanage(volume)
        if request.get("forget"):
            del VOLUMES[volume.id]  # unmanage soft-deletes the row: the CHAP credentials leave with it
        return {"name": volume.name}
    if op == "delete":
        volume = VOLUMES.pop(request["id"])
        drv.delete_volume(volume)
        return {"name": volume.name}
    raise ValueError(f"unknown op {op!r}")


def main() -> int:
    settings = json.loads(sys.stdin.readline())
    drv = start(settings)
    ctxt = cinder_context.get_admin_context()
    reply_to.write(json.dumps({"ok": {"ready": True}}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = {"ok": handle(drv, ctxt, json.loads(line))}
        except Exception as e:  # noqa: BLE001 - reported to the test, which fails on it
            traceback.print_exc()
            answer = {"error": f"{type(e).__name__}: {e}"}
        reply_to.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
