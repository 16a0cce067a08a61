"""The package layout: no import cycles between softset_fast's modules (docs/architecture.md).

Every import counts, at module level or inside a function: a cycle hidden in a function
still means two modules that cannot be understood (or changed) one without the other.
"""
import ast
import pathlib

import softset_fast

PACKAGE = pathlib.Path(softset_fast.__file__).parent


def module_name(path: pathlib.Path) -> str:
    parts = ("softset_fast",) + path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    compiled = {"softset_fast._C"}  # the extension: a leaf, built or not
    graph: dict[str, set[str]] = {name: set() for name in modules | dict.fromkeys(compiled)}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[:len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                # `from .pkg import name`: name is a submodule or an attribute of pkg
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in graph else base
                           for alias in node.names]
            graph[name] |= {target for target in targets if target in graph and target != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for child in sorted(graph[node]):
            if state.get(child) == 1:
                return path[path.index(child):] + [child]
            if child not in state:
                found = visit(child)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_graph_sees_relative_and_function_level_imports():
    graph = import_graph()
    assert "softset_fast.backends.registry" in graph["softset_fast.confusion"]
    assert "softset_fast.distributed" in graph["softset_fast.confusion"]  # imported inside a function
