"""The package's import graph: no circle, no import of the tools' glue.

Every ``from``-import is read from the source, lazy ones inside functions
included (a lazy import hides a circle, it does not remove it).
"""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / 'mmchansearch'


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob('*.py')}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == '__init__.py' else \
            name.rpartition('.')[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package.split('.')[:len(package.split('.')) -
                                          node.level + 1]
                target = '.'.join(base + [node.module or ''][:1 if
                                                              node.module
                                                              else 0])
            else:
                target = node.module or ''
            for candidate in [target] + [f'{target}.{a.name}'
                                         for a in node.names]:
                if candidate in modules and candidate != name:
                    deps.add(candidate)
        graph[name] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state, found = {}, []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 'open'
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 'open':
                found.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[node] = 'done'

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def test_the_graph_is_read():
    graph = _import_graph()
    assert 'mmchansearch.mutator' in graph['mmchansearch.models.algorithms'
                                           '.base']
    assert 'mmchansearch.analysis' in graph['mmchansearch.channel_latency']


def test_no_import_circle():
    cycles = _cycles(_import_graph())
    assert not cycles, [' -> '.join(c) for c in cycles]


def test_the_library_does_not_import_the_tools_glue():
    """``mmchansearch.cli`` serves tools/ scripts; the library below it
    must not depend on it."""
    users = [name for name, deps in _import_graph().items()
             if 'mmchansearch.cli' in deps]
    assert users == []


def test_the_latency_table_knows_nothing_of_channel_search():
    """Device tables time ops and know no search: they import neither the
    mutator, the estimators nor the channel-latency model, and of the
    analysis only how a classifier gives its logits. The channel-latency
    model imports no mutator either: it is given plain data."""
    graph = _import_graph()
    assert graph['mmchansearch.latency_table'] <= {
        'mmchansearch.analysis', 'mmchansearch.errors', 'mmchansearch.fileio',
        'mmchansearch.layer_kinds'}
    source = (PACKAGE / 'latency_table.py').read_text()
    from_analysis = {alias.name for node in ast.walk(ast.parse(source))
                     if isinstance(node, ast.ImportFrom)
                     and node.module == 'analysis'
                     for alias in node.names}
    assert from_analysis == {'LogitsModule', 'forward_logits'}
    assert graph['mmchansearch.channel_latency'] <= {
        'mmchansearch.analysis', 'mmchansearch.latency_table'}


def test_layer_kinds_are_a_leaf_every_module_may_use():
    """The layer-kind handlers import nothing of the package, and the
    modules that differ per kind ask them instead of comparing kind
    strings themselves."""
    graph = _import_graph()
    assert not {m for m in graph['mmchansearch.layer_kinds']
                if m.startswith('mmchansearch')}
    for user in ('estimators', 'latency_table', 'widening', 'channel_masks',
                 'engine.flops_utilization'):
        assert 'mmchansearch.layer_kinds' in graph[f'mmchansearch.{user}']
