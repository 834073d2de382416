"""The layout rules of issue 13, read from the source with ``ast`` (nothing here imports zoo):
imports run one way, modules and functions stay small, and the core names no architecture.

What counts as an import of a zoo module, for the import graph:
- ``import zoo.x.y`` and ``from zoo.x import y`` at module level and inside functions and
  methods alike: an import inside a function that points back up is a cycle in disguise.
  ``from zoo.x import name`` is an edge to the submodule ``zoo.x.name`` when there is one,
  else to ``zoo.x``. Relative imports are resolved the same way.
- A string constant that is the dotted name of a zoo module (``plugins.DEFAULT_PLUGINS``):
  such strings are fed to ``importlib.import_module``, which imports them as surely as an
  ``import`` statement does, only later.
- The facade ``zoo`` (``zoo/__init__.py``) imports its ``_LAZY`` modules only when one of
  those attributes is used, so the edge belongs to the user: ``zoo.create(...)`` or ``from
  zoo import create`` is an edge to ``zoo.models``; ``import zoo`` for ``zoo.hookimpl`` is an
  edge to ``zoo`` alone, whose own edges are its eager imports. A plugin that decorates with
  ``@zoo.hookimpl`` does not, by that, import the whole library.
- Not the imports under ``if TYPE_CHECKING:``: they never run, they only name types.
- Not the parent packages Python initialises on the way (``zoo.data._folders`` running
  ``zoo/data/__init__.py``): every module would otherwise import its own facade, and every
  facade its private modules, a cycle by construction in any package with a facade.

``zoo --help`` and ``import zoo`` not importing torch is held by
test_cli.py::test_help_and_import_do_not_import_torch.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "zoo"
PLUGIN_DIR = ZOO / "default_plugins"

MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 50


def module_files() -> dict[str, Path]:
    """Every module under zoo/ by dotted name; a package is its ``__init__.py``."""
    files = {}
    for path in sorted(ZOO.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = path
    return files


MODULES = module_files()
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in MODULES.items()}


def is_type_checking(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def executed_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if is_type_checking(node):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def owner_module(name: str) -> str | None:
    """The longest prefix of the dotted ``name`` that is a zoo module."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in MODULES:
            return candidate
    return None


