"""One module per subcommand, registered here in one table: command name -> (module, attribute).
The root group (volctl/group.py) imports a module when its command runs, so this package imports
none of them, nor click."""

COMMANDS: dict[str, tuple[str, str]] = {
    "create": ("create", "create"),
    "list": ("list_cmd", "list_"),
    "show": ("show", "show"),
    "reserve": ("reserve", "reserve"),
    "unreserve": ("unreserve", "unreserve"),
    "export": ("export", "export"),
    "connect": ("connect", "connect"),
    "attach": ("attach", "attach"),
    "detach": ("detach", "detach"),
    "disconnect": ("disconnect", "disconnect"),
    "unexport": ("unexport", "unexport"),
    "delete": ("delete", "delete"),
    "extend": ("extend", "extend"),
    "reset-state": ("reset_state", "reset_state"),
    "history": ("history", "history"),
    "doctor": ("doctor", "doctor"),
    "restore": ("restore", "restore"),
    "snapshot": ("snapshot", "snapshot"),
    "revert": ("revert", "revert"),
    "manageable": ("manageable", "manageable"),
    "manage": ("manage", "manage"),
    "unmanage": ("unmanage", "unmanage"),
    "metrics": ("metrics", "metrics"),
}
