"""Ranks the runs of a grid directory; writes report.md/.json and two plots.

  python -m ocr_jax.report --grid_dir=runs/grid

Reads GRID_DIR/<run>/results.json of finished runs, status.json of failed
ones (their error) and metrics.jsonl of unfinished ones (their curves so
far), as written by launch.grid and ocr_jax.training.train. Writes:
  GRID_DIR/report.md    ranking table, best first by validation character
                        accuracy then sequence accuracy; failed runs last
  GRID_DIR/report.json  the same rows as numbers (accuracies as fractions)
  GRID_DIR/curves.png   validation accuracies vs epoch and vs elapsed time
  GRID_DIR/final_accuracy.png  best-state validation and test accuracies
Run files are read through ocr_jax.training.run_folder, which also reads the
older field names (wall_seconds) of runs recorded before the rename.
"""

from collections.abc import Sequence
import datetime
import json
import math
import os
from typing import Any

from absl import app
from absl import flags

from ocr_jax.training import run_folder

# Ranked runs, then those without scores yet, then failures.
_GROUP = {'finished': 0, 'unfinished': 0, 'running': 1, 'pending': 1,
          'failed': 2}
_BARS = (('val_char_accuracy', 'val char'), ('val_seq_accuracy', 'val seq'),
         ('test_char_accuracy', 'test char'),
         ('test_seq_accuracy', 'test seq'))


# --- Reading runs -------------------------------------------------------------


def _number(value: Any) -> float | None:
  """A finite float, or None (missing, NaN, not a number)."""
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    return None
  return float(value) if math.isfinite(value) else None


def _or_minus_inf(value: float | None) -> float:
  return -math.inf if value is None else value


def _record_elapsed(record: dict[str, Any]) -> float | None:
  """Seconds from the run's start to the end of this epoch's evaluation.

  Runs before the rename called it wall_seconds.
  """
  return _number(record.get('elapsed_seconds', record.get('wall_seconds')))


def _results_elapsed(results: dict[str, Any]) -> float | None:
  """A finished run's seconds from start to end, evaluation included.

  Runs before the rename have no such field (their results.json
  'wall_seconds' was the sum of the training loops, no evaluation): they
  give their last epoch's elapsed time, else that sum.
  """
  if _number(results.get('elapsed_seconds')) is not None:
    return _number(results['elapsed_seconds'])
  history = results.get('history') or []
  if history and _record_elapsed(history[-1]) is not None:
    return _record_elapsed(history[-1])
  return _number(results.get('train_seconds', results.get('wall_seconds')))