def base_of(module: str, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` reads from."""
    if not node.level:
        return node.module or ""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def lazy_attributes() -> dict[str, str]:
    """``zoo/__init__.py``'s ``_LAZY`` table: attribute -> the module that defines it."""
    for node in ast.walk(TREES["zoo"]):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "_LAZY":
            return ast.literal_eval(node.value)
    return {}


LAZY = lazy_attributes()


def imported_by(module: str) -> set[str]:
    """The zoo modules ``module`` imports, by the rules in this file's docstring."""
    targets: set[str | None] = set()
    for node in executed_nodes(TREES[module]):
        if isinstance(node, ast.Import):
            targets.update(owner_module(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = base_of(module, node)
            for alias in node.names:
                lazy = LAZY.get(alias.name) if base == "zoo" else None
                targets.add(lazy or owner_module(f"{base}.{alias.name}") or owner_module(base))
        elif isinstance(node, ast.Attribute) and getattr(node.value, "id", None) == "zoo":
            targets.add(LAZY.get(node.attr))  # zoo.create(...): the facade's lazy import
        elif isinstance(node, ast.Constant) and str(node.value).startswith("zoo."):
            lazy_entry = module == "zoo" and node.value in LAZY.values()
            targets.add(node.value if node.value in MODULES and not lazy_entry else None)
    targets.discard(None)
    targets.discard(module)
    return targets


def import_graph() -> dict[str, set[str]]:
    return {module: imported_by(module) for module in MODULES}


def package_of(module: str) -> str:
    """The top-level package (or module) ``module`` belongs to: zoo.training.cache._split is
    in zoo.training."""
    return ".".join(module.split(".")[:2])


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    packages: dict[str, set[str]] = {package_of(m): set() for m in graph}
    for module, targets in graph.items():
        packages[package_of(module)].update(package_of(t) for t in targets)
    for package, targets in packages.items():
        targets.discard(package)
    return packages


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of ``graph`` that hold a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def shortest_cycle(graph: dict[str, set[str]], start: str, inside: set[str]) -> list[str]:
    """A shortest cycle through ``start`` within the nodes ``inside``, as a list of nodes."""
    paths = {start: [start]}
    queue = [start]
    for node in queue:
        for nxt in sorted(graph[node] & inside):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start}")


def cycles(graph: dict[str, set[str]]) -> list[str]:
    """A shortest cycle through each node that is on one, each cycle once, as ``a -> b -> a``
    (shortest first: those are the imports to untie)."""
    found: dict[tuple[str, ...], list[str]] = {}
    for component in strongly_connected(graph):
        for node in component:
            cycle = shortest_cycle(graph, node, set(component))
            first = cycle.index(min(cycle))
            found.setdefault(tuple(cycle[first:-1] + cycle[:first]), cycle)
    return [" -> ".join(c) for c in sorted(found.values(), key=lambda c: (len(c), c))]


def docstring_nodes(tree: ast.AST) -> set[int]:
    owners = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, owners) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def functions(tree: ast.AST) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function and method, with its dotted name inside the module."""

    def walk(node: ast.AST, prefix: str):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                yield f"{prefix}{child.name}", child
                yield from walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            else:
                yield from walk(child, prefix)

    yield from walk(tree, "")


def outside_plugins() -> Iterator[tuple[str, ast.AST]]:
    for name, path in MODULES.items():
        if not path.is_relative_to(PLUGIN_DIR):
            yield name, TREES[name]


# --- the import graph -------------------------------------------------------------------


def test_the_graph_sees_every_kind_of_import():
    graph = import_graph()
    assert len(graph) >= 30 and "zoo.cli" in graph and "zoo.training" in graph
    assert "zoo.default_plugins.timm" in graph["zoo.plugins"]  # a string for import_module
    assert "zoo.hookspecs" in graph["zoo"]  # an eager import of the facade
    assert "zoo.models" not in graph["zoo"] and LAZY["create"] == "zoo.models"  # lazy: users'
    assert "zoo" in graph["zoo.default_plugins.timm"]  # import zoo, for @zoo.hookimpl


def test_zoo_imports_have_no_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles between zoo modules:\n" + "\n".join(found)


def test_packages_import_one_way():
    """cli -> training -> runs -> data, models -> ... -> errors: no cycle between the
    top-level packages either, which the module graph alone would miss when a module reaches
    into another package's private module."""
    found = cycles(package_graph(import_graph()))
    assert not found, "import cycles between zoo packages:\n" + "\n".join(found)


def test_other_packages_import_the_facade_not_private_modules():
    """Across packages, ``from zoo.data import scan_image_folder``, never ``zoo.data._x``."""
    offenders = [
        f"{module} imports {target}"
        for module, targets in sorted(import_graph().items())
        for target in sorted(targets)
        if package_of(target) != package_of(module)
        and any(p.startswith("_") and not p.startswith("__") for p in target.split("."))
    ]
    assert not offenders, "private modules imported across packages:\n" + "\n".join(offenders)


# --- sizes ------------------------------------------------------------------------------


def test_no_module_over_300_lines():
    long = {
        name: n
        for name, path in MODULES.items()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    report = "\n".join(f"{name}: {n} lines" for name, n in sorted(long.items()))
    assert not long, f"modules over {MAX_MODULE_LINES} lines:\n{report}"


def test_no_function_over_50_lines():
    """Counted from ``def`` (decorators excluded) to the function's last line, docstring in."""
    long = [
        f"{module}.{name} (line {node.lineno}): {length} lines"
        for module, tree in TREES.items()
        for name, node in functions(tree)
        if (length := node.end_lineno - node.lineno + 1) > MAX_FUNCTION_LINES
    ]
    report = "\n".join(long)
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n{report}"


# --- the core names no architecture -----------------------------------------------------


def timm_modules_named(node: ast.AST) -> list[str]:
    """The timm modules ``node`` imports, or names as a string (``sys.modules.get``,
    ``import_module``): ``"timm.layers._fx"`` reaches into timm as surely as an import."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and not node.level:
        names = [node.module or ""]
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        names = [node.value] if node.value.startswith("timm.") else []
    else:
        return []
    return [n for n in names if n == "timm" or n.startswith("timm.")]


def test_only_the_default_plugins_import_timm():
    offenders = [
        f"{module} (line {node.lineno}): {name}"
        for module, tree in outside_plugins()
        for node in ast.walk(tree)  # TYPE_CHECKING blocks too: the core should not name it
        for name in timm_modules_named(node)
    ]
    report = "\n".join(offenders)
    assert not offenders, f"modules outside zoo/default_plugins reaching into timm:\n{report}"


def test_no_timm_ids_outside_the_default_plugins():
    """No string holding ``timm:`` (an id test, a prefix, a message naming one); docstrings,
    where examples live, are left alone."""
    offenders = []
    for module, tree in outside_plugins():
        docs = docstring_nodes(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and "timm:" in node.value
                and id(node) not in docs
            ):
                offenders.append(f"{module} (line {node.lineno}): {node.value[:60]!r}")
    assert not offenders, "timm ids outside zoo/default_plugins:\n" + "\n".join(offenders)
