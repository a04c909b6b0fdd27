"""Tests of ocr_jax.data.input_pipeline and ocr_jax.data.augment."""

import collections

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from ocr_jax.data import augment
from ocr_jax.text import charset
from ocr_jax.data import input_pipeline
from ocr_jax.data import preprocess
from ocr_jax.data.datasets import khmer_digits


def _config(**overrides):
  config = ml_collections.ConfigDict({
      'dataset': 'khmer_digits', 'corpus_path': None, 'vocabulary': 'digits',
      'image_height': 64, 'image_width': 128, 'max_label_length': 8,
      'batch_size': 16, 'eval_batch_size': 16, 'augment': False,
      'shuffle_buffer': 64})
  config.update(overrides)
  return config


def _text_config(corpus_path, **overrides):
  fields = {'dataset': 'khmer_text/lines', 'corpus_path': corpus_path,
            'vocabulary': 'khmer', 'image_width': 512,
            'max_label_length': 64}
  return _config(**{**fields, **overrides})


def _raw_texts(config, split, data_dir):
  examples = input_pipeline.load_split_examples(config, split, data_dir)
  return [e['text'].decode() for e in examples]


def _check_batch(batch, config, batch_size):
  length = config.max_label_length
  assert set(batch) == {'image', 'width', 'labels', 'label_length', '_mask'}
  assert batch['image'].shape == (batch_size, config.image_height,
                                  config.image_width, 3)
  assert batch['image'].dtype == np.float32
  assert batch['width'].dtype == np.int32
  assert batch['labels'].shape == (batch_size, length + 1)
  assert batch['labels'].dtype == np.int32
  assert batch['label_length'].dtype == np.int32
  assert batch['_mask'].dtype == np.bool_
  for i in np.nonzero(batch['_mask'])[0]:
    n, width = batch['label_length'][i], batch['width'][i]
    assert batch['labels'][i, n] == charset.EOS_ID
    assert (batch['labels'][i, :n] >= charset.NUM_SPECIAL).all()
    assert (batch['labels'][i, n + 1:] == charset.PAD_ID).all()
    assert 0 < width <= config.image_width
    assert (batch['image'][i, :, width:] == 0).all()
    assert np.abs(batch['image'][i, :, :width]).max() > 0.5


def test_train_batches(khmer_digits_dir):
  config = _config()
  iterator = input_pipeline.create_train_iterator(
      config, data_dir=khmer_digits_dir)
  vocab = charset.get_vocabulary('digits')
  texts = set(_raw_texts(config, 'train', khmer_digits_dir))
  for _ in range(8):  # 128 examples: the 96-example split repeats.
    batch = next(iterator)
    _check_batch(batch, config, 16)
    assert batch['_mask'].all()
    assert (batch['width'] == 128).all()
    for labels, n in zip(batch['labels'], batch['label_length']):
      assert len(vocab.decode(labels)) == n
      assert vocab.decode(labels) in texts


def test_train_images_standardized(khmer_digits_dir):
  batch = next(input_pipeline.create_train_iterator(
      _config(), data_dir=khmer_digits_dir))
  pixels = (batch['image'] * preprocess.PIXEL_STD + preprocess.PIXEL_MEAN)
  # Undoing the ImageNet mean/std gives back pixels in [0, 1] (no
  # augmentation here), and each image is exactly reading's standardization
  # of its uint8 pixels.
  assert -1e-5 < pixels.min() and pixels.max() < 1 + 1e-5
  assert pixels.std() > 0.1
  levels = preprocess.to_uint8(batch['image'])
  np.testing.assert_array_equal(preprocess.standardize(levels),
                                batch['image'])


def test_augmented_train_batches(khmer_digits_dir):
  config = _config(augment=True)
  first = next(input_pipeline.create_train_iterator(
      config, data_dir=khmer_digits_dir, seed=3))
  again = next(input_pipeline.create_train_iterator(
      config, data_dir=khmer_digits_dir, seed=3))
  plain = next(input_pipeline.create_train_iterator(
      _config(), data_dir=khmer_digits_dir, seed=3))
  _check_batch(first, config, 16)
  assert np.isfinite(first['image']).all()
  np.testing.assert_array_equal(first['image'], again['image'])
  np.testing.assert_array_equal(first['labels'], plain['labels'])
  assert not np.allclose(first['image'], plain['image'])


def test_eval_pads_last_batch_and_sees_every_example(khmer_digits_dir):
  config = _config(eval_batch_size=16)
  dataset = input_pipeline.create_eval_dataset(config, 'validation',
                                               data_dir=khmer_digits_dir)
  vocab = charset.get_vocabulary('digits')
  for _ in range(2):  # Re-iterable: a second pass gives the same batches.
    batches = list(dataset)
    assert len(batches) == len(dataset) == 3  # ceil(37 / 16)
    seen = []
    for batch in batches:
      _check_batch(batch, config, 16)
      for i in np.nonzero(batch['_mask'])[0]:
        seen.append(vocab.decode(batch['labels'][i]))
      padded = ~batch['_mask']
      assert (batch['image'][padded] == 0).all()
      assert (batch['labels'][padded] == 0).all()
      assert (batch['width'][padded] == 0).all()
      assert (batch['label_length'][padded] == 0).all()
    assert sum(int(b['_mask'].sum()) for b in batches) == 37
    assert not batches[-1]['_mask'][5:].any()
    expected = _raw_texts(config, 'validation', khmer_digits_dir)
    assert collections.Counter(seen) == collections.Counter(expected)


