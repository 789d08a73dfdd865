"""The service: one method per use case, each claim (compare-and-swap) -> act on the host ->
settle or roll back, by the transition table (volctl/model.py). Knows nothing of click, rich or
sh; every host effect goes through lvm.py and the target helpers (volctl/targets/).

Split by domain as the entities grew (volumes, attachments, exports, snapshots, managing, and the
repairs restore and doctor make); VolumeService is the one facade the commands, doctor and
restore use.
"""

from volctl.service.attachments import Attachments
from volctl.service.core import Outcome, Progress, ServiceCore
from volctl.service.manage import Managing
from volctl.service.repairs import Repairs


class VolumeService(Repairs, Attachments, Managing):
    """Every use case, over one inventory, one set of locks and one runner."""


__all__ = ["Outcome", "Progress", "ServiceCore", "VolumeService"]
