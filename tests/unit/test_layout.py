"""The code's layout holds: small modules, no import cycle, no private name imported from another module, no
function-local import of the package."""

import ast

import pytest

from tests.helpers import ROOT

PACKAGES = ("ddnmf_tf", "bench", "train", "export")
MAX_MODULE_LINES = 300


def _modules():
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def _name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree, top_level_only=True):
    """(module, name) of each `from ddnmf_tf... import name` / `import ddnmf_tf...` of the tree."""
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
            for alias in node.names:
                yield node.module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES:
                    yield alias.name, None


@pytest.mark.parametrize("path", _modules(), ids=_name)
def test_a_module_is_at_most_300_lines(path):
    assert len(path.read_text().splitlines()) <= MAX_MODULE_LINES


def test_no_private_name_is_imported_from_another_module():
    private = [f"{_name(path)}: {module}.{name}" for path in _modules()
               for module, name in _imports(ast.parse(path.read_text()), top_level_only=False)
               if name and name.startswith("_")]
    assert not private


def test_the_package_is_imported_at_the_top_of_each_module():
    """A function-local import of the package's own modules would hide an import cycle."""
    hidden = []
    for path in _modules():
        tree = ast.parse(path.read_text())
        top = set(_imports(tree))
        hidden += [f"{_name(path)}: {module}" for module, name in _imports(tree, top_level_only=False)
                   if (module, name) not in top and module.startswith("ddnmf_tf")]
    assert not hidden


def test_the_modules_import_no_cycle():
    modules = {_name(path): path for path in _modules()}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for module, imported in _imports(ast.parse(path.read_text())):
            target = f"{module}.{imported}" if f"{module}.{imported}" in modules else module
            if target in modules and target != name:
                targets.add(target)
        graph[name] = targets
    state, cycles = {}, []

    def visit(name, trail):
        state[name] = "open"
        for target in graph[name]:
            if state.get(target) == "open":
                cycles.append(" -> ".join(trail[trail.index(target):] + [target]))
            elif target not in state:
                visit(target, trail + [target])
        state[name] = "done"

    for name in graph:
        if name not in state:
            visit(name, [name])
    assert not cycles
