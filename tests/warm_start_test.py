"""Warm start: partial restore of another run's weights."""

import jax
import numpy as np
import pytest

from ocr_jax import models
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
