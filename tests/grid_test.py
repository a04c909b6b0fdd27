"""Tests for launch.grid with a fake trainer, and for search expansion."""

import json
import os
import sys
import textwrap

import pytest

from launch import grid

# Stands in for ocr_jax.main: counts its calls, fails runs named 'bad*',
# and for runs named 'preempt*' dies once after an epoch, then finishes.
_FAKE_TRAINER = textwrap.dedent('''
    import json, os, sys
    workdir, name, calls = sys.argv[1:4]
    with open(calls, 'a') as f:
      f.write(name + '\\n')
    print('training', name, sys.argv[4:])
    os.makedirs(workdir, exist_ok=True)
    metrics = os.path.join(workdir, 'metrics.jsonl')
    if name.startswith('bad'):
      print('ValueError: Unknown preset: ctc', file=sys.stderr)
      sys.exit(1)
    if name.startswith('preempt') and not os.path.exists(metrics):
      with open(metrics, 'w') as f:
        f.write(json.dumps({'epoch': 1, 'val_char_accuracy': 0.1}) + '\\n')
      sys.exit(137)
    with open(os.path.join(workdir, 'results.json'), 'w') as f:
      json.dump({'experiment': name, 'status': 'finished',
                 'argv': sys.argv[4:]}, f)
''')


@pytest.fixture
def fake(tmp_path):
  script = tmp_path / 'fake_trainer.py'
  script.write_text(_FAKE_TRAINER)
  calls = tmp_path / 'calls.txt'

  def command_fn(run, workdir):
    flags = [f'--config.{k}={v}' for k, v in run.overrides.items()]
    return [sys.executable, str(script), workdir, run.name, str(calls),
            *flags]

  def called():
    return calls.read_text().split() if calls.exists() else []

  return command_fn, called


def _runs(*names):
  return [grid.Run(name, f'configs/{name}.py') for name in names]


def test_failed_run_is_recorded_and_others_go_on(tmp_path, fake):
  command_fn, called = fake
  grid_dir = tmp_path / 'grid'
  entries = grid.run_grid(_runs('good1', 'bad1', 'good2'), str(grid_dir),
                          command_fn=command_fn)
  assert [e['status'] for e in entries] == ['finished', 'failed', 'finished']
  assert called() == ['good1', 'bad1', 'good2']
  status = json.loads((grid_dir / 'bad1' / 'status.json').read_text())
  assert status['status'] == 'failed'
  assert status['returncode'] == 1
  assert 'Unknown preset: ctc' in status['error']
  assert any('Unknown preset' in line for line in status['log_tail'])
  assert 'training bad1' in (grid_dir / 'bad1' / 'train.log').read_text()
  saved = json.loads((grid_dir / 'grid.json').read_text())
  assert [r['name'] for r in saved['runs']] == ['good1', 'bad1', 'good2']
  assert all(r['seconds'] is not None and r['command'] for r in saved['runs'])


def test_rerun_skips_finished_and_resumes_the_rest(tmp_path, fake):
  command_fn, called = fake
  grid_dir = str(tmp_path / 'grid')
  runs = _runs('good1', 'bad1', 'preempt1')
  first = grid.run_grid(runs, grid_dir, command_fn=command_fn, parallel=2)
  assert [e['status'] for e in first] == ['finished', 'failed', 'failed']
  assert grid.run_status(os.path.join(grid_dir, 'preempt1')) == 'failed'
  second = grid.run_grid(runs, grid_dir, command_fn=command_fn, parallel=2)
  assert [e['status'] for e in second] == ['finished', 'failed', 'finished']
  assert second[0]['skipped'] and not second[2]['skipped']
  assert [e['attempts'] for e in second] == [1, 2, 2]
  assert sorted(called()) == ['bad1', 'bad1', 'good1', 'preempt1',
                              'preempt1']
  grid.run_grid(runs[:1], grid_dir, command_fn=command_fn)
  assert len(called()) == 5
  # Entries of runs left out of a later invocation stay in grid.json.
  saved = json.loads((tmp_path / 'grid' / 'grid.json').read_text())
  assert len(saved['runs']) == 3


