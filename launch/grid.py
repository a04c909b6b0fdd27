"""Runs a grid of ocr_jax experiments, or a search, each in its own workdir.

  # The 7 experiments of configs/grid.py, one after another:
  python -m launch.grid --grid_dir=runs/grid
  # Two of them, 2 epochs each, seed 3:
  python -m launch.grid --grid_dir=runs/grid2 \
      --experiments=conservative_small,ctc_alignment_free \
      --override num_epochs=2 --override seed=3
  # A search (cartesian grid, or 6 seeded random samples), 2 at a time:
  python -m launch.grid --grid_dir=runs/search \
      --search=configs/search_small.py [--search_mode=random \
      --num_samples=6 --search_seed=0] [--parallel=2]
  # Smoke test of the whole grid, seconds per run:
  python -m launch.grid --grid_dir=/tmp/smoke --tiny

Every run trains as `python -m ocr_jax.main --config=configs/<exp>.py
--workdir=GRID_DIR/<run> [--config.key=value ...]` in a subprocess, its
stdout/stderr appended to GRID_DIR/<run>/train.log. A run that fails is
recorded in GRID_DIR/<run>/status.json (status 'failed', return code, the end
of its log) and the others go on. Rerunning the same command skips runs whose
results.json says 'finished' and resumes the rest from their checkpoints.
GRID_DIR/grid.json lists every run with its command, status and times; at the
end ocr_jax.report ranks the runs (GRID_DIR/report.md).

Each JAX process uses every CPU core, so --parallel above 1 only pays on a
machine with cores (or accelerators) to spare.
"""

from collections.abc import Callable, Mapping, Sequence
import concurrent.futures
import dataclasses
import datetime
import importlib.util
import itertools
import math
import os
import random
import shlex
import subprocess
import sys
import threading
import time
from typing import Any

from absl import app
from absl import flags
from absl import logging

from configs import base
from configs import grid
from ocr_jax import report
from ocr_jax.training import run_folder

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_GRID_DIR = flags.DEFINE_string(
    'grid_dir', None, 'Directory holding one workdir per run and grid.json.')
_EXPERIMENTS = flags.DEFINE_list(
    'experiments', None, 'Experiments to run (configs/<name>.py); default: '
    'the 7 of configs/grid.py, or none when --search is given.')
_PARALLEL = flags.DEFINE_integer(
    'parallel', 1, 'How many runs train at the same time.')
_SEARCH = flags.DEFINE_string(
    'search', None, 'Search space file with get_search_space(), e.g. '
    'configs/search_small.py.')
_SEARCH_MODE = flags.DEFINE_enum(
    'search_mode', 'grid', ['grid', 'random'],
    'grid: cartesian product of the grid values; random: --num_samples draws.')
_NUM_SAMPLES = flags.DEFINE_integer(
    'num_samples', 8, 'Random search: number of distinct samples.')
_SEARCH_SEED = flags.DEFINE_integer(
    'search_seed', 0, 'Random search: seed of the draws.')
_OVERRIDE = flags.DEFINE_multi_string(
    'override', [], 'key=value config override applied to every run, e.g. '
    'num_epochs=1 (repeatable).')
_TINY = flags.DEFINE_bool(
    'tiny', False, 'Use each config\'s seconds-long :tiny variant.')
_TIMEOUT = flags.DEFINE_float(
    'timeout_s', None, 'Kill and fail a run after this many seconds.')
_REPORT = flags.DEFINE_bool(
    'report', True, 'Write the ocr_jax.report ranking when done.')
_DRY_RUN = flags.DEFINE_bool(
    'dry_run', False, 'Print the commands and statuses; run nothing.')


@dataclasses.dataclass(frozen=True)
class Run:
  """One training run of the grid.

  Attributes:
    name: run name, also the workdir name under the grid directory.
    config: config file, relative to the repository root (or absolute).
    overrides: config key -> value, passed as --config.key=value.
    tiny: use the config's ':tiny' smoke variant.
  """
  name: str
  config: str
  overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  tiny: bool = False


CommandFn = Callable[[Run, str], Sequence[str]]


# --- Run sets -----------------------------------------------------------------


