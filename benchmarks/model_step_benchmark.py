"""Times one jitted training step (forward, backward, Adam) of a preset.

  python benchmarks/model_step_benchmark.py --preset=small --batch_size=32 \
      --conv_impls=auto,native,matmul --dtypes=float32,bfloat16 --parts

For each (conv_impl, dtype) it AOT-compiles the step at the real shapes
(random 64x128 images, full widths, labels of max_length digits + EOS; the
attention models teacher-force max_length + 1 steps), runs it --steps times
after one warm-up (each run started once the shared machine's CPUs are
idle, see conv_benchmark.wait_for_idle_cpu) and reports the median and
minimum seconds per step, the median process CPU seconds, images/s and
compile seconds. With --parts it also times forward + backward of the
backbone alone and of the whole encoder (backbone + projection + sequence
encoder), so the decoder/head + loss + update share is the remainder.
Results go to --output as JSON together with the machine description.
"""

import dataclasses
import functools
import json
import os

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ocr_jax.text import charset
from ocr_jax import models

# Run as a script, so benchmarks/ is on the path.
from conv_benchmark import machine_info  # pylint: disable=g-bad-import-order
from conv_benchmark import time_compiled  # pylint: disable=g-bad-import-order
import step_profile  # pylint: disable=g-bad-import-order

_PRESET = flags.DEFINE_string('preset', 'small', 'Model preset.')
_BATCH = flags.DEFINE_integer('batch_size', 32, 'Batch size.')
_HEIGHT = flags.DEFINE_integer('height', 64, 'Image height.')
_WIDTH = flags.DEFINE_integer('width', 128, 'Image width.')
_VOCAB = flags.DEFINE_integer('vocab_size', 15, 'Output classes.')
_STEPS = flags.DEFINE_integer('steps', 7, 'Timed steps.')
_IMPLS = flags.DEFINE_list('conv_impls', ['auto', 'native', 'matmul'],
                           'Convolution implementations to compare.')
_DTYPES = flags.DEFINE_list('dtypes', ['float32', 'bfloat16'],
                            'Computation dtypes to compare.')
_PARTS = flags.DEFINE_bool('parts', False, 'Also time backbone / encoder.')
_PROFILE = flags.DEFINE_bool(
    'profile', False, 'Also trace the step with jax.profiler and print the '
    'time by model part and pass (benchmarks/step_profile.py).')
_STAGE_STRIDES = flags.DEFINE_string(
    'stage_strides', '', 'Override the backbone stage strides, e.g. '
    '"1,1;2,2;2,1;2,1" (height,width per stage).')
_OUTPUT = flags.DEFINE_string(
    'output', os.path.join(os.path.dirname(__file__), 'results',
                           'model_step.json'), 'JSON output path.')


def fake_batch(rng: np.random.Generator, kind: str, max_length: int) -> dict:
  """Random images, full widths, labels and teacher-forcing inputs."""
  b = _BATCH.value
  lengths = rng.integers(1, max_length + 1, b)
  digits = rng.integers(charset.NUM_SPECIAL, _VOCAB.value, (b, max_length))
  pos = np.arange(max_length + 1)[None, :]
  labels = np.where(pos < lengths[:, None],
                    np.pad(digits, ((0, 0), (0, 1))), charset.PAD_ID)
  labels = np.where(pos == lengths[:, None], charset.EOS_ID, labels)
  if kind == 'ctc':
    labels = np.where(labels == charset.EOS_ID, charset.PAD_ID, labels)
  inputs = np.concatenate(
      [np.full((b, 1), charset.BOS_ID), labels[:, :-1]], axis=1)
  return {
      'image': rng.standard_normal((b, _HEIGHT.value, _WIDTH.value, 3),
                                   np.float32),
      'width': np.full((b,), _WIDTH.value, np.int32),
      'labels': labels.astype(np.int32),
      'decoder_inputs': inputs.astype(np.int32),
  }


def loss_fn(params, batch_stats, batch, rng, *, model, kind):
  """Masked cross-entropy (attention) or CTC; returns (loss, batch_stats)."""
  (logits, paddings), updates = model.apply(
      {'params': params, 'batch_stats': batch_stats}, batch['image'],
      batch['width'], batch['decoder_inputs'], train=True,
      rngs={'dropout': rng}, mutable=['batch_stats'])
  labels = batch['labels']
  mask = (labels != charset.PAD_ID).astype(jnp.float32)
  if kind == 'ctc':
    loss = optax.ctc_loss(logits, paddings, labels, 1.0 - mask,
                          blank_id=charset.BLANK_ID).mean()
  else:
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    loss = jnp.sum(ce * mask) / jnp.sum(mask)
  return loss, updates['batch_stats']


