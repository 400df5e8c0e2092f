"""The package's structure as docs/architecture.md states it: who imports whom, no cycles, no hidden imports."""

import ast
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "partnermatch"
TRAINING = ROOT / "ml"
DOC = (ROOT / "docs" / "architecture.md").read_text()


def _unit(path: Path) -> str:
    """The package (folder) or top-level module of ``src/partnermatch`` a file belongs to; ``ml`` for ml/."""
    if path.is_relative_to(TRAINING):
        return "ml"
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def _targets(node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The units of ours an import statement names (``from partnermatch import events`` names ``events``)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif node.module == "partnermatch":
        names = [f"partnermatch.{alias.name}" for alias in node.names]
    else:
        names = [node.module or ""]
    for name in names:
        parts = name.split(".")
        if parts[0] == "partnermatch" and len(parts) > 1:
            yield parts[1]
        elif parts[0] == "ml":
            yield "ml"


def _sources() -> list[Path]:
    return sorted([*PACKAGE.rglob("*.py"), *TRAINING.rglob("*.py")])


def _units() -> set[str]:
    # The package's own __init__ holds only its version: it is no unit of the structure.
    return {_unit(path) for path in _sources()} - {"__init__"}


def _imports() -> tuple[dict[str, set[str]], list[str]]:
    """Module-level imports between units, and every import of ours inside a function (file:line)."""
    edges: dict[str, set[str]] = defaultdict(set)
    hidden: list[str] = []
    units = _units()
    for path in _sources():
        tree = ast.parse(path.read_text(), str(path))
        unit = _unit(path)
        in_functions = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            for inner in ast.walk(node)
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in _targets(node):
                if target not in units:
                    continue  # a name of the package's __init__, such as __version__
                if id(node) in in_functions:
                    hidden.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {target}")
                elif target != unit:
                    edges[unit].add(target)
    return edges, hidden


def _documented() -> dict[str, set[str]]:
    table = DOC.split("## Who may import whom", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([\w]+)` \|([^|\n]*)\|$", table, flags=re.MULTILINE)
    return {unit: set(re.findall(r"`(\w+)`", allowed)) for unit, allowed in rows}


def test_every_import_between_packages_is_the_documented_one() -> None:
    actual, _ = _imports()
    documented = _documented()
    units = _units()
    assert units == set(documented), "docs/architecture.md must list every package, and only those"
    for unit in sorted(units):
        undocumented = actual.get(unit, set()) - documented[unit]
        unused = documented[unit] - actual.get(unit, set())
        assert not undocumented, f"{unit} imports {sorted(undocumented)}, which the table does not allow"
        assert not unused, f"the table lets {unit} import {sorted(unused)}, which it does not: keep it exact"


def test_the_documented_imports_have_no_cycle() -> None:
    graph = _documented()
    done: set[str] = set()

    def visit(unit: str, path: tuple[str, ...]) -> None:
        assert unit not in path, "import cycle: " + " -> ".join((*path[path.index(unit) :], unit))
        if unit in done:
            return
        for target in sorted(graph.get(unit, ())):
            visit(target, (*path, unit))
        done.add(unit)

    for unit in sorted(graph):
        visit(unit, ())


def test_the_service_never_imports_the_training_folder() -> None:
    actual, _ = _imports()
    assert not [unit for unit, targets in actual.items() if unit != "ml" and "ml" in targets]


def test_nothing_of_ours_is_imported_inside_a_function() -> None:
    """An import inside a function is how a cycle hides; third-party lazy imports are not counted."""
    _, hidden = _imports()
    assert hidden == []


def test_the_check_sees_imports_of_every_form(tmp_path: Path) -> None:
    """The parser above finds module-level and hidden imports written any way Python allows."""
    source = (
        "import partnermatch.db\n"
        "from partnermatch import events\n"
        "from partnermatch.companies.models import Company\n"
        "import ml.training\n"
        "def later():\n"
        "    from partnermatch.recommendations import batch\n"
    )
    tree = ast.parse(source)
    found = [
        target
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for target in _targets(node)
    ]
    assert sorted(found) == ["companies", "db", "events", "ml", "recommendations"]