def grid_runs(experiments: Sequence[str] | None = None) -> list[Run]:
  """Returns the runs of configs/grid.py, or of the named experiments.

  Args:
    experiments: names from configs/grid.py or any configs/<name>.py; None
      selects the whole grid in its order.
  """
  points = {point['name']: point['config'] for point in grid.get_runs()}
  if experiments is None:
    return [Run(name, config) for name, config in points.items()]
  runs = []
  for name in experiments:
    config = points.get(name, f'configs/{name}.py')
    if not os.path.exists(os.path.join(REPO_ROOT, config)):
      raise ValueError(f'unknown experiment {name!r}: no {config}; grid: '
                       f'{", ".join(points)}')
    runs.append(Run(name, config))
  return runs


def load_search_space(path: str) -> dict[str, Any]:
  """Calls get_search_space() of the Python file at `path`."""
  spec = importlib.util.spec_from_file_location('_search_space', path)
  if spec is None:
    raise ValueError(f'cannot load a search space from {path!r}')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_search_space()


def format_value(value: Any) -> str:
  """Short, stable text of a value for run names (3 significant digits)."""
  if isinstance(value, float):
    return f'{value:.3g}'
  return str(value)


def _sample(spec: Mapping[str, Any], rng: random.Random) -> Any:
  """Draws one value of a parameter, rounded so that it matches its name."""
  kind = spec['type']
  if kind == 'choice':
    return rng.choice(list(spec['values']))
  low, high = spec['low'], spec['high']
  if kind == 'uniform':
    value = rng.uniform(low, high)
  elif kind == 'log_uniform':
    value = math.exp(rng.uniform(math.log(low), math.log(high)))
  else:
    raise ValueError(f'unknown parameter type {kind!r}')
  # Rounding is monotone and the bounds are themselves 3-digit values in
  # practice; the clip keeps any other bounds exact.
  return min(max(float(format_value(value)), low), high)


def _grid_values(key: str, spec: Mapping[str, Any]) -> list[Any]:
  values = spec.get('values') if spec['type'] == 'choice' else spec.get('grid')
  if not values:
    raise ValueError(f'search parameter {key!r} has no grid values')
  return list(values)


def expand_search(space: Mapping[str, Any], mode: str = 'grid',
                  num_samples: int = 8, seed: int = 0) -> list[Run]:
  """Turns a search space into runs named from their values.

  Args:
    space: as returned by configs/search_small.py get_search_space().
    mode: 'grid' for the cartesian product of the grid values, 'random' for
      `num_samples` distinct draws.
    num_samples: random mode: number of distinct runs (fewer if the space
      has fewer distinct points).
    seed: random mode: the same seed gives the same runs.

  Returns:
    Runs such as `conservative_small-lr0.001-bs32-adamw`.
  """
  base = space['base']
  config = base if base.endswith('.py') else f'configs/{base}.py'
  prefix = os.path.splitext(os.path.basename(config))[0]
  params = space['params']
  fixed = dict(space.get('overrides') or {})

  def make_run(values):
    parts = [prefix] + [
        params[key].get('short', key) + format_value(value)
        for key, value in values.items()]
    return Run('-'.join(parts), config, {**fixed, **values})

  if mode == 'grid':
    product = itertools.product(
        *(_grid_values(key, spec) for key, spec in params.items()))
    return [make_run(dict(zip(params, values))) for values in product]
  if mode != 'random':
    raise ValueError(f"search mode must be 'grid' or 'random', not {mode!r}")
  rng = random.Random(seed)
  runs = {}
  # Duplicates are the same run; keep drawing, within reason, for K distinct.
  for _ in range(num_samples * 50):
    if len(runs) == num_samples:
      break
    run = make_run({key: _sample(spec, rng) for key, spec in params.items()})
    runs.setdefault(run.name, run)
  return list(runs.values())


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
  """['num_epochs=1', ...] -> {'num_epochs': '1'}; ml_collections types them."""
  overrides = {}
  for item in items:
    key, sep, value = item.partition('=')
    if not sep or not key.strip():
      raise ValueError(f'override {item!r} is not key=value')
    overrides[key.strip().removeprefix('config.')] = value
  return overrides


# --- Running ------------------------------------------------------------------


