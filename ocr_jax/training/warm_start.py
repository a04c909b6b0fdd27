"""Warm start: begin a run from another run's weights (`config.init_from`).

The source is a training run folder (its best checkpoint, else its latest)
or a weights file written by `save_weights` (a flax msgpack of
{'params', 'batch_stats'}, small enough to commit, so that a run whose
folder is gone can go on from the last committed weights).

The restore is partial, as the prototype's transfer learning was: every
weight whose path and shape match the new model is copied; the others
(a head over another vocabulary, a decoder the source lacks) keep their
fresh initialisation. The optimizer starts afresh. What was copied and what
was not is logged and returned, so that a run never silently trains from
scratch believing it warm-started.
"""

import os
from typing import Any

from absl import logging
from flax import serialization
import jax
import numpy as np

from ocr_jax.training import run_folder

Variables = dict[str, Any]


def save_weights(path: str, variables: Variables, *,
                 dtype=np.float32) -> None:
  """Writes {'params', 'batch_stats'} as msgpack (floats cast to dtype)."""
  host = jax.tree.map(
      lambda x: np.asarray(x).astype(dtype)
      if np.issubdtype(np.asarray(x).dtype, np.floating) else np.asarray(x),
      jax.device_get({'params': variables['params'],
                      'batch_stats': variables.get('batch_stats', {})}))
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path + '.tmp', 'wb') as f:
    f.write(serialization.msgpack_serialize(host))
  os.replace(path + '.tmp', path)


def load_weights(source: str) -> Variables:
  """{'params', 'batch_stats'} of a run folder or a `save_weights` file.

  Raises:
    FileNotFoundError: `source` is neither.
  """
  if os.path.isdir(source):
    _, variables = run_folder.restore_variables(source)
    return jax.device_get(variables)
  if os.path.isfile(source):
    with open(source, 'rb') as f:
      return serialization.msgpack_restore(f.read())
  raise FileNotFoundError(f'init_from {source!r} is neither a run folder nor '
                          'a weights file')


def merge(initial: Variables, loaded: Variables) -> tuple[Variables, dict]:
  """`initial` with every leaf that `loaded` has at the same path and shape.

  Returns:
    (merged variables, report {'copied': n, 'kept': [paths], 'unused':
    [paths]}): kept are the new model's leaves left as initialised (absent
    from `loaded` or of another shape), unused the loaded leaves the model
    has no place for.
  """
  flat_loaded = {jax.tree_util.keystr(path): leaf for path, leaf in
                 jax.tree_util.tree_leaves_with_path(loaded)}
  copied, kept, used = 0, [], set()

  def pick(path, leaf):
    nonlocal copied
    key = jax.tree_util.keystr(path)
    source = flat_loaded.get(key)
    if source is not None and np.shape(source) == np.shape(leaf):
      copied += 1
      used.add(key)
      return np.asarray(source).astype(np.asarray(leaf).dtype)
    kept.append(key)
    return leaf

  merged = jax.tree_util.tree_map_with_path(pick, initial)
  unused = sorted(set(flat_loaded) - used)
  return merged, {'copied': copied, 'kept': kept, 'unused': unused}


def warm_start(variables: Variables, source: str) -> Variables:
  """`variables` overwritten by what fits from `source` (see `merge`).

  Raises:
    ValueError: nothing at all fits (another architecture), which would
      otherwise silently train from scratch.
  """
  merged, report = merge(variables, load_weights(source))
  if not report['copied']:
    raise ValueError(f'init_from {source!r}: no weight fits this model '
                     f'(its leaves: {report["unused"][:5]}...)')
  logging.info('Warm start from %s: %d arrays copied; kept as initialised: '
               '%s; unused: %s', source, report['copied'], report['kept'],
               report['unused'])
  return merged
