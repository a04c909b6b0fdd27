"""Subprocess side of the scale-out tests (not a test module itself).

The tests need a fresh JAX per run: several fake CPU devices must be set
before JAX starts, a distributed process joins others, a killed run must
really die. Each mode prints nothing but what the test waits for.

  python tests/scale_out_worker.py sharded_step OUT DATA_DIR
      8 CPU devices: one training step and a validation pass on a mesh of 8
      devices and on a mesh of 1, written to OUT (.npz).
  python tests/scale_out_worker.py main PAUSE_AT -- MAIN_FLAGS...
      ocr_jax.main with MAIN_FLAGS; before fetching the batch of global
      step PAUSE_AT (0-based) it prints 'PAUSED' and waits for a line on
      stdin, so that the test can signal it at a known step.
  python tests/scale_out_worker.py distributed OUT PROCESS_ID PORT WORKDIR
      DATA_DIR
      one of two processes (2 CPU devices each) joined through
      jax.distributed on 127.0.0.1:PORT; trains the tiny config and writes
      its final parameters and its early-stopping calls to OUT (.npz).
"""

import functools
import json
import sys
import time

from absl import app
import jax
import numpy as np

from configs import base
from ocr_jax import main as main_lib
from ocr_jax import models
from ocr_jax.data import input_pipeline
from ocr_jax.models import decode
from ocr_jax.text import charset
from ocr_jax.training import evaluation
from ocr_jax.training import optim
from ocr_jax.training import sharding
from ocr_jax.training import train

# The tests compare against runs in the pytest process, which compiles with
# the `fast_compile` fixture: compile the same way. (Importing these modules
# does not start JAX, so the device count and jax.distributed set below, in
# main, still apply.)
jax.config.update('jax_disable_most_optimizations', True)


def tiny_config(data_dir, **overrides):
  config = base.get_config('tiny')
  config.data_dir = data_dir
  config.update(overrides)
  return config


def random_batch(config, size, seed):
  """A global training batch of noise images and random labels."""
  rng = np.random.default_rng(seed)
  lengths = rng.integers(1, config.max_label_length + 1, size)
  labels = np.zeros([size, config.max_label_length + 1], np.int32)
  for row, length in enumerate(lengths):
    labels[row, :length] = rng.integers(4, 14, length)
    labels[row, length] = 2  # EOS.
  return {
      'image': rng.normal(size=[size, config.image_height,
                                config.image_width, 3]).astype(np.float32),
      'width': rng.integers(config.image_width // 2, config.image_width + 1,
                            size).astype(np.int32),
      'labels': labels,
      'label_length': lengths.astype(np.int32),
  }


def sharded_step(out, data_dir):
  """Train step and evaluation on 8 devices and on 1, same global batch."""
  assert jax.device_count() == 8, jax.devices()
  config = tiny_config(data_dir, batch_size=16)
  vocab = charset.get_vocabulary(config.vocabulary)
  model = models.create_model(config.model, vocab_size=vocab.size,
                              dtype=jax.numpy.dtype(config.dtype))
  lr_fn = optim.create_learning_rate_fn(config, 4)
  batches = [random_batch(config, config.batch_size, seed) for seed in (1, 2)]
  eval_data = input_pipeline.create_eval_dataset(config, 'validation',
                                                 data_dir=data_dir)
  results = {}
  for name, devices in (('one', jax.devices()[:1]), ('eight', jax.devices())):
    mesh = sharding.create_mesh(devices)
    state = sharding.replicate(
        train.create_train_state(config, model, jax.random.key(0), lr_fn),
        mesh)
    rng = sharding.replicate(jax.random.key(1), mesh)
    step_fn = jax.jit(functools.partial(
        train.train_step, model=model, config=config,
        kind=models.model_kind(config.model),
        learning_rate_fn=lr_fn))
    losses = []
    for batch in batches:
      state, metrics = step_fn(state, sharding.shard_batch(batch, mesh), rng)
      losses.append(float(metrics['loss']))
    results[f'{name}_loss'] = np.array(losses)
    for index, leaf in enumerate(jax.tree.leaves(state.params)):
      results[f'{name}_param{index}'] = np.asarray(leaf)
    # Evaluation: the same trained state, copied from the 1-device run,
    # so that both passes score identical parameters.
    if name == 'one':
      variables = jax.device_get({'params': state.params,
                                  'batch_stats': state.batch_stats})
    predict = jax.jit(
        lambda *args: decode.make_predict_fn(
            model, models.model_kind(config.model), config.max_label_length,
            1)(*args)[:2],
        out_shardings=sharding.batch_sharding(mesh))
    placed = sharding.replicate(variables, mesh)
    scores, _ = evaluation.evaluate(
        lambda batch, mesh=mesh, placed=placed, predict=predict: predict(
            placed, *(sharding.shard_batch(batch, mesh)[key]
                      for key in ('image', 'width'))),
        eval_data, vocab)
    results[f'{name}_scores'] = np.array(json.dumps(scores))
  np.savez(out, **results)


def pause_before_step(pause_at):
  """Makes train.create_train_batches stop before step `pause_at`."""
  original = train.create_train_batches

  def create_train_batches(config, epoch, start_step):
    first = (epoch - 1) * config.steps_per_epoch + start_step
    for step, batch in enumerate(original(config, epoch, start_step), first):
      if step == pause_at:
        print('PAUSED', flush=True)
        sys.stdin.readline()
      yield batch

  train.create_train_batches = create_train_batches


def run_main(pause_at, flags):
  pause_before_step(pause_at)
  app.run(main_lib.main, argv=['ocr_jax.main', *flags])


def distributed(out, process_id, port, workdir, data_dir):
  jax.config.update('jax_num_cpu_devices', 2)
  jax.distributed.initialize(coordinator_address=f'127.0.0.1:{port}',
                             num_processes=2, process_id=process_id,
                             initialization_timeout=120)
  calls = []
  update = optim.EarlyStopping.update

  def recording_update(self, value, epoch=None):
    stop = update(self, value, epoch=epoch)
    calls.append([epoch, value, stop])
    return stop

  optim.EarlyStopping.update = recording_update
  # Patience 1 and a tiny learning rate: the run stops early, on the
  # summed scores of both processes' halves of the validation split.
  config = tiny_config(data_dir, num_epochs=4, steps_per_epoch=2,
                       early_stopping_patience=1,
                       early_stopping_min_delta=0.5, learning_rate=1e-5)
  stage('joined')
  state = train.train_and_evaluate(config, workdir)
  stage('trained')
  params = {f'param{index}': np.asarray(leaf) for index, leaf in
            enumerate(jax.tree.leaves(jax.device_get(state.params)))}
  np.savez(out, calls=np.array(json.dumps(calls)),
           process_count=jax.process_count(),
           device_count=jax.device_count(), **params)
  stage('saved')
  jax.distributed.shutdown()
  stage('shut down')


def stage(name):
  """Marks progress in the log, so that a failure shows where it stood."""
  print(f'STAGE {time.strftime("%H:%M:%S")} {name}', flush=True)


def main(argv):
  mode = argv[1]
  if mode == 'sharded_step':
    jax.config.update('jax_num_cpu_devices', 8)
    sharded_step(argv[2], argv[3])
  elif mode == 'main':
    run_main(int(argv[2]), argv[argv.index('--') + 1:])
  elif mode == 'distributed':
    distributed(argv[2], int(argv[3]), int(argv[4]), argv[5], argv[6])
  else:
    raise ValueError(f'unknown mode {mode!r}')


if __name__ == '__main__':
  main(sys.argv)