def make_command(run: Run, workdir: str,
                 python: str = sys.executable) -> list[str]:
  """The ocr_jax.main command line of a run."""
  config = run.config + (':tiny' if run.tiny else '')
  command = [python, '-m', 'ocr_jax.main', f'--config={config}',
             f'--workdir={workdir}']
  for key, value in run.overrides.items():
    text = repr(value) if isinstance(value, float) else str(value)
    command.append(f'--config.{key}={text}')
  return command


def run_status(workdir: str) -> str:
  """'finished', 'failed', 'running', 'partial' (has metrics) or 'pending'."""
  results = run_folder.read_results(workdir)
  if results and results.get('status') == 'finished':
    return 'finished'
  status = run_folder.read_status(workdir)
  if status and status.get('status') in ('failed', 'running'):
    return status['status']
  if os.path.exists(run_folder.metrics_path(workdir)):
    return 'partial'
  return 'pending'


def _now() -> str:
  return datetime.datetime.now().astimezone().isoformat(timespec='seconds')


def _log_tail(path: str, offset: int, num_lines: int) -> list[str]:
  """The last lines that the log got after byte `offset`."""
  with open(path, 'rb') as f:
    f.seek(offset)
    text = f.read().decode('utf-8', errors='replace')
  return text.splitlines()[-num_lines:]


def execute_run(run: Run, workdir: str, command: Sequence[str], *,
                timeout_s: float | None = None,
                tail_lines: int = 30) -> dict[str, Any]:
  """Runs one command to its end and records the outcome in status.json.

  Returns:
    The status record: status ('finished' or 'failed'), returncode, error,
    log_tail, start_time, end_time, seconds.
  """
  os.makedirs(workdir, exist_ok=True)
  log_path = run_folder.log_path(workdir)
  record = {'name': run.name, 'status': 'running', 'config': run.config,
            'overrides': dict(run.overrides), 'command': shlex.join(command),
            'start_time': _now()}
  run_folder.write_status(workdir, record)
  start = time.time()
  returncode, error = None, None
  with open(log_path, 'a', encoding='utf-8') as log:
    log.write(f'=== {record["start_time"]} {record["command"]}\n')
    log.flush()
    offset = log.tell()
    try:
      returncode = subprocess.run(
          command, stdin=subprocess.DEVNULL, stdout=log,
          stderr=subprocess.STDOUT, cwd=REPO_ROOT, timeout=timeout_s,
          check=False).returncode
    except subprocess.TimeoutExpired:
      error = f'killed after the {timeout_s} s timeout'
    except OSError as e:
      error = f'could not start: {e}'
  finished = returncode == 0 and run_status(workdir) == 'finished'
  if not finished and error is None:
    error = (f'exit code {returncode}' if returncode else
             'exited 0 without a finished results.json')
  tail = _log_tail(log_path, offset, tail_lines)
  if not finished and returncode and tail:
    error += ': ' + tail[-1].strip()
  record.update(status='finished' if finished else 'failed',
                returncode=returncode, error=None if finished else error,
                log_tail=tail, end_time=_now(),
                seconds=round(time.time() - start, 3))
  run_folder.write_status(workdir, record)
  return record