def train_step(state, batch, rng, *, model, kind, tx):
  """One Adam step on (params, batch_stats, opt_state)."""
  params, batch_stats, opt_state = state
  grad_fn = jax.value_and_grad(
      functools.partial(loss_fn, model=model, kind=kind), has_aux=True)
  (loss, batch_stats), grads = grad_fn(params, batch_stats, batch, rng)
  updates, opt_state = tx.update(grads, opt_state, params)
  return (optax.apply_updates(params, updates), batch_stats, opt_state), loss


def part_grad_fn(module, variables_fn):
  """fwd+bwd of `module` w.r.t. its params, cotangent = ones."""
  def fn(params, batch_stats, *inputs):
    def f(p):
      out, _ = module.apply(variables_fn(p, batch_stats), *inputs,
                            train=True, rngs={'dropout': jax.random.key(0)},
                            mutable=['batch_stats'])
      out = out[0] if isinstance(out, tuple) else out
      return jnp.sum(out.astype(jnp.float32))
    return jax.grad(f)(params)
  return fn


def time_parts(model, variables, batch) -> dict:
  """Seconds for fwd+bwd of the backbone and of the whole encoder."""
  params, stats = variables['params']['encoder'], variables['batch_stats']
  stats = stats['encoder']
  encoder = model.encoder
  backbone_fn = part_grad_fn(encoder.backbone, lambda p, s: {
      'params': p['backbone'], 'batch_stats': s['backbone']})
  encoder_fn = part_grad_fn(encoder, lambda p, s: {
      'params': p, 'batch_stats': s})
  backbone = time_compiled(backbone_fn, (params, stats, batch['image']),
                           _STEPS.value)
  whole = time_compiled(encoder_fn,
                        (params, stats, batch['image'], batch['width']),
                        _STEPS.value)
  return {'backbone_median_s': backbone['median_s'],
          'backbone_min_s': backbone['min_s'],
          'encoder_median_s': whole['median_s'],
          'encoder_min_s': whole['min_s']}


def run_one(conv_impl: str, dtype: str) -> dict:
  """Benchmarks one (conv_impl, dtype) pair."""
  spec = models.get_spec(_PRESET.value)
  if _STAGE_STRIDES.value:
    strides = tuple(tuple(int(s) for s in stage.split(','))
                    for stage in _STAGE_STRIDES.value.split(';'))
    spec = dataclasses.replace(spec, stage_strides=strides)
  model = models.build_model(spec, vocab_size=_VOCAB.value,
                             dtype=jnp.dtype(dtype), conv_impl=conv_impl)
  batch = jax.tree.map(jnp.asarray, fake_batch(np.random.default_rng(0),
                                               spec.kind, spec.max_length))
  variables = jax.jit(functools.partial(model.init, train=False))(
      {'params': jax.random.key(0), 'dropout': jax.random.key(1)},
      batch['image'], batch['width'], batch['decoder_inputs'])
  tx = optax.adam(1e-3)
  state = (variables['params'], variables['batch_stats'],
           tx.init(variables['params']))
  step = functools.partial(train_step, model=model, kind=spec.kind, tx=tx)
  timing = time_compiled(step, (state, batch, jax.random.key(2)),
                         _STEPS.value)
  result = {'preset': _PRESET.value, 'batch_size': _BATCH.value,
            'stage_strides': spec.stage_strides,
            'conv_impl': conv_impl, 'dtype': dtype,
            'step_s': timing['median_s'], 'step_min_s': timing['min_s'],
            'step_cpu_s': timing['cpu_s'],
            'images_per_s': _BATCH.value / timing['median_s'],
            'compile_s': timing['compile_s']}
  if _PARTS.value:
    result.update(time_parts(model, variables, batch))
  if _PROFILE.value:
    result['profile'] = step_profile.profile(
        step, (state, batch, jax.random.key(2)), steps=_STEPS.value)
    print(f'{_PRESET.value} {conv_impl} {dtype}:')
    print(step_profile.format_table(result['profile']), flush=True)
  return result


def main(argv):
  del argv
  results = []
  for dtype in _DTYPES.value:
    for conv_impl in _IMPLS.value:
      result = run_one(conv_impl, dtype)
      print(json.dumps(result), flush=True)
      results.append(result)
  os.makedirs(os.path.dirname(_OUTPUT.value) or '.', exist_ok=True)
  with open(_OUTPUT.value, 'w') as f:
    json.dump({'machine': machine_info(), 'image_height': _HEIGHT.value,
               'image_width': _WIDTH.value, 'steps': _STEPS.value,
               'results': results}, f, indent=2)
  print(json.dumps(machine_info()))


if __name__ == '__main__':
  app.run(main)
