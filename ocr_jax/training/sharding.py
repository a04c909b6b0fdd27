"""Device mesh and data placement for data-parallel training.

A 1-D mesh over every device of every process, axis 'data'. The training
state is replicated; each batch is split along its first axis. Each process
feeds only its own rows (its slice of the split), which
`make_array_from_process_local_data` assembles into one global array.
"""

import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np


def create_mesh() -> jax.sharding.Mesh:
  # Auto axes: under Explicit axes (make_mesh's default) flax's nn.RNN
  # scan fails with a carry type mismatch.
  return jax.make_mesh((jax.device_count(),), ('data',),
                       axis_types=(jax.sharding.AxisType.Auto,))


def replicate(tree, mesh):
  """Places a pytree on every device of the mesh."""
  return jax.device_put(tree, NamedSharding(mesh, P()))


def shard_batch(batch: dict[str, np.ndarray], mesh) -> dict[str, jax.Array]:
  """Host-local numpy batch -> global arrays split over 'data'.

  Keys starting with '_' (such as the eval '_mask') stay on the host.
  """
  data_sharding = NamedSharding(mesh, P('data'))
  return {
      key: jax.make_array_from_process_local_data(data_sharding, value)
      for key, value in batch.items() if not key.startswith('_')
  }


def local_rows(array: jax.Array) -> np.ndarray:
  """This process's rows of an array split over 'data', in order."""
  if jax.process_count() == 1:
    return np.asarray(array)
  shards = sorted(array.addressable_shards,
                  key=lambda shard: shard.index[0].start or 0)
  return np.concatenate([np.asarray(shard.data) for shard in shards])
