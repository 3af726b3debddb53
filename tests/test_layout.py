"""The three rooms' doors open one way: maestro_tui → agents → engine (DESIGN.md §2).

Every import in every module counts — top level or inside a function, `import x`,
`from x import y`, relative imports, and `importlib.import_module("x")` with a literal name.
CI checks this before the other tests, with the README's test command, which it runs as written.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROOMS = ("engine", "agents", "maestro_tui")
# the rooms each room must not import
FORBIDDEN = {"engine": {"agents", "maestro_tui"}, "agents": {"maestro_tui"}, "maestro_tui": set()}


def imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, dotted module name) of every import in the file at `path`, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = list(path.relative_to(root).with_suffix("").parts)[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level - 1 <= len(package) else []
                if node.module:
                    found.append((node.lineno, ".".join([*base, node.module])))
                else:  # `from . import x`: each name may be a module of that package
                    found += [(node.lineno, ".".join([*base, alias.name])) for alias in node.names]
            else:
                found.append((node.lineno, node.module or ""))
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__"))
            )
        ):
            found.append((node.lineno, node.args[0].value))
    return found


@functools.cache  # the two checks of the real tree parse it once
def room_imports(root: Path) -> list[tuple[str, str, int, str]]:
    """(importing room, file relative to root, line, module) for every import of one room by another."""
    out: list[tuple[str, str, int, str]] = []
    for room in ROOMS:
        for path in sorted((root / room).rglob("*.py")):
            for line, module in imported_modules(path, root):
                target = module.split(".", 1)[0]
                if target in ROOMS and target != room:
                    out.append((room, path.relative_to(root).as_posix(), line, module))
    return out


def violations(root: Path) -> list[str]:
    """`file:line: room imports module` for each import through a door the wrong way."""
    return [
        f"{where}:{line}: {room} imports {module}"
        for room, where, line, module in room_imports(root)
        if module.split(".", 1)[0] in FORBIDDEN[room]
    ]


def cycles(root: Path) -> list[list[str]]:
    """Import cycles between the rooms, each as the rooms along it."""
    graph: dict[str, set[str]] = {room: set() for room in ROOMS}
    for room, _, _, module in room_imports(root):
        graph[room].add(module.split(".", 1)[0])
    found = []

    def visit(path: list[str]) -> None:
        for nxt in sorted(graph[path[-1]]):
            if nxt == path[0]:
                found.append([*path, nxt])
            elif nxt not in path and nxt > path[0]:  # each cycle once, from its smallest room
                visit([*path, nxt])

    for room in sorted(ROOMS):
        visit([room])
    return found


def test_engine_imports_no_agents_or_ui_and_agents_import_no_ui() -> None:
    found = violations(ROOT)
    assert not found, "imports against DESIGN.md §2 (maestro_tui → agents → engine):\n" + "\n".join(found)


def test_the_rooms_import_each_other_without_cycles() -> None:
    found = cycles(ROOT)
    assert not found, "import cycles between the rooms: " + "; ".join(" → ".join(c) for c in found)


def test_the_contract_sees_function_level_relative_and_dynamic_imports(tmp_path: Path) -> None:
    files = {
        "engine/__init__.py": "",
        "engine/ok.py": "import numpy\nfrom engine import ok\nfrom . import ok\n",
        "engine/late.py": "def f():\n    import maestro_tui.app\n",
        "engine/sub/__init__.py": "",
        "engine/sub/rel.py": "x = 1\nfrom ... import agents\nfrom ...agents.conductor import Conductor\n",
        "engine/dyn.py": "import importlib\nimportlib.import_module('agents.critic')\n",
        "agents/__init__.py": "from engine import ok\n",
        "agents/ui.py": "\n\nfrom maestro_tui import cli\n",
        "maestro_tui/__init__.py": "import agents\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert violations(tmp_path) == [
        "engine/dyn.py:2: engine imports agents.critic",
        "engine/late.py:2: engine imports maestro_tui.app",
        "engine/sub/rel.py:2: engine imports agents",
        "engine/sub/rel.py:3: engine imports agents.conductor",
        "agents/ui.py:3: agents imports maestro_tui",
    ]
    assert cycles(tmp_path) == [
        ["agents", "engine", "agents"],
        ["agents", "engine", "maestro_tui", "agents"],
        ["agents", "maestro_tui", "agents"],
    ]


def test_ci_runs_the_readme_test_command_as_written() -> None:
    def commands(text: str) -> list[str]:
        return [" ".join(line.split()) for line in text.replace("\\\n", " ").splitlines() if "pip install -e '.[test]'" in line]

    readme = commands((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(readme) == 1, "README.md should show one command that installs '.[test]' and runs the checks and tests"
    assert readme == commands((ROOT / ".ci" / "run").read_text(encoding="utf-8")), ".ci/run and README.md disagree"
