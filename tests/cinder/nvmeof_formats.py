"""Cinder 29's own NVMeOF target code, run on the given inputs: what its nvmet helper records as a
volume's provider_location and what initialize_connection then hands out. Runs in the Cinder venv
(tests/vm/setup-host.sh makes .cache/vm/cinder); reads a JSON list of cases on stdin, writes a JSON
list of results. nvmetcli's `nvmet` library, which Cinder's privsep module imports, is on neither
PyPI nor Debian 12: its names are stood in for, and the export path that would call it is not run
(only get_nvmeof_location and initialize_connection, which are pure)."""

import json
import sys
import types
import warnings
from unittest import mock

warnings.simplefilter("ignore")
nvmet = types.ModuleType("nvmet")
for name in ("Root", "Subsystem", "Host", "Namespace", "Port", "Referral", "ANAGroup"):
    setattr(nvmet, name, type(name, (), {}))
nvmet.nvme = types.SimpleNamespace(CFSNotFound=type("CFSNotFound", (Exception,), {}))
sys.modules["nvmet"] = nvmet

from oslo_config import cfg  # noqa: E402

from cinder import objects  # noqa: E402

objects.register_all()
from cinder.volume import configuration, driver  # noqa: E402
from cinder.volume.targets import nvmet as cinder_nvmet  # noqa: E402

cfg.CONF([], project="cinder")
options = driver.volume_opts + driver.iser_opts + driver.nvmet_opts
results = []
for case in json.load(sys.stdin):
    config = configuration.Configuration(options, config_group=configuration.SHARED_CONF_GROUP)
    for key, value in case["settings"].items():
        cfg.CONF.set_override(key, value, group=configuration.SHARED_CONF_GROUP)
    with mock.patch.object(cinder_nvmet.nvmet, "Root"):
        target = cinder_nvmet.NVMET(configuration=config, executor=None)
    nqn = target._get_target_nqn(case["volume_id"], None)
    location = target.get_nvmeof_location(nqn, target.target_ips, target.target_port, target.nvme_transport_type,
                                          target.nvmet_ns_id)
    volume = mock.Mock(provider_location=location, name_id=case["volume_id"], id=case["volume_id"])
    volume.__getitem__ = lambda self, key: getattr(self, key)
    info = target.initialize_connection(volume, {"nqn": case["host"]})
    results.append({"nqn": nqn, "location": location, "info": json.loads(json.dumps(info))})
json.dump(results, sys.stdout)
