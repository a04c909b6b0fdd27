"""Seconds per training epoch (4,000 samples, data included) per grid config.

Runs `train.train_and_evaluate` for a few epochs of each experiment and takes
the median of the per-epoch training times (the first epoch, which holds the
compilation, is left out; compile seconds are reported apart). Compares each
against the 300 s/epoch target and the prototype's PyTorch figures.

With --grid_dir, an experiment whose grid run (launch/grid.py) has a
results.json, or at least --epochs epochs in its metrics.jsonl, is not
trained again: its figures are the median over the epochs of that run,
which timed the same loop end to end. With --previous, experiments timed in
an earlier output file are taken from it.

  python benchmarks/epoch_time_benchmark.py [--experiments=a,b] [--epochs=3]
      [--output=benchmarks/results/epoch_time.json] [--data_dir=DIR]
      [--grid_dir=runs/grid] [--previous=OLD.json]
"""

import importlib.util
import json
import os
import statistics
import sys
import tempfile

from absl import app
from absl import flags
from absl import logging

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import machine  # pylint: disable=g-import-not-at-top
from configs import grid  # pylint: disable=g-import-not-at-top
from ocr_jax.training import run_folder  # pylint: disable=g-import-not-at-top
from ocr_jax.training import train  # pylint: disable=g-import-not-at-top

TARGET_SECONDS = 300.0
# The prototype's PyTorch code on this machine kind (docs/prototype.md):
# seconds per step at the experiment's batch, by model preset.
PROTOTYPE_STEP_SECONDS = {'small': (32, 0.317), 'medium': (64, 0.640),
                          'large': (32, 0.877), 'ctc_small': (64, 0.554)}

flags.DEFINE_list('experiments', list(grid.EXPERIMENTS), 'Configs to time.')
flags.DEFINE_integer('epochs', 3, 'Epochs per config (the first is skipped).')
flags.DEFINE_string('data_dir', None, 'TFDS data dir.')
flags.DEFINE_string('output', os.path.join(ROOT, 'benchmarks', 'results',
                                           'epoch_time.json'), 'JSON path.')
flags.DEFINE_list('override', [], 'key=value config overrides for all runs.')
flags.DEFINE_string('grid_dir', None, 'Take the figures of experiments run '
                    'under GRID_DIR/<experiment>.')
flags.DEFINE_string('previous', None, 'Reuse the rows of an earlier output.')
FLAGS = flags.FLAGS


def load_config(name):
  path = os.path.join(ROOT, 'configs', f'{name}.py')
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def time_experiment(name, workdir):
  config = load_config(name)
  config.num_epochs = FLAGS.epochs
  config.checkpoint_every_epochs = 10**6
  config.early_stopping_patience = 0
  config.data_dir = FLAGS.data_dir
  for item in FLAGS.override:
    key, value = item.split('=', 1)
    config[key] = type(config[key])(value)
  train.train_and_evaluate(config, workdir)
  return epoch_row(name, read_run(name, workdir), source='timed')


def read_run(name, workdir):
  """(config dict, epoch history, compile seconds) of a run, or None."""
  results = run_folder.read_results(workdir)
  if results:
    return results['config'], results['history'], results['compile_seconds']
  # An unfinished run: its epochs so far, once there are --epochs of them.
  history = run_folder.read_metrics(workdir)
  if len(history) < FLAGS.epochs:
    return None
  return load_config(name).to_dict(), history, None


def epoch_row(name, run, source):
  """Seconds per epoch (median of all but the first) of a run's history."""
  config, history, compile_seconds = run
  epochs = [r['epoch_seconds'] for r in history][1:]
  seconds = statistics.median(epochs)
  steps = history[0]['step']
  row = {'experiment': name, 'source': source, 'model': config['model'],
         'batch_size': config['batch_size'], 'dtype': config['dtype'],
         'seconds_per_epoch': seconds, 'epoch_seconds': epochs,
         'seconds_per_step': seconds / steps, 'steps_per_epoch': steps,
         'compile_seconds': compile_seconds,
         'under_target': seconds < TARGET_SECONDS}
  if config['model'] in PROTOTYPE_STEP_SECONDS:
    batch, step_seconds = PROTOTYPE_STEP_SECONDS[config['model']]
    prototype_epoch = step_seconds * 4000 / batch
    row['prototype_seconds_per_epoch'] = prototype_epoch
    row['speedup_vs_prototype'] = prototype_epoch / seconds
  return row


def main(argv):
  del argv
  info = machine.machine_info()
  print(json.dumps(info))
  rows = []
  previous = {}
  if FLAGS.previous:
    with open(FLAGS.previous, encoding='utf-8') as f:
      previous = {r['experiment']: r for r in json.load(f)['results']
                  if 'error' not in r}
  for name in FLAGS.experiments:
    grid_run = os.path.join(FLAGS.grid_dir, name) if FLAGS.grid_dir else None
    run = read_run(name, grid_run) if grid_run else None
    if run:
      rows.append(epoch_row(name, run, source=grid_run))
    elif name in previous:
      rows.append({**previous[name], 'source': FLAGS.previous})
    else:
      with tempfile.TemporaryDirectory() as workdir:
        try:
          rows.append(time_experiment(name, workdir))
        except Exception as e:  # pylint: disable=broad-except
          logging.exception('%s failed', name)
          rows.append({'experiment': name, 'error': repr(e)})
    print(json.dumps(rows[-1]))
  print('| experiment | model | batch | s/epoch | s/step | compile s | '
        'prototype s/epoch | speedup |')
  print('|---|---|---|---|---|---|---|---|')
  for r in rows:
    if 'error' in r:
      print(f"| {r['experiment']} | failed: {r['error']} |")
      continue
    print(f"| {r['experiment']} | {r['model']} | {r['batch_size']} | "
          f"{r['seconds_per_epoch']:.1f} | {r['seconds_per_step']:.3f} | "
          f"{r['compile_seconds'] or float('nan'):.0f} | "
          f"{r.get('prototype_seconds_per_epoch', float('nan')):.1f} | "
          f"{r.get('speedup_vs_prototype', float('nan')):.2f}x |")
  timed = [r for r in rows if 'error' not in r]
  if timed:
    slowest = max(timed, key=lambda r: r['seconds_per_epoch'])
    print(f"slowest: {slowest['experiment']} "
          f"{slowest['seconds_per_epoch']:.1f} s/epoch "
          f"(target {TARGET_SECONDS:.0f} s)")
  os.makedirs(os.path.dirname(FLAGS.output), exist_ok=True)
  with open(FLAGS.output, 'w', encoding='utf-8') as f:
    json.dump({'machine': info, 'target_seconds': TARGET_SECONDS,
               'results': rows}, f, indent=1)


if __name__ == '__main__':
  app.run(main)
