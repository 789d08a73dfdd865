"""The shape of the code, read from its source: no import cycle inside volctl/, one module for each
outside thing, and nothing above the target driver base that names a protocol's parts."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "volctl"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports(path: Path) -> set[str]:
    """Every volctl module this one imports, at the top or inside a function (a deferred import is
    still a dependency), but not under `if TYPE_CHECKING:`, which never runs."""
    tree = ast.parse(path.read_text())
    skipped = {id(n) for block in ast.walk(tree) if _type_checking_block(block) for n in ast.walk(block)}
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("volctl")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if not base.startswith("volctl"):
                continue
            for alias in node.names:  # `from volctl.targets import saved` imports the submodule
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {m for m in found if m in MODULES and m != me}


GRAPH = {name: imports(path) for name, path in MODULES.items()}


def _registered_commands() -> set[str]:
    """The root group imports each command's module by name from the registry in
    volctl/commands/__init__.py when it runs: edges the import statements do not show."""
    from volctl.commands import COMMANDS

    return {f"volctl.commands.{module}" for module, _ in COMMANDS.values()}


GRAPH["volctl.group"] |= _registered_commands()


def test_no_import_cycle_inside_volctl():
    """Depth-first search for a back edge; the message names the cycle."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(GRAPH):
        if node not in state:
            visit(node)


def test_the_checker_finds_a_cycle_when_there_is_one():
    """The graph is read as the test reads it: the App import that once closed a loop through
    every command would be an edge commands/_options -> group -> commands.connect -> ... again."""
    assert "volctl.app" in GRAPH["volctl.commands._options"]
    assert not {"volctl.cli", "volctl.group"} & GRAPH["volctl.commands._options"]
    assert "volctl.group" in GRAPH["volctl.cli"] and "volctl.commands.connect" in GRAPH["volctl.group"]


@pytest.mark.parametrize("library, allowed", [
    ("sqlite_utils", {"volctl.inventory", "volctl.migrations"}),
    ("rich", {"volctl.output", "volctl.output_history", "volctl.output_reports"}),
    ("sh", {"volctl.runner"}),
])
def test_one_module_for_each_outside_library(library, allowed):
    users = set()
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            if any(n == library or n.startswith(library + ".") for n in names):
                users.add(name)
    assert users <= allowed


ABOVE_THE_DRIVER = [p for p in MODULES.values()
                    if p.parent == PACKAGE / "service" or p in (PACKAGE / "doctor.py", PACKAGE / "restore.py")]
PROTOCOL_WORDS = re.compile(r"\b(iqn|iqns|chap|lio|cinder-rtstool|rtstool)\b", re.IGNORECASE)


@pytest.mark.parametrize("path", ABOVE_THE_DRIVER, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_nothing_above_the_driver_base_names_a_protocols_parts(path):
    """The service, doctor and restore speak of targets and hosts; an IQN, CHAP, LIO or its tool
    is the helpers' business (volctl/iscsi.py, volctl/targets/)."""
    found = [f"{path.name}:{n}: {line.strip()}" for n, line in enumerate(path.read_text().splitlines(), 1)
             if PROTOCOL_WORDS.search(line)]
    assert found == []



def test_no_module_is_much_over_400_lines():
    sizes = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert {name: n for name, n in sizes.items() if n > 420} == {}
