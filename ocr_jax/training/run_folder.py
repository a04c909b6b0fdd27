"""The run folder of one training run: its layout, checkpoints and records.

This is the one module that knows where a run keeps what:

  WORKDIR/
    checkpoints/   orbax checkpoints of recent epochs, for resuming
    best/          the orbax checkpoint of the best epoch, for reading
    mid_epoch/     the latest checkpoint taken inside an epoch (every
                   config.checkpoint_every_steps, or on SIGTERM), keyed by
                   the global training step; resuming prefers it when it is
                   later than the last epoch's
    metrics.jsonl  one JSON record per epoch (a resume rewrites it)
    results.json   the final scores, written when training finishes
    samples.png    test-set transcriptions of the best state
    status.json    the outcome of the run's process (launch.grid only)
    train.log      its stdout and stderr (launch.grid only)

Each checkpoint step of checkpoints/ and best/ is an epoch (of mid_epoch/, a
global step) and holds three items: `state` (the TrainState), `host` (the
loop's JSON state: epoch, history, plateau and early stopping, and inside an
epoch its position) and `config` (the experiment config as JSON).

Every process of a multi-process run calls the saves and restores (orbax
coordinates them; the workdir must be one folder all processes see); only
process 0 writes the record files (the caller's rule).

Training writes with `create_checkpoint_managers`,
`create_mid_epoch_manager`, `save_checkpoint`, `append_metrics` and
`write_results`; resumes with `restore_checkpoint`.
Reading restores a model's weights with `restore_variables`; the report,
the grid and the benchmarks read records with `read_results`,
`read_metrics`, `read_status` (missing or half-written files read as None or
[]).
"""

import json
import os
import threading
from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp

CHECKPOINTS = 'checkpoints'
BEST = 'best'
MID_EPOCH = 'mid_epoch'
METRICS = 'metrics.jsonl'
RESULTS = 'results.json'
SAMPLES = 'samples.png'
STATUS = 'status.json'
LOG = 'train.log'

# Files whose presence marks a folder as a run (finished, failed or going).
RECORD_FILES = (RESULTS, STATUS, METRICS)


# --- Paths --------------------------------------------------------------------


def checkpoints_dir(workdir: str) -> str:
  return os.path.join(workdir, CHECKPOINTS)


def best_dir(workdir: str) -> str:
  return os.path.join(workdir, BEST)


def mid_epoch_dir(workdir: str) -> str:
  return os.path.join(workdir, MID_EPOCH)


def metrics_path(workdir: str) -> str:
  return os.path.join(workdir, METRICS)


def results_path(workdir: str) -> str:
  return os.path.join(workdir, RESULTS)


def samples_path(workdir: str) -> str:
  return os.path.join(workdir, SAMPLES)


def status_path(workdir: str) -> str:
  return os.path.join(workdir, STATUS)


def log_path(workdir: str) -> str:
  return os.path.join(workdir, LOG)


def is_run_folder(path: str) -> bool:
  """Whether `path` holds a checkpoint folder (best/ or checkpoints/)."""
  return os.path.isdir(best_dir(path)) or os.path.isdir(checkpoints_dir(path))


def has_records(path: str) -> bool:
  """Whether `path` holds results, a grid status or metrics of a run."""
  return os.path.isdir(path) and any(
      os.path.exists(os.path.join(path, name)) for name in RECORD_FILES)


# --- Checkpoints --------------------------------------------------------------


def create_checkpoint_managers(
    workdir: str, keep: int
) -> tuple[ocp.CheckpointManager, ocp.CheckpointManager]:
  """(recent, best): the last `keep` epochs for resuming, the best one."""
  recent = ocp.CheckpointManager(
      os.path.abspath(checkpoints_dir(workdir)),
      options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))
  best = ocp.CheckpointManager(
      os.path.abspath(best_dir(workdir)),
      options=ocp.CheckpointManagerOptions(max_to_keep=1, create=True))
  return recent, best


def create_mid_epoch_manager(workdir: str) -> ocp.CheckpointManager:
  """The latest checkpoint inside an epoch, keyed by the global step."""
  return ocp.CheckpointManager(
      os.path.abspath(mid_epoch_dir(workdir)),
      options=ocp.CheckpointManagerOptions(max_to_keep=1, create=True))


def save_checkpoint(manager: ocp.CheckpointManager, step: int, state: Any,
                    host_state: dict[str, Any],
                    config: ml_collections.ConfigDict) -> None:
  """Saves the state, the loop's host state and the config at `step`.

  `step` is the epoch (checkpoints/, best/) or the global step (mid_epoch/).
  """
  if step in manager.all_steps():
    return  # A replayed epoch (after a resume) reproduces the saved state.
  manager.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state),
      host=ocp.args.JsonSave(host_state),
      config=ocp.args.JsonSave(config.to_dict())))


def restore_checkpoint(manager: ocp.CheckpointManager, step: int,
                       state: Any) -> tuple[Any, dict[str, Any]]:
  """(state, host state) of `step`, shaped and placed like `state`."""
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract),
      host=ocp.args.JsonRestore()))
  return restored['state'], restored['host']


