"""The README stays a newcomer's page, and the repo points only at itself."""

import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / 'README.md'


def test_readme_is_short():
  lines = README.read_text(encoding='utf-8').splitlines()
  assert len(lines) <= 155, len(lines)


def test_readme_names_every_module():
  text = README.read_text(encoding='utf-8')
  modules = sorted(str(p.relative_to(ROOT))
                   for p in (ROOT / 'ocr_jax').rglob('*.py'))
  assert len(modules) > 30
  missing = [m for m in modules if m not in text]
  assert not missing, missing


def test_readme_links_exist():
  text = README.read_text(encoding='utf-8')
  targets = [part.split(')', 1)[0] for part in text.split('](')[1:]]
  assert targets
  missing = [t for t in targets if not t.startswith('http')
             and not (ROOT / t.split('#')[0]).exists()]
  assert not missing, missing


def _repo_text_files():
  for folder in ('ocr_jax', 'configs', 'benchmarks', 'launch', 'docs',
                 'tests'):
    for path in (ROOT / folder).rglob('*'):
      if path.suffix in ('.py', '.md', '.sh') and path.name != __file__:
        yield path
  yield README


@pytest.mark.parametrize('needle', ['../shared', '/work/shared',
                                    'SEED_FACTS'])
def test_nothing_points_outside_the_repository(needle):
  this = pathlib.Path(__file__).resolve()
  found = [str(p.relative_to(ROOT)) for p in _repo_text_files()
           if p.resolve() != this
           and needle in p.read_text(encoding='utf-8', errors='replace')]
  assert not found, found
