"""The package's import graph, read with `ast`: no cycles, lazy imports named.

Every `import` inside a function must carry a comment on its line saying
why it is lazy (a bare pylint directive does not count), and the graph of
module-level imports between ocr_jax modules must have no cycle, neither
between modules nor between the subpackages (text, data, models, training,
reading).
"""

import ast
import pathlib
import re

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / 'ocr_jax'
# Subpackages in dependency order: each may import only those before it.
LAYERS = ('text', 'data', 'models', 'training', 'reading', 'pages')


def module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
  if parts[-1] == '__init__':
    parts = parts[:-1]
  return '.'.join(parts)


def package_modules() -> dict[str, pathlib.Path]:
  return {module_name(p): p for p in sorted(PACKAGE.rglob('*.py'))}


def imported_modules(node: ast.AST, modules: set[str],
                     package: str) -> set[str]:
  """The ocr_jax modules an Import/ImportFrom node refers to."""
  if isinstance(node, ast.Import):
    names = {alias.name for alias in node.names}
  else:
    base = node.module or ''
    if node.level:
      parts = package.split('.')
      base = '.'.join(parts[:len(parts) - node.level + 1] +
                      ([base] if base else []))
    # `from pkg import x` imports the module pkg.x if there is one, else
    # the attribute x of pkg.
    names = {f'{base}.{alias.name}' if f'{base}.{alias.name}' in modules
             else base for alias in node.names}
  found = set()
  for name in names:
    while name and name not in modules:
      name = name.rpartition('.')[0]
    if name.startswith('ocr_jax'):
      found.add(name)
  return found


def top_level_imports(tree: ast.Module):
  """Import nodes executed at import time (module body, if/try blocks)."""
  pending = list(tree.body)
  while pending:
    node = pending.pop()
    if isinstance(node, (ast.Import, ast.ImportFrom)):
      yield node
    elif isinstance(node, (ast.If, ast.Try)):
      if isinstance(node, ast.If) and _is_main_guard(node):
        continue
      for field in ('body', 'orelse', 'finalbody', 'handlers'):
        pending.extend(getattr(node, field, []))
    elif isinstance(node, ast.ExceptHandler):
      pending.extend(node.body)


def _is_main_guard(node: ast.If) -> bool:
  return '__main__' in ast.unparse(node.test)


def function_imports(tree: ast.Module):
  """Import nodes inside functions (and `if __name__ == '__main__'`)."""
  for node in ast.walk(tree):
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or (
        isinstance(node, ast.If) and _is_main_guard(node)):
      for inner in ast.walk(node):
        if isinstance(inner, (ast.Import, ast.ImportFrom)):
          yield inner


def import_graph() -> dict[str, set[str]]:
  modules = package_modules()
  graph = {}
  for name, path in modules.items():
    tree = ast.parse(path.read_text(encoding='utf-8'))
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    edges = set()
    for node in top_level_imports(tree):
      edges |= imported_modules(node, set(modules), package)
    # Importing a.b.c runs a/__init__ and a/b/__init__ first, except the
    # packages that hold the importer: they are already being initialised.
    edges |= {parent for edge in edges for parent in _parents(edge)}
    graph[name] = edges - {name} - set(_parents(name))
  return graph


def _parents(name: str) -> list[str]:
  parts = name.split('.')
  return ['.'.join(parts[:i]) for i in range(1, len(parts))]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
  """One cycle of the graph as a list of nodes, or None."""
  state = {}

  def visit(node, stack):
    state[node] = 'open'
    stack.append(node)
    for nxt in sorted(graph.get(node, ())):
      if state.get(nxt) == 'open':
        return stack[stack.index(nxt):] + [nxt]
      if nxt not in state:
        cycle = visit(nxt, stack)
        if cycle:
          return cycle
    state[node] = 'done'
    stack.pop()
    return None

  for node in sorted(graph):
    if node not in state:
      cycle = visit(node, [])
      if cycle:
        return cycle
  return None


def layer(name: str) -> str | None:
  parts = name.split('.')
  return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


# --- The checker itself must work ---------------------------------------------


def test_find_cycle_on_known_graphs():
  assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': set()}) is None
  assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c',
                                                              'a']
  assert find_cycle({'a': {'a'}}) == ['a', 'a']


def test_imported_modules_resolves_from_imports():
  modules = {'ocr_jax', 'ocr_jax.text', 'ocr_jax.text.charset',
             'ocr_jax.models', 'ocr_jax.models.conv'}
  tree = ast.parse('from ocr_jax.text import charset\n'
                   'import ocr_jax.models.conv\n'
                   'from . import conv\n'
                   'import numpy\n')
  found = set()
  for node in tree.body:
    found |= imported_modules(node, modules, 'ocr_jax.models')
  assert found == {'ocr_jax.text.charset', 'ocr_jax.models.conv'}


# --- The package --------------------------------------------------------------


def test_no_import_cycle_between_modules():
  graph = import_graph()
  assert len(graph) > 20  # The walk found the package.
  assert find_cycle(graph) is None, ' -> '.join(find_cycle(graph))


def test_subpackages_import_only_earlier_layers():
  wrong = []
  for name, edges in import_graph().items():
    own = layer(name)
    if own is None:
      continue
    for edge in edges:
      other = layer(edge)
      if other and LAYERS.index(other) > LAYERS.index(own):
        wrong.append(f'{name} imports {edge}')
  assert not wrong, wrong


def _comment(line: str) -> str:
  """The comment text of a source line, pylint directives removed."""
  if '#' not in line:
    return ''
  text = line.split('#', 1)[1]
  return re.sub(r'pylint:\s*disable=[\w,-]+', '', text).strip(' #')


@pytest.mark.parametrize('name', sorted(package_modules()))
def test_function_level_imports_say_why(name):
  path = package_modules()[name]
  source = path.read_text(encoding='utf-8')
  lines = source.splitlines()
  silent = []
  for node in function_imports(ast.parse(source)):
    text = ' '.join(lines[node.lineno - 1:node.end_lineno])
    if not _comment(text):
      silent.append(f'{path.name}:{node.lineno}: {lines[node.lineno - 1]}')
  assert not silent, silent