def run_grid(runs: Sequence[Run], grid_dir: str, *, parallel: int = 1,
             overrides: Mapping[str, Any] | None = None, tiny: bool = False,
             command_fn: CommandFn = make_command,
             timeout_s: float | None = None,
             dry_run: bool = False) -> list[dict[str, Any]]:
  """Runs every unfinished run, `parallel` at a time; a failure stops none.

  Args:
    runs: the runs, in launch order; names must be unique.
    grid_dir: each run trains in grid_dir/<name>; grid.json goes here.
    parallel: number of concurrent runs (subprocesses).
    overrides: config values for every run; they win over a run's own.
    tiny: run each config's ':tiny' variant.
    command_fn: (run, workdir) -> argv; tests pass a fake trainer here.
    timeout_s: kill and fail a run after this long.
    dry_run: only log the commands.

  Returns:
    The grid.json entries of `runs`, in order.
  """
  names = [run.name for run in runs]
  if len(set(names)) != len(names):
    raise ValueError(f'run names are not unique: {names}')
  grid_dir = os.path.abspath(grid_dir)
  grid_path = os.path.join(grid_dir, 'grid.json')
  # Entries of runs outside this invocation (an earlier --experiments) stay.
  previous = {entry['name']: entry for entry in
              (run_folder.read_json(grid_path) or {}).get('runs', [])}
  entries = dict(previous)
  lock = threading.Lock()
  jobs = []
  for run in runs:
    run = dataclasses.replace(
        run, overrides={**run.overrides, **(overrides or {})},
        tiny=run.tiny or tiny)
    workdir = os.path.join(grid_dir, run.name)
    command = list(command_fn(run, workdir))
    status = run_status(workdir)
    entry = {'name': run.name, 'config': run.config,
             'overrides': dict(run.overrides), 'tiny': run.tiny,
             'workdir': workdir, 'log': run_folder.log_path(workdir),
             'command': shlex.join(command),
             'status': 'finished' if status == 'finished' else 'pending',
             'skipped': status == 'finished',
             'attempts': previous.get(run.name, {}).get('attempts', 0)}
    for key in ('returncode', 'error', 'start_time', 'end_time', 'seconds'):
      entry[key] = previous.get(run.name, {}).get(key)
    entries[run.name] = entry
    logging.info('%-40s %s: %s', run.name, status, entry['command'])
    if status != 'finished':
      jobs.append((run, workdir, command))

  def save():
    if dry_run:
      return
    os.makedirs(grid_dir, exist_ok=True)
    with lock:
      run_folder.write_json(grid_path, {'updated': _now(), 'grid_dir': grid_dir,
                              'runs': list(entries.values())})

  def work(run, workdir, command):
    with lock:
      entries[run.name].update(status='running', start_time=_now(),
                               end_time=None, seconds=None,
                               attempts=entries[run.name]['attempts'] + 1)
    save()
    logging.info('Starting %s (log: %s)', run.name,
                 run_folder.log_path(workdir))
    record = execute_run(run, workdir, command, timeout_s=timeout_s)
    with lock:
      entries[run.name].update(
          {k: record[k] for k in ('status', 'returncode', 'error',
                                  'start_time', 'end_time', 'seconds')})
    save()
    logging.info('%s %s after %.1f s%s', run.name, record['status'],
                 record['seconds'],
                 f': {record["error"]}' if record['error'] else '')

  save()
  if not dry_run and jobs:
    with concurrent.futures.ThreadPoolExecutor(max(parallel, 1)) as pool:
      for future in [pool.submit(work, *job) for job in jobs]:
        future.result()
  return [entries[name] for name in names]


# --- Command line -------------------------------------------------------------


def _check_override_keys(overrides: Mapping[str, Any]) -> None:
  """Fails fast on a misspelt key instead of in every run's log."""
  known = base.get_config()
  for key in overrides:
    if key.split('.')[0] not in known:
      raise app.UsageError(f'--override {key}: no such config field')


def main(argv: Sequence[str]) -> int:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if _GRID_DIR.value is None:
    raise app.UsageError('--grid_dir is required')
  overrides = parse_overrides(_OVERRIDE.value)
  _check_override_keys(overrides)
  runs = []
  if _EXPERIMENTS.value or not _SEARCH.value:
    runs += grid_runs(_EXPERIMENTS.value)
  if _SEARCH.value:
    runs += expand_search(load_search_space(_SEARCH.value),
                          mode=_SEARCH_MODE.value,
                          num_samples=_NUM_SAMPLES.value,
                          seed=_SEARCH_SEED.value)
  entries = run_grid(runs, _GRID_DIR.value, parallel=_PARALLEL.value,
                     overrides=overrides, tiny=_TINY.value,
                     timeout_s=_TIMEOUT.value, dry_run=_DRY_RUN.value)
  failed = [entry['name'] for entry in entries if entry['status'] == 'failed']
  logging.info('%d runs: %d finished, %d failed %s', len(entries),
               sum(entry['status'] == 'finished' for entry in entries),
               len(failed), failed or '')
  if _REPORT.value and not _DRY_RUN.value:
    try:
      path = report.write_report(_GRID_DIR.value)
      logging.info('Report: %s', path)
    except Exception:  # pylint: disable=broad-except
      # The runs are done and recorded; a report bug must not hide that.
      logging.exception('Writing the report failed; rerun ocr_jax.report.')
  return 1 if failed else 0


if __name__ == '__main__':
  app.run(main)
