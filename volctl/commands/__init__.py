"""One module per subcommand, registered here in one list."""

from volctl.commands.attach import attach
from volctl.commands.connect import connect
from volctl.commands.create import create
from volctl.commands.delete import delete
from volctl.commands.detach import detach
from volctl.commands.doctor import doctor
from volctl.commands.disconnect import disconnect
from volctl.commands.export import export
from volctl.commands.extend import extend
from volctl.commands.history import history
from volctl.commands.list_cmd import list_
from volctl.commands.reserve import reserve
from volctl.commands.reset_state import reset_state
from volctl.commands.restore import restore
from volctl.commands.revert import revert
from volctl.commands.show import show
from volctl.commands.snapshot import snapshot
from volctl.commands.unexport import unexport
from volctl.commands.unreserve import unreserve

COMMANDS = [create, list_, show, reserve, unreserve, export, connect, attach, detach, disconnect, unexport, delete,
            extend, reset_state, history, doctor, restore, snapshot, revert]
