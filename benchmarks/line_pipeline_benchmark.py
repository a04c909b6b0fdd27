r"""Measures whether synthetic line rendering keeps up with the training step.

  python -m benchmarks.line_pipeline_benchmark \
      [--config=configs/khmer_lines_ctc.py] [--workers=0,1,2] \
      [--batches=16] [--train_steps=40]

Three measurements, on the config's real training stream
(`line_pipeline.TrainStream`: `synth_lines.make_sample`, then
`preprocess.prepare`, bucketing and batching):

1. Cost: the process CPU seconds per image of rendering and preparing in
   this process (`--workers` 0), i.e. what a worker takes from the step.
2. Rate: images/s of the stream alone with each worker count in
   `--workers`, over `--batches` batches after the first chunk (which
   includes starting the workers).
3. Starvation: `--train_steps` real training steps (`train.train_step`,
   jitted as training does) fed by the stream with `config.data_workers`
   workers. Steps that compiled a new bucket shape are left out; of the
   others, the seconds spent waiting for a batch are reported against the
   seconds in the step. A wait near 0 means data never starves the step.

Results are printed and written to --output as JSON with the machine.
"""

import functools
import json
import os
import statistics
import time

import jax
import jax.numpy as jnp
from absl import app
from absl import flags
from ml_collections import config_flags

from benchmarks import machine
from ocr_jax import models
from ocr_jax.data import line_pipeline
from ocr_jax.text import charset
from ocr_jax.training import optim
from ocr_jax.training import sharding
from ocr_jax.training import train

_CONFIG = config_flags.DEFINE_config_file(
    'config', os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), 'configs', 'khmer_lines_ctc.py'),
    'Line training config whose stream is measured.', lock_config=False)
_WORKERS = flags.DEFINE_list('workers', ['0', '1', '2'],
                             'Worker counts whose stream rate is measured.')
_BATCHES = flags.DEFINE_integer('batches', 16,
                                'Timed batches per worker count.')
_TRAIN_STEPS = flags.DEFINE_integer(
    'train_steps', 40, 'Real training steps fed by the stream (0: skip).')
_OUTPUT = flags.DEFINE_string(
    'output', os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           'results', 'line_pipeline.json'),
    'JSON output path.')


def stream_rate(config, workers: int, batches: int) -> dict:
  """Images/s (and CPU s/image in this process) of the stream alone."""
  config = config.copy_and_resolve_references()
  config.data_workers = workers
  stream = line_pipeline.TrainStream(config)
  try:
    start = time.perf_counter()
    stream.batch(0)  # The first chunk: worker start-up included.
    first_s = time.perf_counter() - start
    start, start_cpu = time.perf_counter(), time.process_time()
    widths = []
    for k in range(1, batches + 1):
      widths.append(stream.batch(k)['image'].shape[2])
    wall = time.perf_counter() - start
    cpu = time.process_time() - start_cpu
  finally:
    stream.close()
  images = batches * config.batch_size // jax.process_count()
  return {'workers': workers, 'first_chunk_s': first_s,
          'images_per_s': images / wall,
          'main_cpu_s_per_image': cpu / images,
          'mean_batch_width': statistics.mean(widths)}


def starvation(config, steps: int) -> dict:
  """Data wait vs step time of real training steps fed by the stream."""
  vocab = charset.get_vocabulary(config.vocabulary)
  kind = models.model_kind(config.model)
  model = models.create_model(
      config.model, vocab_size=vocab.size, dtype=jnp.dtype(config.dtype),
      backend=config.backend, dropout_rate=config.dropout_rate)
  learning_rate_fn = optim.create_learning_rate_fn(config,
                                                   config.steps_per_epoch)
  mesh = sharding.create_mesh()
  state = sharding.replicate(train.create_train_state(
      config, model, jax.random.key(config.seed), learning_rate_fn), mesh)
  step_fn = jax.jit(functools.partial(
      train.train_step, model=model, config=config, kind=kind,
      learning_rate_fn=learning_rate_fn), donate_argnums=0)
  rng = jax.random.key(config.seed)
  stream = line_pipeline.TrainStream(config)
  waits, step_times, compiled = [], [], 0
  try:
    for k in range(steps):
      start = time.perf_counter()
      batch = sharding.shard_batch(stream.batch(k), mesh)
      wait = time.perf_counter() - start
      cache = step_fn._cache_size()  # pylint: disable=protected-access
      start = time.perf_counter()
      state, metrics = step_fn(state, batch, rng)
      jax.block_until_ready(metrics)
      took = time.perf_counter() - start
      if step_fn._cache_size() != cache:  # pylint: disable=protected-access
        compiled += 1
        continue
      waits.append(wait)
      step_times.append(took)
  finally:
    stream.close()
  if not step_times:
    return {'steps': steps, 'compiled_steps': compiled}
  return {'steps': steps, 'compiled_steps': compiled,
          'timed_steps': len(step_times), 'workers': config.data_workers,
          'step_s': statistics.mean(step_times),
          'data_wait_s': statistics.mean(waits),
          'data_wait_max_s': max(waits),
          'data_wait_fraction': sum(waits) / (sum(waits) + sum(step_times)),
          'step_images_per_s': config.batch_size / statistics.mean(
              step_times)}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  config = _CONFIG.value
  result = {'config': {key: config.get(key) for key in (
      'model', 'batch_size', 'image_height', 'image_width', 'bucket_step',
      'bucket_chunk_batches', 'data_workers', 'dtype')}, 'stream': []}
  for workers in _WORKERS.value:
    rate = stream_rate(config, int(workers), _BATCHES.value)
    result['stream'].append(rate)
    print(json.dumps(rate), flush=True)
  if _TRAIN_STEPS.value > 0:
    result['training'] = starvation(config, _TRAIN_STEPS.value)
    print(json.dumps(result['training']), flush=True)
  result['machine'] = machine.machine_info()
  print(json.dumps(result['machine']))
  os.makedirs(os.path.dirname(os.path.abspath(_OUTPUT.value)), exist_ok=True)
  with open(_OUTPUT.value, 'w', encoding='utf-8') as f:
    json.dump(result, f, indent=2)


if __name__ == '__main__':
  app.run(main)
