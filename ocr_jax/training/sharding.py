"""Device mesh, data placement and cross-process exchange for data parallelism.

A 1-D mesh over every device of every process, axis 'data'. The training
state is replicated; each batch is split along its first axis.
`config.batch_size` is the GLOBAL batch: each process feeds
batch_size // process_count rows (its slice of the split), which
`make_array_from_process_local_data` assembles into one global array, so
each device computes batch_size // device_count rows. With a fixed global
batch a run computes the same updates on 1 device as on 8 (up to float
summation order); to keep the per-device batch when adding devices, scale
`--config.batch_size` with the device count.

Host-side results (the edit-distance counts of evaluation) are exchanged
with `allgather_json`, so that every process sees the same totals and makes
the same decisions.
"""

import json
from typing import Any, Sequence

import jax
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np


def create_mesh(devices: Sequence[jax.Device] | None = None
                ) -> jax.sharding.Mesh:
  """The 1-D 'data' mesh over `devices` (default: all, of all processes)."""
  devices = jax.devices() if devices is None else list(devices)
  # Auto axes: under Explicit axes (make_mesh's default) flax's nn.RNN
  # scan fails with a carry type mismatch.
  return jax.make_mesh((len(devices),), ('data',),
                       axis_types=(jax.sharding.AxisType.Auto,),
                       devices=devices)


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh) -> NamedSharding:
  """Split along the first (batch) axis over 'data'."""
  return NamedSharding(mesh, P('data'))


def replicate(tree, mesh):
  """Places a pytree, identical on every process, on every mesh device."""
  sharding = replicated(mesh)
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)
  # Arrays on one local device cannot move to other processes' devices:
  # each process fills its own devices from its (identical) host copy.
  return jax.tree.map(
      lambda x: jax.make_array_from_callback(
          np.shape(x), sharding, lambda index: np.asarray(x)[index]),
      jax.device_get(tree))


def shard_batch(batch: dict[str, np.ndarray], mesh) -> dict[str, jax.Array]:
  """Host-local numpy batch -> global arrays split over 'data'.

  Keys starting with '_' (such as the eval '_mask') stay on the host.
  """
  data_sharding = batch_sharding(mesh)
  return {
      key: jax.make_array_from_process_local_data(data_sharding, value)
      for key, value in batch.items() if not key.startswith('_')
  }


def local_rows(array: jax.Array) -> np.ndarray:
  """This process's rows of an array split over 'data', in order.

  The rows are those this process fed in through `shard_batch`: its
  devices hold a contiguous block of the global batch.
  """
  if jax.process_count() == 1:
    return np.asarray(array)
  shards = {}
  for shard in array.addressable_shards:
    # Several local devices may hold the same rows (a replicated axis).
    shards.setdefault(shard.index[0].start or 0, shard)
  return np.concatenate([np.asarray(shards[start].data)
                         for start in sorted(shards)])


def allgather_json(value: Any) -> list[Any]:
  """Every process's JSON-serialisable `value`, in process order.

  A collective: every process must call it, in the same order. Each process
  gets the same list, so merging it in order gives the same totals
  everywhere (floats included).
  """
  if jax.process_count() == 1:
    return [value]
  data = np.frombuffer(json.dumps(value).encode('utf-8'), np.uint8)
  lengths = multihost_utils.process_allgather(np.int32(data.size))
  padded = np.zeros(int(np.max(lengths)), np.uint8)
  padded[:data.size] = data
  gathered = multihost_utils.process_allgather(padded)
  return [json.loads(bytes(row[:length]).decode('utf-8'))
          for row, length in zip(gathered, lengths)]



def wait_for_all_processes(name: str) -> None:
  """Blocks until every process reaches the barrier `name` (no-op alone).

  Used after process 0's final writes, so that no process reaches JAX's
  shutdown barrier minutes before another and times it out.
  """
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)
