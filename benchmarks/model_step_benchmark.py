r"""Times the real training step, `train.train_step`, of an experiment config.

  python -m benchmarks.model_step_benchmark \
      [--config=configs/conservative_small.py] [--config.dtype=float32] \
      [--config.backend=cpu] [--steps=20] [--warmup=2] [--profile]

The step is the one `train.train_and_evaluate` jits: the config's loss
(label smoothing, focal or CTC, the auxiliary CTC loss), its optimizer
(clipping, Adam/AdamW, the schedule) and batch statistics, on a state built
by `train.create_train_state` and placed as training places it (replicated
state, batch split over the 'data' mesh axis). The batch has the real
shape: config.batch_size images of image_height x image_width at full
width, with labels of random length up to max_label_length from the
config's vocabulary. Images are random: the step's cost does not depend on
their content.

The step is AOT-compiled (compile seconds reported apart), run --warmup
times, then --steps times, each step feeding the next its donated state as
training does; the median and minimum seconds per step, images/s and the
median process CPU seconds per step go to --output as JSON with the
machine description. On a shared machine, run it when it is quiet (see the
load average in the output). --profile also traces the step with
jax.profiler and prints the time by model part and pass (step_profile.py).

Renamed or removed flags (this benchmark used to time its own rewrite of
the step): --preset, --batch_size, --height, --width, --vocab_size and
--dtypes are now config fields (--config.model=..., --config.batch_size=...,
--config.dtype=...); --conv_impls is --config.backend; --parts and
--stage_strides are gone (--profile splits the real step by part).
"""

import functools
import json
import os
import statistics
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
from ml_collections import config_flags
import numpy as np

from benchmarks import machine
from benchmarks import step_profile
from ocr_jax import models
from ocr_jax.text import charset
from ocr_jax.training import optim
from ocr_jax.training import sharding
from ocr_jax.training import train

_CONFIG = config_flags.DEFINE_config_file(
    'config', os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), 'configs', 'conservative_small.py'),
    'Experiment config whose step is timed.', lock_config=True)
_STEPS = flags.DEFINE_integer('steps', 20, 'Timed steps.')
_WARMUP = flags.DEFINE_integer('warmup', 2, 'Untimed steps after compiling.')
_PROFILE = flags.DEFINE_bool(
    'profile', False, 'Also trace the step with jax.profiler and print the '
    'time by model part and pass (benchmarks/step_profile.py).')
_OUTPUT = flags.DEFINE_string(
    'output', os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           'results', 'model_step.json'), 'JSON output path.')


def fake_batch(config, rng: np.random.Generator) -> dict[str, np.ndarray]:
  """A training batch of the real shape and dtypes (random content).

  Returns:
    image [batch, height, width, 3] float32, width [batch] int32, labels
    [batch, max_label_length + 1] int32 (characters, EOS, then PAD) and
    label_length [batch] int32, as the input pipeline yields them.
  """
  batch, max_length = config.batch_size, config.max_label_length
  vocab = charset.get_vocabulary(config.vocabulary)
  lengths = rng.integers(1, max_length + 1, batch)
  chars = rng.integers(charset.NUM_SPECIAL, vocab.size, (batch, max_length))
  position = np.arange(max_length + 1)[None, :]
  labels = np.where(position < lengths[:, None],
                    np.pad(chars, ((0, 0), (0, 1))), charset.PAD_ID)
  labels = np.where(position == lengths[:, None], charset.EOS_ID, labels)
  return {
      'image': rng.standard_normal(
          (batch, config.image_height, config.image_width, 3), np.float32),
      'width': np.full((batch,), config.image_width, np.int32),
      'labels': labels.astype(np.int32),
      'label_length': lengths.astype(np.int32),
  }


def create_step(config):
  """(step function, state, global batch) exactly as training builds them."""
  train.validate_config(config)
  vocab = charset.get_vocabulary(config.vocabulary)
  kind = models.model_kind(config.model)
  model = models.create_model(
      config.model, vocab_size=vocab.size, dtype=jnp.dtype(config.dtype),
      backend=config.backend, dropout_rate=config.dropout_rate)
  # The schedule's value does not change the step's cost.
  steps_per_epoch = max(config.steps_per_epoch, 100)
  learning_rate_fn = optim.create_learning_rate_fn(config, steps_per_epoch)
  mesh = sharding.create_mesh()
  state = train.create_train_state(config, model, jax.random.key(config.seed),
                                   learning_rate_fn)
  state = sharding.replicate(state, mesh)
  batch = sharding.shard_batch(fake_batch(config, np.random.default_rng(0)),
                               mesh)
  step = functools.partial(train.train_step, model=model, config=config,
                           kind=kind, learning_rate_fn=learning_rate_fn)
  return step, state, batch


def time_steps(step, state, batch, rng, *, steps: int,
               warmup: int) -> dict[str, float]:
  """Compiles the step, warms it up, then times `steps` chained calls."""
  start = time.perf_counter()
  compiled = jax.jit(step, donate_argnums=0).lower(state, batch, rng).compile()
  compile_s = time.perf_counter() - start
  for _ in range(warmup):
    state, metrics = compiled(state, batch, rng)
  jax.block_until_ready(state)
  wall, cpu = [], []
  for _ in range(steps):
    start, start_cpu = time.perf_counter(), time.process_time()
    state, metrics = compiled(state, batch, rng)
    jax.block_until_ready((state, metrics))
    wall.append(time.perf_counter() - start)
    cpu.append(time.process_time() - start_cpu)
  loss = float(metrics['loss'])
  if not np.isfinite(loss):
    raise FloatingPointError(f'the timed step gave a non-finite loss {loss}')
  return {'compile_s': compile_s, 'step_s': statistics.median(wall),
          'step_min_s': min(wall), 'step_cpu_s': statistics.median(cpu),
          'final_loss': loss}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  config = _CONFIG.value
  step, state, batch = create_step(config)
  rng = jax.random.key(config.seed)
  result = {
      'model': config.model, 'batch_size': config.batch_size,
      'image_height': config.image_height, 'image_width': config.image_width,
      'max_label_length': config.max_label_length, 'dtype': config.dtype,
      'backend': config.backend, 'loss': config.loss,
      'optimizer': config.optimizer, 'steps': _STEPS.value,
      'warmup': _WARMUP.value,
      'parameters': int(sum(x.size for x in jax.tree.leaves(state.params))),
  }
  if _PROFILE.value:
    # Profiled before timing: the timed steps donate (consume) the state.
    result['profile'] = step_profile.profile(step, (state, batch, rng),
                                             steps=_STEPS.value)
    print(step_profile.format_table(result['profile']), flush=True)
  result.update(time_steps(step, state, batch, rng, steps=_STEPS.value,
                           warmup=_WARMUP.value))
  result['images_per_s'] = config.batch_size / result['step_s']
  print(json.dumps({k: v for k, v in result.items() if k != 'profile'}),
        flush=True)
  info = machine.machine_info()
  print(json.dumps(info))
  os.makedirs(os.path.dirname(os.path.abspath(_OUTPUT.value)), exist_ok=True)
  with open(_OUTPUT.value, 'w', encoding='utf-8') as f:
    json.dump({'machine': info, 'config': config.to_dict(),
               'results': [result]}, f, indent=2)


if __name__ == '__main__':
  app.run(main)
