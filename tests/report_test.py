"""Tests for ocr_jax.report on fake run directories."""

import json
import os
import pathlib

from ocr_jax import report


def _history(char, seq, epochs=3, seconds=10.0, old_names=False):
  """Curves rising to (char, seq) at the last epoch.

  Each epoch trains `seconds` and ends `seconds + 2` after the previous one.
  With old_names, the elapsed time is called wall_seconds, as in runs
  recorded before the rename.
  """
  elapsed = 'wall_seconds' if old_names else 'elapsed_seconds'
  return [{'epoch': e, 'step': 10 * e, 'train_loss': 1.0 / e,
           'epoch_seconds': seconds, elapsed: (seconds + 2) * e,
           'val_char_accuracy': char * e / epochs,
           'val_seq_accuracy': seq * e / epochs, 'val_cer': 1 - char,
           'val_mean_ned': 1 - char} for e in range(1, epochs + 1)]


def _scores(char, seq):
  return {'char_accuracy': char, 'seq_accuracy': seq, 'cer': 1 - char,
          'mean_ned': 1 - char, 'n': 1000, 'by_length': {}}


def _write_finished(grid_dir, name, char, seq, test_char, test_seq, *,
                    model='small', batch_size=32, learning_rate=1e-3,
                    old_names=False):
  workdir = os.path.join(grid_dir, name)
  os.makedirs(workdir)
  results = {
      'experiment': name, 'status': 'finished', 'epochs_run': 3,
      'stopped_early': name == 'b', 'best_epoch': 3,
      'config': {'model': model, 'batch_size': batch_size,
                 'learning_rate': learning_rate, 'optimizer': 'adamw'},
      'best_validation': _scores(char, seq),
      'final_validation': _scores(char, seq),
      'test': _scores(test_char, test_seq), 'seconds_per_epoch': 12.5,
      'compile_seconds': 3.0, 'parameters': 12_480_000,
      'history': _history(char, seq, old_names=old_names)}
  if old_names:  # wall_seconds was the sum of the training loops.
    results['wall_seconds'] = 30.0
  else:
    results.update(train_seconds=30.0, elapsed_seconds=3725.0)
  with open(os.path.join(workdir, 'results.json'), 'w') as f:
    json.dump(results, f)


def _make_grid(grid_dir):
  _write_finished(grid_dir, 'a', 0.9, 0.5, 0.88, 0.45)
  _write_finished(grid_dir, 'b', 0.9, 0.6, 0.87, 0.55, model='medium',
                  batch_size=64, learning_rate=2e-3)
  _write_finished(grid_dir, 'c', 0.3, 0.0, 0.28, 0.0, old_names=True)
  # Failed after one epoch: error from status.json, curve from metrics.
  os.makedirs(os.path.join(grid_dir, 'd'))
  with open(os.path.join(grid_dir, 'd', 'status.json'), 'w') as f:
    json.dump({'status': 'failed', 'returncode': 1,
               'error': 'exit code 1: ValueError: Unknown preset: ctc',
               'log_tail': ['Traceback', 'ValueError: Unknown preset: ctc']},
              f)
  with open(os.path.join(grid_dir, 'd', 'metrics.jsonl'), 'w') as f:
    f.write(json.dumps(_history(0.95, 0.9, epochs=1)[0]) + '\n')
  # Unfinished: resumed (epoch 2 written twice) and killed mid-line.
  os.makedirs(os.path.join(grid_dir, 'e'))
  history = _history(0.5, 0.2, epochs=3, old_names=True)
  history[2]['val_char_accuracy'] = 0.31
  with open(os.path.join(grid_dir, 'e', 'metrics.jsonl'), 'w') as f:
    for record in history[:2] + history[1:]:
      f.write(json.dumps(record) + '\n')
    f.write('{"epoch": 4, "val_ch')
  # Listed by the runner, not started yet.
  with open(os.path.join(grid_dir, 'grid.json'), 'w') as f:
    json.dump({'runs': [{'name': 'f', 'status': 'pending',
                         'overrides': {'batch_size': 48}}]}, f)


def test_ranking_and_table(tmp_path):
  grid_dir = str(tmp_path)
  _make_grid(grid_dir)
  rows = report.rank_runs(report.load_runs(grid_dir))
  assert [r['name'] for r in rows] == ['b', 'a', 'e', 'c', 'f', 'd']
  assert [r['rank'] for r in rows] == [1, 2, 3, 4, None, None]
  assert [r['status'] for r in rows] == [
      'finished', 'finished', 'unfinished', 'finished', 'pending', 'failed']
  e = rows[2]
  assert e['val_char_accuracy'] == 0.5 * 2 / 3
  assert (e['best_epoch'], e['epochs_run'], e['train_seconds'],
          e['elapsed_seconds']) == (2, 3, 30.0, 36.0)
  # Finished runs: new names, and old ones (elapsed from the history).
  assert (rows[0]['train_seconds'], rows[0]['elapsed_seconds']) == (30.0,
                                                                    3725.0)
  c = rows[3]
  assert (c['train_seconds'], c['elapsed_seconds']) == (30.0, 36.0)
  assert [p['elapsed_seconds'] for p in c['curve']] == [12.0, 24.0, 36.0]
  assert rows[4]['batch_size'] == 48
  assert rows[5]['val_char_accuracy'] == 0.95
  assert dict(zip(report.COLUMNS, report.table_cells(rows[0]))) == {
      'Rank': '1', 'Experiment': 'b', 'Val char %': '90.00',
      'Val seq %': '60.00', 'Test char %': '87.00', 'Test seq %': '55.00',
      'Best epoch': '3', 'Epochs': '3', 's/epoch': '12.5', 'Elapsed': '1h02m',
      'Params (M)': '12.48', 'Model': 'medium', 'Batch': '64',
      'LR': '0.002', 'Status': 'finished (early stop)'}
  assert report.table_cells(rows[5])[0] == '-'
  assert report.table_cells(rows[2])[-1] == 'unfinished (epoch 3)'


def test_write_report_files(tmp_path):
  grid_dir = str(tmp_path)
  _make_grid(grid_dir)
  path = report.write_report(grid_dir)
  text = pathlib.Path(path).read_text()
  table = [line for line in text.splitlines() if line.startswith('| ')]
  assert len(table) == 1 + 6
  assert table[1].startswith('| 1 | b | 90.00 | 60.00 | 87.00 | 55.00 |')
  assert table[-1].startswith('| - | d |')
  assert 'Unknown preset: ctc' in text.split('## Failed runs')[1]
  saved = json.loads((tmp_path / 'report.json').read_text())
  assert [r['name'] for r in saved['runs']] == ['b', 'a', 'e', 'c', 'f', 'd']
  assert saved['runs'][0]['test_seq_accuracy'] == 0.55
  for name in ('curves.png', 'final_accuracy.png'):
    with open(os.path.join(grid_dir, name), 'rb') as f:
      assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_empty_grid_dir(tmp_path):
  path = report.write_report(str(tmp_path))
  assert '0 runs' in pathlib.Path(path).read_text()
  assert os.path.exists(os.path.join(str(tmp_path), 'curves.png'))
