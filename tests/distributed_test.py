"""Two processes joined by jax.distributed on localhost train as one.

Each process (tests/scale_out_worker.py, 2 CPU devices each, CPU collectives
over 127.0.0.1) reads its half of the data and scores its half of the
validation split; the counts are summed across processes, so both must take
the same early-stopping decisions and end with the same parameters.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np

from ocr_jax.training import run_folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, 'tests', 'scale_out_worker.py')


def free_port():
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
    sock.bind(('127.0.0.1', 0))
    return sock.getsockname()[1]


def run_two_processes(workdir, data_dir, tmp_path):
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL='2')
  env.pop('XLA_FLAGS', None)
  port = free_port()
  outs = [str(tmp_path / f'process{index}.npz') for index in range(2)]
  logs = [open(tmp_path / f'process{index}.log', 'w+', encoding='utf-8')
          for index in range(2)]
  processes = [
      subprocess.Popen([sys.executable, WORKER, 'distributed', out,
                        str(index), str(port), workdir, data_dir],
                       cwd=ROOT, env=env, stdout=log,
                       stderr=subprocess.STDOUT)
      for index, (out, log) in enumerate(zip(outs, logs))]
  try:
    for process in processes:
      process.wait(timeout=600)
  finally:
    for process in processes:
      if process.poll() is None:
        process.kill()
  texts = []
  for log in logs:
    log.seek(0)
    texts.append(log.read())
    log.close()
  # Where each process stood, then the end of the failing one's log.
  stages = [f'process {index}: {line}' for index, text in enumerate(texts)
            for line in text.splitlines() if line.startswith('STAGE')]
  for process, text in zip(processes, texts):
    assert process.returncode == 0, '\n'.join(stages + [text[-4000:]])
  results = []
  for out in outs:
    with np.load(out) as data:
      results.append(dict(data))
  return results


def test_two_processes_train_identically_and_stop_together(
    khmer_digits_dir, tmp_path):
  workdir = str(tmp_path / 'run')
  first, second = run_two_processes(workdir, khmer_digits_dir, tmp_path)
  for result in (first, second):
    assert int(result['process_count']) == 2
    assert int(result['device_count']) == 4
  # The same early-stopping calls, values and decisions on both: epoch 1
  # sets the best, epoch 2 gains less than min_delta and stops the run.
  calls = json.loads(str(first['calls']))
  assert calls == json.loads(str(second['calls']))
  assert [(epoch, stop) for epoch, _, stop in calls] == [(1, False),
                                                         (2, True)]
  names = [key for key in first if key.startswith('param')]
  assert len(names) > 10
  for name in names:
    np.testing.assert_array_equal(first[name], second[name], err_msg=name)
  # Process 0 alone wrote the records; the scores cover the whole split
  # (37 images), not one process's half.
  results = run_folder.read_results(workdir)
  assert results['stopped_early'] and results['epochs_run'] == 2
  assert results['best_validation']['n'] == 37
  assert results['test']['n'] == 21
  assert [r['val_char_accuracy'] for r in results['history']] == [
      value for _, value, _ in calls]
  with open(run_folder.metrics_path(workdir), encoding='utf-8') as f:
    assert len(f.readlines()) == 2
