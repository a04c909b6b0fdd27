"""Warm start: partial restore of another run's weights."""

import jax
import numpy as np
import pytest

from configs import base
from ocr_jax import models
from ocr_jax.training import train
from ocr_jax.training import warm_start

pytestmark = pytest.mark.usefixtures('fast_compile')


def init(preset, vocab_size, seed):
  model = models.create_model(preset, vocab_size=vocab_size)
  images, widths, decoder_inputs = models.dummy_inputs(32, 64, 6)
  rng = jax.random.key(seed)
  variables = model.init({'params': rng, 'dropout': rng}, images, widths,
                         decoder_inputs, train=False)
  return jax.device_get({'params': variables['params'],
                         'batch_stats': variables.get('batch_stats', {})})


def leaves(tree):
  return {jax.tree_util.keystr(p): np.asarray(x) for p, x in
          jax.tree_util.tree_leaves_with_path(tree)}


def test_weights_file_round_trips(tmp_path):
  source = init('tiny_ctc', 15, seed=1)
  path = str(tmp_path / 'w.msgpack')
  warm_start.save_weights(path, source)
  loaded = warm_start.load_weights(path)
  a, b = leaves(source), leaves(loaded)
  assert a.keys() == b.keys()
  assert all(np.array_equal(a[k], b[k]) for k in a)


def test_another_vocabulary_keeps_only_the_head_fresh(tmp_path):
  source = init('tiny_ctc', 15, seed=1)
  target = init('tiny_ctc', 40, seed=2)
  path = str(tmp_path / 'w.msgpack')
  warm_start.save_weights(path, source)
  merged, report = warm_start.merge(target, warm_start.load_weights(path))
  old, new, out = leaves(source), leaves(target), leaves(merged)
  head = {k for k in out if "'head'" in k}
  assert head and set(report['kept']) == {k for k in head
                                          if "'kernel'" in k or "'bias'" in k}
  for key in out:
    expected = new[key] if key in report['kept'] else old[key]
    np.testing.assert_array_equal(out[key], expected)
  assert report['copied'] == len(out) - len(report['kept'])
  assert sorted(report['unused']) == sorted(report['kept'])


def test_nothing_fitting_is_an_error(tmp_path):
  path = str(tmp_path / 'w.msgpack')
  warm_start.save_weights(path, {'params': {'other': {'w': np.ones(3)}}})
  with pytest.raises(ValueError, match='no weight fits'):
    warm_start.warm_start(init('tiny_ctc', 15, seed=0), path)


def test_missing_source_is_named(tmp_path):
  with pytest.raises(FileNotFoundError, match='nowhere'):
    warm_start.load_weights(str(tmp_path / 'nowhere'))


def test_training_starts_from_the_given_weights(khmer_digits_dir, tmp_path):
  """With a zero learning rate the run ends on exactly the loaded weights."""
  config = base.get_config('tiny')
  config.data_dir = khmer_digits_dir
  config.model, config.loss = 'tiny_ctc', 'ctc'
  config.num_epochs, config.steps_per_epoch = 1, 2
  config.learning_rate, config.weight_decay = 0.0, 0.0
  source = init('tiny_ctc', 15, seed=7)
  path = str(tmp_path / 'w.msgpack')
  warm_start.save_weights(path, source)
  config.init_from = path
  state = train.train_and_evaluate(config, str(tmp_path / 'run'))
  got = leaves({'params': jax.device_get(state.params)})
  want = leaves({'params': source['params']})
  assert got.keys() == want.keys()
  for key in got:
    np.testing.assert_array_equal(got[key], want[key])
