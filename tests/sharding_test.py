"""Data parallelism: the mesh, placement, and 8 devices against 1.

The 8-device comparison runs in a subprocess (tests/scale_out_worker.py),
since this process's JAX already started with one CPU device.
"""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from ocr_jax.training import evaluation
from ocr_jax.training import metrics
from ocr_jax.training import sharding

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, 'tests', 'scale_out_worker.py')


def worker_env():
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL='2')
  env.pop('XLA_FLAGS', None)  # The worker sets its own device count.
  return env


def test_one_device_mesh_places_and_reads_back_rows():
  mesh = sharding.create_mesh()
  assert mesh.axis_names == ('data',) and mesh.size == jax.device_count()
  batch = {'image': np.arange(12, dtype=np.float32).reshape(4, 3),
           '_mask': np.array([True, True, False, True])}
  placed = sharding.shard_batch(batch, mesh)
  assert set(placed) == {'image'}  # Host-only keys stay behind.
  np.testing.assert_array_equal(sharding.local_rows(placed['image']),
                                batch['image'])
  state = sharding.replicate({'w': np.ones(3, np.float32)}, mesh)
  assert state['w'].sharding.is_fully_replicated


def test_one_process_exchange_returns_its_own_values():
  assert sharding.allgather_json({'n': 3}) == [{'n': 3}]
  scores = metrics.OcrScores()
  scores.update(['១២៣'], ['១២'])
  assert evaluation.sum_over_processes(scores) is scores


@pytest.fixture(scope='module')
def eight_devices_against_one(khmer_digits_dir, tmp_path_factory):
  out = str(tmp_path_factory.mktemp('sharded') / 'out.npz')
  subprocess.run([sys.executable, WORKER, 'sharded_step', out,
                  khmer_digits_dir], check=True, env=worker_env(), cwd=ROOT,
                 timeout=600)
  with np.load(out) as data:
    return dict(data)


def test_sharded_step_equals_the_single_device_step(
    eight_devices_against_one):
  results = eight_devices_against_one
  # Two steps on the same global batch of 16 (2 rows per device), with
  # dropout and batch norm: the batch statistics and gradients are global.
  np.testing.assert_allclose(results['eight_loss'], results['one_loss'],
                             rtol=1e-5)
  assert results['one_loss'][0] != results['one_loss'][1]
  names = [key[len('one_'):] for key in results
           if key.startswith('one_param')]
  assert len(names) > 10
  # Adam moves each weight by about the learning rate (7e-4 in all here)
  # whatever its gradient's size, so the summation-order noise of a
  # near-zero gradient can show up at a few percent of one step (2e-5 seen
  # on an AVX-512 EPYC); a wrong reduction would be off by whole steps.
  for name in names:
    np.testing.assert_allclose(results[f'eight_{name}'],
                               results[f'one_{name}'], rtol=1e-4,
                               atol=5e-5, err_msg=name)


def test_evaluation_over_eight_devices_gives_the_same_counts(
    eight_devices_against_one):
  one = json.loads(str(eight_devices_against_one['one_scores']))
  eight = json.loads(str(eight_devices_against_one['eight_scores']))
  assert one['n'] == 37  # The whole validation split, padding excluded.
  assert eight == one
