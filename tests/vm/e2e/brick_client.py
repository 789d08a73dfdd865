"""os-brick as nova drives it, run with the tools venv's Python inside the guest.

    brick_client.py connector            -> get_connector_properties(...) as JSON
    brick_client.py connect < data.json  -> connect_volume(data), read back, disconnect_volume
    brick_client.py extend < data.json   -> extend_volume(data) on a device already connected, as
                                            nova does after Cinder's volume-extended event

Privileged calls run in-process (there is no sudo/privsep-helper in the guest), and
oslo.concurrency gets a lock directory of its own."""

import hashlib
import json
import os
import sys
import tempfile

os.environ.setdefault("OSLO_LOCK_PATH", tempfile.mkdtemp(prefix="brick-locks-"))

from os_brick.initiator import connector  # noqa: E402
from os_brick.privileged import default as privileged  # noqa: E402

privileged.set_client_mode(False)


def main() -> None:
    command = sys.argv[1]
    if command == "connector":
        print(json.dumps(connector.get_connector_properties(None, "127.0.0.1", False, False)))
        return
    payload = json.load(sys.stdin)
    info, offset, length = payload["connection_info"], payload.get("offset", 0), payload.get("length", 0)
    brick = connector.InitiatorConnector.factory(info["driver_volume_type"].upper(), None, use_multipath=False)
    if command == "extend":
        print(json.dumps({"new_size": brick.extend_volume(info["data"])}))
        return
    device = brick.connect_volume(info["data"])
    try:
        with open(device["path"], "rb", buffering=0) as f:
            f.seek(offset)
            digest = hashlib.sha256(f.read(length)).hexdigest() if length else None
        block = os.path.basename(os.path.realpath(device["path"]))
        with open(f"/sys/class/block/{block}/size") as sectors:
            size = int(sectors.read()) * 512
    finally:
        brick.disconnect_volume(info["data"], device)
    print(json.dumps({"device": {k: v for k, v in device.items() if isinstance(v, (str, int))}, "sha256": digest, "size": size}))


if __name__ == "__main__":
    main()