def _best_record(history: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
  def key(record):
    return tuple(_or_minus_inf(_number(record.get(k)))
                 for k in ('val_char_accuracy', 'val_seq_accuracy'))
  scored = [r for r in history if _number(r.get('val_char_accuracy'))
            is not None]
  return max(scored, key=key) if scored else None


def summarize_run(name: str, workdir: str,
                  grid_entry: dict[str, Any] | None = None) -> dict[str, Any]:
  """One report row of a run directory (fields None where unknown)."""
  results = run_folder.read_results(workdir)
  status_file = run_folder.read_status(workdir) or {}
  grid_entry = grid_entry or {}
  row = dict.fromkeys((
      'val_char_accuracy', 'val_seq_accuracy', 'test_char_accuracy',
      'test_seq_accuracy', 'best_epoch', 'epochs_run', 'stopped_early',
      'seconds_per_epoch', 'train_seconds', 'elapsed_seconds', 'parameters',
      'model', 'batch_size', 'learning_rate', 'optimizer', 'error', 'log_tail'))
  row['name'] = name
  if results and results.get('status') == 'finished':
    config = results.get('config') or {}
    best = results.get('best_validation') or {}
    test = results.get('test') or {}
    row.update(
        status='finished',
        val_char_accuracy=_number(best.get('char_accuracy')),
        val_seq_accuracy=_number(best.get('seq_accuracy')),
        test_char_accuracy=_number(test.get('char_accuracy')),
        test_seq_accuracy=_number(test.get('seq_accuracy')),
        best_epoch=results.get('best_epoch'),
        epochs_run=results.get('epochs_run'),
        stopped_early=results.get('stopped_early'),
        seconds_per_epoch=_number(results.get('seconds_per_epoch')),
        train_seconds=_number(results.get('train_seconds',
                                          results.get('wall_seconds'))),
        elapsed_seconds=_results_elapsed(results),
        parameters=results.get('parameters'),
        **{k: config.get(k) for k in ('model', 'batch_size',
                                      'learning_rate', 'optimizer')})
    history = results.get('history') or []
  else:
    history = run_folder.read_metrics(workdir)
    state = status_file.get('status') or grid_entry.get('status')
    if state not in ('failed', 'running'):
      state = 'unfinished' if history else 'pending'
    row['status'] = state
    if state == 'failed':
      row['error'] = status_file.get('error') or grid_entry.get('error')
      row['log_tail'] = status_file.get('log_tail')
    # Without results.json only the overrides tell the hyperparameters.
    overrides = status_file.get('overrides') or grid_entry.get(
        'overrides') or {}
    row.update({k: overrides.get(k) for k in ('model', 'batch_size',
                                              'learning_rate', 'optimizer')})
    best = _best_record(history)
    if best:
      seconds = sorted(r['epoch_seconds'] for r in history
                       if _number(r.get('epoch_seconds')) is not None)
      row.update(
          val_char_accuracy=_number(best.get('val_char_accuracy')),
          val_seq_accuracy=_number(best.get('val_seq_accuracy')),
          best_epoch=best.get('epoch'), epochs_run=history[-1].get('epoch'),
          seconds_per_epoch=seconds[len(seconds) // 2] if seconds else None,
          train_seconds=sum(seconds) if seconds else None,
          elapsed_seconds=_record_elapsed(history[-1]))
  row['curve'] = [
      {'epoch': r.get('epoch'), 'elapsed_seconds': _record_elapsed(r),
       'val_char_accuracy': r.get('val_char_accuracy'),
       'val_seq_accuracy': r.get('val_seq_accuracy')} for r in history]
  return row


def load_runs(grid_dir: str) -> list[dict[str, Any]]:
  """Rows of every run in grid.json or in a subdirectory with run files."""
  grid = run_folder.read_json(os.path.join(grid_dir, 'grid.json')) or {}
  entries = {e['name']: e for e in grid.get('runs', []) if 'name' in e}
  names = list(entries)
  for name in sorted(os.listdir(grid_dir)):
    workdir = os.path.join(grid_dir, name)
    if name not in entries and run_folder.has_records(workdir):
      names.append(name)
  return [summarize_run(name, os.path.join(grid_dir, name), entries.get(name))
          for name in names]


def rank_runs(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
  """Sorts by validation char then seq accuracy; failed runs go last.

  Runs with validation scores get ranks 1, 2, ...; the others rank None.
  """
  def key(row):
    group = _GROUP.get(row['status'], 1)
    if row['status'] != 'failed' and row['val_char_accuracy'] is None:
      group = max(group, 1)
    return (group, -_or_minus_inf(row['val_char_accuracy']),
            -_or_minus_inf(row['val_seq_accuracy']), row['name'])
  ranked = sorted(rows, key=key)
  rank = 0
  for row in ranked:
    if key(row)[0] == 0:
      rank += 1
      row['rank'] = rank
    else:
      row['rank'] = None
  return ranked


# --- Markdown -----------------------------------------------------------------


def _percent(value: float | None) -> str:
  return '-' if value is None else f'{100 * value:.2f}'


def _duration(seconds: float | None) -> str:
  if seconds is None:
    return '-'
  if seconds < 60:
    return f'{seconds:.1f} s'
  minutes = int(round(seconds)) // 60
  if minutes < 60:
    return f'{minutes}m{int(round(seconds)) % 60:02d}s'
  return f'{minutes // 60}h{minutes % 60:02d}m'


def _text(value: Any) -> str:
  if value is None:
    return '-'
  if isinstance(value, float):
    return f'{value:.3g}'
  return str(value)


def _status_text(row: dict[str, Any]) -> str:
  if row['status'] == 'finished' and row['stopped_early']:
    return 'finished (early stop)'
  if row['status'] == 'unfinished':
    return f'unfinished (epoch {row["epochs_run"]})'
  return row['status']


COLUMNS = ('Rank', 'Experiment', 'Val char %', 'Val seq %', 'Test char %',
           'Test seq %', 'Best epoch', 'Epochs', 's/epoch', 'Elapsed',
           'Params (M)', 'Model', 'Batch', 'LR', 'Status')


def table_cells(row: dict[str, Any]) -> list[str]:
  """The markdown cells of a row, in COLUMNS order."""
  params = row['parameters']
  return [
      _text(row['rank']), row['name'], _percent(row['val_char_accuracy']),
      _percent(row['val_seq_accuracy']), _percent(row['test_char_accuracy']),
      _percent(row['test_seq_accuracy']), _text(row['best_epoch']),
      _text(row['epochs_run']),
      '-' if row['seconds_per_epoch'] is None else
      f'{row["seconds_per_epoch"]:.1f}',
      _duration(row['elapsed_seconds']),
      '-' if params is None else f'{params / 1e6:.2f}',
      _text(row['model']), _text(row['batch_size']),
      _text(row['learning_rate']), _status_text(row)]


def format_markdown(rows: Sequence[dict[str, Any]], grid_dir: str) -> str:
  """report.md: the ranking table, then each failure with its log tail."""
  counts = {}
  for row in rows:
    counts[row['status']] = counts.get(row['status'], 0) + 1
  lines = [
      f'# Grid report: {os.path.abspath(grid_dir)}', '',
      f'{len(rows)} runs ({", ".join(f"{n} {s}" for s, n in counts.items())})'
      f'; generated {datetime.datetime.now().isoformat(timespec="seconds")}.',
      'Validation columns are the best state (unfinished runs: best epoch '
      'so far); test is scored on the best state. Ranked by validation '
      'character accuracy, then sequence accuracy.', '',
      '| ' + ' | '.join(COLUMNS) + ' |',
      '|' + '|'.join('---:' if c not in ('Experiment', 'Model', 'Status')
                     else '---' for c in COLUMNS) + '|']
  lines += ['| ' + ' | '.join(table_cells(row)) + ' |' for row in rows]
  lines += ['', '![learning curves](curves.png)', '',
            '![final accuracy](final_accuracy.png)']
  failed = [row for row in rows if row['status'] == 'failed']
  if failed:
    lines += ['', '## Failed runs']
    for row in failed:
      lines += ['', f'### {row["name"]}', '', f'Error: {row["error"]}']
      if row['log_tail']:
        lines += ['', '```'] + list(row['log_tail'][-15:]) + ['```']
  return '\n'.join(lines) + '\n'


# --- Plots --------------------------------------------------------------------


def _colors(rows):
  import matplotlib  # Heavy and optional: only the plots need it.
  cmap = matplotlib.colormaps['tab10' if len(rows) <= 10 else 'tab20']
  return {row['name']: cmap(i % cmap.N) for i, row in enumerate(rows)}


def plot_curves(rows: Sequence[dict[str, Any]], path: str) -> None:
  """2x2: val char/seq accuracy (%) vs epoch (top) and elapsed minutes."""
  from matplotlib import pyplot as plt  # Heavy and optional: plots only.
  curves = [row for row in rows if row['curve']]
  colors = _colors(rows)
  fig, axes = plt.subplots(2, 2, figsize=(13, 9), layout='constrained')
  panels = ((0, 0, 'epoch', 'val_char_accuracy'),
            (0, 1, 'epoch', 'val_seq_accuracy'),
            (1, 0, 'elapsed_seconds', 'val_char_accuracy'),
            (1, 1, 'elapsed_seconds', 'val_seq_accuracy'))
  for i, j, x_key, y_key in panels:
    ax = axes[i, j]
    for row in curves:
      points = [(r[x_key], r[y_key]) for r in row['curve']
                if _number(r[x_key]) is not None and
                _number(r[y_key]) is not None]
      if not points:
        continue
      scale = 1 / 60 if x_key == 'elapsed_seconds' else 1
      ax.plot([x * scale for x, _ in points], [100 * y for _, y in points],
              marker='o', markersize=4, linewidth=1.5,
              color=colors[row['name']], label=row['name'],
              linestyle='--' if row['status'] != 'finished' else '-')
    ax.set_xlabel('epoch' if x_key == 'epoch' else 'elapsed time (minutes)')
    ax.set_ylabel(('validation character accuracy (%)'
                   if y_key == 'val_char_accuracy' else
                   'validation sequence accuracy (%)'))
    ax.grid(alpha=0.3)
  if not curves:
    axes[0, 0].text(0.5, 0.5, 'no runs with metrics yet', ha='center',
                    transform=axes[0, 0].transAxes)
  handles, labels = axes[0, 0].get_legend_handles_labels()
  if handles:
    fig.legend(handles, labels, loc='outside lower center',
               ncol=min(len(labels), 3), fontsize=9)
  fig.suptitle('Learning curves (dashed: unfinished or failed runs)')
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_final(rows: Sequence[dict[str, Any]], path: str) -> None:
  """Horizontal grouped bars of best val and test char/seq accuracy (%)."""
  from matplotlib import pyplot as plt  # Heavy and optional: plots only.
  scored = [row for row in rows if row['val_char_accuracy'] is not None]
  height = 0.2
  fig, ax = plt.subplots(figsize=(11, 1.5 + 0.9 * max(len(scored), 1)),
                         layout='constrained')
  colors = ('tab:blue', 'lightsteelblue', 'tab:orange', 'navajowhite')
  low = 0.0
  for k, ((key, label), color) in enumerate(zip(_BARS, colors)):
    ys, values = [], []
    for i, row in enumerate(scored):
      if row[key] is not None:
        ys.append(i + (k - 1.5) * height)
        values.append(100 * row[key])
    low = min([low] + values)
    bars = ax.barh(ys, values, height=height, color=color, label=label)
    ax.bar_label(bars, fmt='%.1f', fontsize=7, padding=2)
  ax.set_yticks(range(len(scored)), [
      f'{row["rank"]}. {row["name"]}' if row['rank'] else
      f'{row["name"]} ({row["status"]})' for row in scored])
  ax.invert_yaxis()
  ax.set_xlim(low, 108)
  ax.set_xlabel('accuracy (%), best validation state')
  ax.grid(axis='x', alpha=0.3)
  if not scored:
    ax.text(0.5, 0.5, 'no scored runs yet', ha='center',
            transform=ax.transAxes)
  else:
    fig.legend(loc='outside lower center', ncol=len(_BARS), fontsize=9)
  ax.set_title('Final accuracy per run (ranked)')
  fig.savefig(path, dpi=100)
  plt.close(fig)


# --- Entry points -------------------------------------------------------------


def _json_safe(value):
  if isinstance(value, float) and not math.isfinite(value):
    return None
  if isinstance(value, dict):
    return {k: _json_safe(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_json_safe(v) for v in value]
  return value


def write_report(grid_dir: str) -> str:
  """Writes report.md, report.json, curves.png and final_accuracy.png.

  Returns:
    The path of report.md.
  """
  import matplotlib  # Heavy and optional: only the plots need it.
  matplotlib.use('Agg')  # Files only; works without a display.
  rows = rank_runs(load_runs(grid_dir))
  plot_curves(rows, os.path.join(grid_dir, 'curves.png'))
  plot_final(rows, os.path.join(grid_dir, 'final_accuracy.png'))
  with open(os.path.join(grid_dir, 'report.json'), 'w',
            encoding='utf-8') as f:
    json.dump(_json_safe({'grid_dir': os.path.abspath(grid_dir),
                          'runs': rows}), f, indent=1, ensure_ascii=False)
  path = os.path.join(grid_dir, 'report.md')
  with open(path, 'w', encoding='utf-8') as f:
    f.write(format_markdown(rows, grid_dir))
  return path


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  grid_dir = flags.FLAGS.grid_dir
  if not grid_dir or not os.path.isdir(grid_dir):
    raise app.UsageError(f'--grid_dir {grid_dir!r} is not a directory')
  print(write_report(grid_dir))


if __name__ == '__main__':
  # Defined here, not at import: launch.grid imports this module and has its
  # own --grid_dir.
  flags.DEFINE_string('grid_dir', None,
                      'Directory with one workdir per run (launch.grid).')
  app.run(main)
