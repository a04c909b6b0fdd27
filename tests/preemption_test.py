"""Preemption: SIGTERM saves and exits; kill -9 mid-epoch loses nothing.

One run is stopped twice in subprocesses (tests/scale_out_worker.py runs
ocr_jax.main and pauses at a chosen step so that the signals land at known
places): SIGTERM in epoch 1, then, after resuming, kill -9 in epoch 2. A
final resume here must end with exactly the parameters, losses and scores of
an uninterrupted run.
"""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from configs import base
from ocr_jax.training import preemption
from ocr_jax.training import run_folder
from ocr_jax.training import train

pytestmark = pytest.mark.usefixtures('fast_compile')

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, 'tests', 'scale_out_worker.py')
# 2 epochs of 6 steps; mid-epoch checkpoints at global steps 4 and 8.
OVERRIDES = {'steps_per_epoch': 6, 'checkpoint_every_steps': 4}


def worker_env(cache_dir):
  # The second run loads the first one's compiled programs (halves it).
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL='2',
             JAX_COMPILATION_CACHE_DIR=cache_dir,
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0')
  env.pop('XLA_FLAGS', None)
  return env


def start_paused_run(workdir, data_dir, pause_at):
  """ocr_jax.main on the tiny config, paused before step `pause_at`."""
  flags = ['--config=configs/base.py:tiny', f'--workdir={workdir}',
           f'--config.data_dir={data_dir}']
  flags += [f'--config.{key}={value}' for key, value in OVERRIDES.items()]
  process = subprocess.Popen(
      [sys.executable, WORKER, 'main', str(pause_at), '--', *flags],
      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True, cwd=ROOT,
      env=worker_env(os.path.join(os.path.dirname(workdir), 'jax_cache')))
  line = process.stdout.readline()
  if line.strip() != 'PAUSED':
    process.kill()
    raise AssertionError(f'worker did not pause: {line!r}\n'
                         f'{process.communicate()[1][-3000:]}')
  return process


def wait_for_checkpoint(directory, step, timeout=60):
  """Waits until orbax has finalised `step` (renamed from its tmp dir)."""
  deadline = time.time() + timeout
  while not os.path.isdir(os.path.join(directory, str(step))):
    assert time.time() < deadline, os.listdir(directory)
    time.sleep(0.05)


def test_sigterm_and_kill_mid_epoch_resume_exactly(khmer_digits_dir,
                                                     tmp_path):
  config = base.get_config('tiny')
  config.data_dir = khmer_digits_dir
  config.update(OVERRIDES)
  reference = train.train_and_evaluate(config, str(tmp_path / 'whole'))
  workdir = str(tmp_path / 'stopped')
  mid_epoch = run_folder.mid_epoch_dir(workdir)

  # SIGTERM while step 3 is under way: the run saves after step 4 (its
  # next step) and exits with 143, without finishing epoch 1.
  process = start_paused_run(workdir, khmer_digits_dir, pause_at=3)
  process.send_signal(signal.SIGTERM)
  _, stderr = process.communicate('go\n', timeout=300)
  assert process.returncode == preemption.EXIT_CODE, stderr[-3000:]
  assert 'rerun the same command to resume' in stderr
  assert os.listdir(mid_epoch) == ['4']
  assert not os.listdir(run_folder.checkpoints_dir(workdir))

  # Resumed from step 4; killed with SIGKILL during epoch 2, after the
  # mid-epoch checkpoint of step 8 (epoch 2, 2 steps in).
  process = start_paused_run(workdir, khmer_digits_dir, pause_at=9)
  wait_for_checkpoint(mid_epoch, 8)
  process.kill()
  process.communicate(timeout=60)
  assert process.returncode == -signal.SIGKILL
  assert os.listdir(run_folder.checkpoints_dir(workdir)) == ['1']

  resumed = train.train_and_evaluate(config, workdir)
  for a, b in zip(jax.tree.leaves(reference.params),
                  jax.tree.leaves(resumed.params), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  whole = run_folder.read_results(str(tmp_path / 'whole'))
  again = run_folder.read_results(workdir)
  assert again['test'] == whole['test']
  assert [r['train_loss'] for r in again['history']] == [
      r['train_loss'] for r in whole['history']]
  with open(run_folder.metrics_path(workdir), encoding='utf-8') as f:
    assert [json.loads(line)['epoch'] for line in f] == [1, 2]


def test_resume_prefers_the_later_of_epoch_and_mid_epoch_checkpoints():
  class Manager:
    def __init__(self, latest):
      self.latest = latest

    def latest_step(self):
      return self.latest

  epochs, steps = Manager(2), Manager(13)  # 6 steps per epoch.
  assert train.resume_point(epochs, steps, 6) == (steps, 13)
  assert train.resume_point(epochs, Manager(12), 6) == (epochs, 2)
  assert train.resume_point(Manager(None), Manager(3), 6)[1] == 3
  assert train.resume_point(Manager(None), Manager(None), 6) is None
