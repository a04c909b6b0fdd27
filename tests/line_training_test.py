"""Line training: a tiny line model learns, and train.py runs synth_lines."""

import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import khmer_lines_ctc
from ocr_jax import models
from ocr_jax.data import line_pipeline
from ocr_jax.data import render
from ocr_jax.data import synth_lines
from ocr_jax.models import decode
from ocr_jax.text import charset
from ocr_jax.training import metrics
from ocr_jax.training import optim
from ocr_jax.training import train

pytestmark = pytest.mark.usefixtures('fast_compile')

# Four short lines, each always drawn the same way.
TEXTS = ('១២៣', 'កខគ', 'ABC ៤៥', 'ចង ៦')


def fixed_line(seed, index, split, *, held_out_fonts=False, tier=None):
  """A `synth_lines.make_sample` stand-in drawing TEXTS[index % 4]."""
  del seed, split, held_out_fonts
  text = TEXTS[index % len(TEXTS)]
  face = render.khmeros_fonts()[0]
  image = render.render_text(text, face.path,
                             np.random.default_rng(index % len(TEXTS)),
                             height=32)
  return synth_lines.LineSample(image, text, face.path, face.family,
                                tier or 'clean')


def line_config():
  config = khmer_lines_ctc.get_config('tiny')
  config.image_height = 32
  config.image_width = config.bucket_step = 256
  config.max_label_length = 8
  config.batch_size = 8
  # One batch per chunk: every batch holds the four lines twice, so that
  # BatchNorm's batch statistics match its running averages.
  config.bucket_chunk_batches = 1
  config.eval_batch_size = 8
  config.learning_rate = 1e-2
  config.warmup_epochs = 0.0
  config.dropout_rate = 0.0
  return config


def test_tiny_line_model_learns_fixed_lines():
  config = line_config()
  vocab = charset.get_vocabulary(config.vocabulary)
  model = models.create_model(config.model, vocab_size=vocab.size,
                              dropout_rate=0.0)
  learning_rate_fn = optim.create_learning_rate_fn(config, 100)
  state = train.create_train_state(config, model, jax.random.key(0),
                                   learning_rate_fn)
  step = jax.jit(functools.partial(
      train.train_step, model=model, config=config, kind='ctc',
      learning_rate_fn=learning_rate_fn))
  predict = jax.jit(decode.make_predict_fn(model, 'ctc',
                                           config.max_label_length, 1))
  lines = line_pipeline.TrainStream(config, sample_fn=fixed_line)
  probes = [lines.batch(0)]
  assert {vocab.decode(row) for row in probes[0]['labels']} == set(TEXTS)

  def cer(state):
    scores = metrics.OcrScores()
    for probe in probes:
      ids = predict({'params': state.params,
                     'batch_stats': state.batch_stats},
                    probe['image'], probe['width'])[0]
      scores.update([vocab.decode(row) for row in probe['labels']],
                    [vocab.decode(row) for row in np.asarray(ids)])
    return scores.result()['cer']

  before = cer(state)
  rng = jax.random.key(1)
  for k in range(150):
    state, step_metrics = step(state, lines.batch(k), rng)
  after = cer(state)
  assert np.isfinite(float(step_metrics['loss']))
  assert before > 0.9
  assert after < 0.1, (before, after)


def test_mix_scores_pools_the_counts():
  a, b = metrics.OcrScores(), metrics.OcrScores()
  a.update(['abcd', 'ab'], ['abcd', 'b'])  # 1 error in 6 chars, 1 exact.
  b.update(['xyz'], ['xy'])  # 1 error in 3 chars.
  both = metrics.OcrScores()
  both.update(['abcd', 'ab', 'xyz'], ['abcd', 'b', 'xy'])
  mixed = train.mix_scores([a.result(), b.result()])
  expected = both.result()
  assert mixed['cer'] == pytest.approx(2 / 9)
  assert mixed['seq_accuracy'] == pytest.approx(1 / 3)
  for key in ('cer', 'char_accuracy', 'seq_accuracy', 'mean_ned', 'n'):
    assert mixed[key] == pytest.approx(expected[key])
  assert mixed['by_length'] == expected['by_length']


def test_synth_lines_config_trains_end_to_end(tmp_path):
  config = khmer_lines_ctc.get_config('tiny')
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(config, workdir)
  with open(os.path.join(workdir, 'results.json')) as f:
    results = json.load(f)
  assert results['epochs_run'] == 2
  validation = results['best_validation']
  names = line_pipeline.eval_set_names(config)
  assert sorted(validation['sets']) == sorted(names)
  assert validation['n'] == len(names) * config.eval_lines_per_set
  for name in names:
    assert validation['sets'][name]['n'] == config.eval_lines_per_set
    assert f'{name}_cer' in validation
  history = results['history']
  assert [record['step'] for record in history] == [4, 8]
  assert 'val_long_heldout_cer' in history[-1]


def test_synth_lines_needs_steps_per_epoch():
  config = khmer_lines_ctc.get_config('tiny')
  config.steps_per_epoch = -1
  with pytest.raises(ValueError, match='steps_per_epoch'):
    train.validate_config(config)


@pytest.mark.parametrize('preset', ['line_ctc', 'line_ctc_small',
                                    'tiny_line_ctc'])
def test_line_presets_give_a_frame_per_4_px(preset):
  vocab = charset.get_vocabulary('khmer')
  model = models.create_model(preset, vocab_size=vocab.size)
  inputs = models.dummy_inputs(48, 1536, 192, batch_size=2)
  widths = jnp.array([1536, 130], jnp.int32)
  variables = jax.eval_shape(functools.partial(model.init, train=False),
                             {'params': jax.random.key(0)}, *inputs)
  logits, paddings = jax.eval_shape(
      functools.partial(model.apply, train=False), variables, inputs[0],
      widths, inputs[2])
  # 384 frames: room for 140 characters with blanks between repeats.
  assert logits.shape == (2, 1536 // 4, vocab.size)
  assert paddings.shape == (2, 384)
  params = sum(x.size for x in jax.tree.leaves(variables['params']))
  assert params < 20e6  # int8: at most the 20 MB.
