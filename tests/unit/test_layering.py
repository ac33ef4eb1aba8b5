"""The layering rules, checked on the source: which module may know which library, and no
import cycles among the modules' top-level imports."""

from __future__ import annotations

import ast
from pathlib import Path

import adurable

SRC = Path(adurable.__file__).parent
#: Libraries only one module may import, and that module (relative to src/adurable).
OWNERS = {
    "asyncio": "_backend.py",
    "trio": "_backend.py",
    "sniffio": "_backend.py",
    "botocore": "_service.py",
    "aiobotocore": "_service.py",
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = ["adurable", *path.relative_to(SRC).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(tree: ast.AST, module: str, path: Path, *, top_level_only: bool) -> set[str]:
    """Absolute names imported by ``tree`` (``top_level_only``: not inside functions or
    ``if TYPE_CHECKING:``, the imports that run when the module loads)."""
    names: set[str] = set()
    # what a relative import is relative to: the package itself for an __init__
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if top_level_only and isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
            ):
                continue
            if (
                top_level_only
                and isinstance(child, ast.If)
                and "TYPE_CHECKING" in ast.unparse(child.test)
            ):
                visit_orelse(child)
                continue
            if isinstance(child, ast.Import):
                names.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    parts = package.split(".")
                    prefix = ".".join(parts[: len(parts) - child.level + 1])
                    target = f"{prefix}.{child.module}" if child.module else prefix
                else:
                    target = child.module or ""
                names.add(target)
                names.update(f"{target}.{alias.name}" for alias in child.names)
            visit(child)

    def visit_orelse(node: ast.If) -> None:
        for child in node.orelse:
            visit(ast.Module(body=[child], type_ignores=[]))

    visit(tree)
    return names


def test_only_the_backend_adapter_and_the_service_module_know_their_libraries() -> None:
    offenders = []
    for module, path in _modules().items():
        tree = ast.parse(path.read_text(), str(path))
        for name in _imports(tree, module, path, top_level_only=False):
            root = name.split(".")[0]
            owner = OWNERS.get(root)
            if owner is not None and path != SRC / owner:
                offenders.append(f"{module} imports {name} (only {owner} may)")
    assert offenders == []


def test_the_modules_top_level_imports_have_no_cycle() -> None:
    modules = _modules()
    graph = {
        module: {
            name
            for name in _imports(ast.parse(path.read_text()), module, path, top_level_only=True)
            if name in modules and name != module
        }
        for module, path in modules.items()
    }
    # A package's own __init__ re-exports lazily (PEP 562): importing a submodule runs it first,
    # so an edge into a package is an edge into its __init__ only.
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                walk(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node)
    assert cycles == []