def test_variable_width_text(khmer_text_dir, corpus_path):
  config = _text_config(corpus_path, eval_batch_size=8)
  batches = list(input_pipeline.create_eval_dataset(
      config, 'test', data_dir=khmer_text_dir))
  assert sum(int(b['_mask'].sum()) for b in batches) == 21
  examples = input_pipeline.load_split_examples(config, 'test',
                                                khmer_text_dir)
  true_widths = sorted(min(512, int(e['width'])) for e in examples)
  widths = sorted(w for b in batches for w in b['width'][b['_mask']])
  assert widths == true_widths
  assert len(set(widths)) > 3
  for batch in batches:
    _check_batch(batch, config, 8)


def test_text_resized_to_config_height(khmer_text_dir, corpus_path):
  config = _text_config(corpus_path, image_height=32, image_width=256,
                        augment=True)
  batch = next(input_pipeline.create_train_iterator(
      config, data_dir=khmer_text_dir))
  _check_batch(batch, config, 16)


def test_unknown_character_fails_naming_it(khmer_text_dir, corpus_path):
  config = _text_config(corpus_path, vocabulary='digits')
  with pytest.raises(tf.errors.OpError) as error:
    next(iter(input_pipeline.create_eval_dataset(
        config, 'validation', data_dir=khmer_text_dir)))
  message = str(error.value)
  assert 'U+17' in message and 'khmer_text-validation' in message


def test_label_longer_than_max_fails(khmer_text_dir, corpus_path):
  config = _text_config(corpus_path, max_label_length=3)
  with pytest.raises(tf.errors.OpError, match='max_label_length 3'):
    next(input_pipeline.create_train_iterator(config,
                                              data_dir=khmer_text_dir))


def test_corpus_mismatch_is_refused(khmer_text_dir, tmp_path):
  other = tmp_path / 'other.txt'
  other.write_text('\u1780\u17b6\n', encoding='utf-8')
  with pytest.raises(ValueError, match='different corpus'):
    input_pipeline.ensure_built(_text_config(str(other)), khmer_text_dir)


def test_transform_keeps_text_centre_fixed():
  widths = tf.constant([128, 400, 64], tf.int32)
  params = augment.projective_transforms(tf.constant([1, 2]), widths, 64)
  for row, width in zip(params.numpy(), widths.numpy()):
    matrix = np.append(row, 1.0).reshape(3, 3)
    centre = np.array([width / 2, 32, 1.0])
    mapped = matrix @ centre
    np.testing.assert_allclose(mapped[:2] / mapped[2], centre[:2], atol=1e-3)


def test_augment_batch_range_and_determinism():
  images = tf.random.stateless_uniform([8, 64, 128, 3], [0, 1])
  widths = tf.fill([8], 128)
  bank = augment.make_noise_bank([0, 2], 64, 128)
  seed = tf.constant([4, 5])
  out = augment.augment_batch(images, widths, seed, bank).numpy()
  assert out.shape == (8, 64, 128, 3)
  assert out.min() >= 0.0 and out.max() <= 1.0
  np.testing.assert_array_equal(
      out, augment.augment_batch(images, widths, seed, bank).numpy())
  assert abs(float(np.std(bank)) - augment.NOISE_STDDEV) < 1e-3


def test_augmentation_keeps_ink_box_inside():
  # Worst case: the ink fills its whole box (corners included). White
  # images with a black box; after augmentation the outermost rows and
  # columns of the true image must still be background.
  height, width, batch = 64, 256, 64
  rng = np.random.default_rng(0)
  images = np.ones([batch, height, width, 3], np.float32)
  widths = rng.integers(100, width + 1, size=batch).astype(np.int32)
  boxes = np.zeros([batch, 4], np.float32)
  for i, w in enumerate(widths):
    x0 = rng.integers(2, w - 10)
    x1 = rng.integers(x0 + 8, w - 1)
    y0 = rng.integers(2, height - 10)
    y1 = rng.integers(y0 + 8, height - 1)
    boxes[i] = [x0, y0, x1, y1]
    images[i, y0:y1, x0:x1] = 0.0
    images[i, :, w:] = 1.0
  bank = augment.make_noise_bank([0, 3], height, width)
  for seed in range(4):
    out = augment.augment_batch(tf.constant(images), tf.constant(widths),
                                tf.constant([seed, 9]), bank,
                                tf.constant(boxes)).numpy()
    for i, w in enumerate(widths):
      border = np.concatenate([out[i, 0, :w], out[i, -1, :w],
                               out[i, :, 0], out[i, :, w - 1]])
      assert border.min() > 0.5, (seed, i, boxes[i], w)
      # The box is still there (not shrunk away or moved out).
      assert out[i, :, :w].min() < 0.4


def test_builders_store_the_ink_box(khmer_digits_dir, khmer_text_dir,
                                    corpus_path):
  for config, data_dir in ((_config(), khmer_digits_dir),
                           (_text_config(corpus_path), khmer_text_dir)):
    for example in input_pipeline.load_split_examples(
        config, 'validation', data_dir)[:10]:
      x0, y0, x1, y1 = example['text_box']
      height, width = example['image'].shape[:2]
      assert 0 < x0 < x1 < width and 0 < y0 < y1 < height
      # Outside the box there is only background: its rows/columns vary
      # little compared with the inked part.
      image = example['image'].astype(np.float32)
      assert image[:, x0:x1].std() > image[:, :x0].std()


def test_ensure_built_builds_a_missing_dataset(monkeypatch, tmp_path):
  monkeypatch.setattr(khmer_digits, 'SPLIT_SIZES',
                      {'train': 8, 'validation': 4, 'test': 4})
  builder = input_pipeline.ensure_built(_config(), str(tmp_path))
  assert builder.is_prepared()
  assert builder.info.splits['train'].num_examples == 8
  again = input_pipeline.ensure_built(_config(), str(tmp_path))
  assert again.info.splits['validation'].num_examples == 4