def upgrade_config(config: dict[str, Any]) -> dict[str, Any]:
  """A saved config dict with old field names renamed to today's."""
  config = dict(config)
  if 'early_stopping_mode' in config:
    mode = config.pop('early_stopping_mode')
    config.setdefault('monitor_mode', mode)
  return config


def _reading_manager(directory: str) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      directory, options=ocp.CheckpointManagerOptions(create=False),
      item_handlers={'state': ocp.PyTreeCheckpointHandler(),
                     'host': ocp.JsonCheckpointHandler(),
                     'config': ocp.JsonCheckpointHandler()})


def _find_checkpoint(workdir: str, step: int | None):
  """(manager, step) of best/ first, then checkpoints/; raises if none."""
  for directory in (best_dir(workdir), checkpoints_dir(workdir)):
    directory = os.path.abspath(directory)
    if not os.path.isdir(directory):
      continue
    manager = _reading_manager(directory)
    steps = manager.all_steps()
    if step is None and steps:
      return manager, max(steps)
    if step is not None and step in steps:
      return manager, step
  raise FileNotFoundError(
      f'no checkpoint{"" if step is None else f" for epoch {step}"} in '
      f'{os.path.join(workdir, BEST)} or '
      f'{os.path.join(workdir, CHECKPOINTS)}: not a training run folder, or '
      'its first epoch has not finished')


def restore_variables(
    workdir: str, step: int | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
  """The config and the model weights of a run, without the optimizer.

  Args:
    workdir: a training run folder.
    step: the epoch to restore (found in best/ or checkpoints/); None
      restores the best checkpoint, or the latest one if there is no best.

  Returns:
    (config dict, variables {'params', 'batch_stats'}), the variables on the
    first device, shaped as saved ('batch_stats' is {} for models without
    batch normalisation).

  Raises:
    FileNotFoundError: no checkpoint (for that epoch) in the workdir.
  """
  manager, found = _find_checkpoint(workdir, step)
  config = manager.restore(found, args=ocp.args.Composite(
      config=ocp.args.JsonRestore()))['config']
  # Restore exactly the saved parameters and statistics (never the
  # optimizer state), shaped as saved.
  saved = manager.item_metadata(found)['state']
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
      {k: saved[k] for k in ('params', 'batch_stats')
       if k in saved and jax.tree.leaves(saved[k])})
  restored = manager.restore(found, args=ocp.args.Composite(
      state=ocp.args.PyTreeRestore(
          item=target, partial_restore=True,
          restore_args=ocp.checkpoint_utils.construct_restore_args(target))))
  state = restored['state']
  variables = {'params': state['params'],
               'batch_stats': state.get('batch_stats', {})}
  return upgrade_config(config), variables


# --- Records ------------------------------------------------------------------


def read_json(path: str) -> Any:
  """The parsed file, or None when it is missing or not (yet) valid JSON."""
  try:
    with open(path, encoding='utf-8') as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def write_json(path: str, data: Any) -> None:
  """Writes atomically, so that a reader never sees half a file."""
  tmp = f'{path}.tmp{os.getpid()}-{threading.get_ident()}'
  with open(tmp, 'w', encoding='utf-8') as f:
    json.dump(data, f, indent=1, ensure_ascii=False, default=str)
  os.replace(tmp, path)


def read_results(workdir: str) -> dict[str, Any] | None:
  """The run's results.json, or None (missing, unreadable, not a dict)."""
  results = read_json(results_path(workdir))
  return results if isinstance(results, dict) else None


def write_results(workdir: str, results: dict[str, Any]) -> None:
  with open(results_path(workdir), 'w', encoding='utf-8') as f:
    json.dump(results, f, indent=1, ensure_ascii=False, default=float)


def read_status(workdir: str) -> dict[str, Any] | None:
  """The grid's status.json of the run, or None."""
  status = read_json(status_path(workdir))
  return status if isinstance(status, dict) else None


def write_status(workdir: str, status: dict[str, Any]) -> None:
  write_json(status_path(workdir), status)


def read_metrics(workdir: str) -> list[dict[str, Any]]:
  """Per-epoch records of the run's metrics.jsonl, last record per epoch.

  A resumed run repeats the epochs after its last checkpoint; a killed one
  may leave half a line. Both are tolerated.
  """
  by_epoch = {}
  try:
    with open(metrics_path(workdir), encoding='utf-8') as f:
      for line in f:
        try:
          record = json.loads(line)
        except ValueError:
          continue
        if isinstance(record, dict) and 'epoch' in record:
          by_epoch[record['epoch']] = record
  except OSError:
    return []
  return [by_epoch[epoch] for epoch in sorted(by_epoch)]


def append_metrics(workdir: str, record: dict[str, Any]) -> None:
  """Appends one epoch's record to metrics.jsonl."""
  with open(metrics_path(workdir), 'a', encoding='utf-8') as f:
    f.write(json.dumps(record, ensure_ascii=False) + '\n')


def rewrite_metrics(workdir: str, records: list[dict[str, Any]]) -> None:
  """Replaces metrics.jsonl by `records` (the history of a resumed run)."""
  with open(metrics_path(workdir), 'w', encoding='utf-8') as f:
    for record in records:
      f.write(json.dumps(record, ensure_ascii=False) + '\n')