def test_overrides_reach_every_run(tmp_path, fake):
  command_fn, _ = fake
  grid_dir = tmp_path / 'grid'
  runs = [grid.Run('good1', 'c.py', {'seed': 1, 'batch_size': 16}),
          grid.Run('good2', 'c.py')]
  grid.run_grid(runs, str(grid_dir), command_fn=command_fn,
                overrides={'seed': '3', 'num_epochs': '1'})
  argv = json.loads((grid_dir / 'good1' / 'results.json').read_text())['argv']
  assert argv == ['--config.seed=3', '--config.batch_size=16',
                  '--config.num_epochs=1']
  argv = json.loads((grid_dir / 'good2' / 'results.json').read_text())['argv']
  assert argv == ['--config.seed=3', '--config.num_epochs=1']


def test_make_command():
  run = grid.Run('x', 'configs/conservative_small.py',
                 {'learning_rate': 0.001, 'optimizer': 'adamw'}, tiny=True)
  assert grid.make_command(run, '/w/x', python='py') == [
      'py', '-m', 'ocr_jax.main',
      '--config=configs/conservative_small.py:tiny', '--workdir=/w/x',
      '--config.learning_rate=0.001', '--config.optimizer=adamw']


def test_grid_runs_default_and_selection():
  runs = grid.grid_runs()
  assert len(runs) == 7
  assert all(os.path.exists(os.path.join(grid.REPO_ROOT, r.config))
             for r in runs)
  assert [r.name for r in grid.grid_runs(['ctc_alignment_free'])] == [
      'ctc_alignment_free']
  with pytest.raises(ValueError, match='unknown experiment'):
    grid.grid_runs(['no_such_experiment'])


def test_parse_overrides():
  assert grid.parse_overrides(['num_epochs=1', 'config.seed=3', 'a=b=c']) == {
      'num_epochs': '1', 'seed': '3', 'a': 'b=c'}
  with pytest.raises(ValueError):
    grid.parse_overrides(['num_epochs'])


def _space():
  return grid.load_search_space(
      os.path.join(grid.REPO_ROOT, 'configs', 'search_small.py'))


def test_search_grid_is_the_cartesian_product():
  space = _space()
  runs = grid.expand_search(space, mode='grid')
  assert len(runs) == 3 * 3 * 2
  assert len({r.name for r in runs}) == len(runs)
  assert 'conservative_small-lr0.001-bs32-adamw' in {r.name for r in runs}
  run = runs[0]
  assert run.config == 'configs/conservative_small.py'
  assert run.overrides == {'learning_rate': 5e-4, 'batch_size': 16,
                           'optimizer': 'adam'}
  assert run.name == 'conservative_small-lr0.0005-bs16-adam'


def test_search_random_is_seeded_and_within_bounds():
  space = _space()
  a = grid.expand_search(space, mode='random', num_samples=10, seed=0)
  b = grid.expand_search(space, mode='random', num_samples=10, seed=0)
  c = grid.expand_search(space, mode='random', num_samples=10, seed=1)
  assert a == b
  assert [r.name for r in a] != [r.name for r in c]
  assert len(a) == 10 and len({r.name for r in a}) == 10
  for run in a + c:
    lr = run.overrides['learning_rate']
    assert 5e-4 <= lr <= 2e-3
    assert run.overrides['batch_size'] in (16, 32, 48)
    assert run.overrides['optimizer'] in ('adam', 'adamw')
    # The name carries the exact value the run trains with.
    assert f'-lr{grid.format_value(lr)}-' in run.name
    assert float(grid.format_value(lr)) == lr


def test_search_random_stops_at_the_number_of_distinct_points():
  space = {'base': 'b', 'params': {
      'optimizer': {'type': 'choice', 'values': ['adam', 'adamw']}}}
  runs = grid.expand_search(space, mode='random', num_samples=5, seed=0)
  assert sorted(r.name for r in runs) == ['b-optimizeradam',
                                          'b-optimizeradamw']
