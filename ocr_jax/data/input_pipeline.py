"""tf.data input pipeline: per-process split, decode, fix height, pad width.

Batches are dicts of numpy arrays (B = per-process batch size):
  image         float32 [B, H, W, 3], standardized with the ImageNet mean
                and std (`preprocess`); columns at or after `width` (and
                padded rows) are exactly 0.
  width         int32 [B], true image width in pixels before padding.
  labels        int32 [B, max_label_length + 1]: char ids, EOS, then PAD.
  label_length  int32 [B], characters in the label (EOS excluded).
  _mask         bool [B], True for real examples (always True in training).

Images keep their aspect ratio: they are resized to `config.image_height`
and padded on the right to exactly `config.image_width` (one static shape,
so the model compiles once). An image wider than `config.image_width` after
resizing is squeezed horizontally to fit. The resize and the standardization
are reading's (`ocr_jax.data.preprocess`): the same Pillow code fits each
image, and the mean/std step repeats `preprocess.standardize` in tf ops,
after augmentation.

Training (`create_train_iterator`): this process's slice of 'train'
(`tfds.split_for_jax_process`), decoded once and cached in memory when it
fits in MAX_DECODED_CACHE_BYTES, shuffled, repeated, augmented on the fly
when config.augment (`augment.py`: JPEG per example, the rest per batch),
batched by config.batch_size // process_count with drop_remainder.
Evaluation (`create_eval_dataset`): every example once, the last batch
padded with zero rows whose `_mask` is False.

Labels are encoded with `charset`; a character outside config.vocabulary,
or a label longer than config.max_label_length, stops the pipeline with an
error naming the character (U+XXXX) and the sample (its tfds_id).

`ensure_built` builds a missing dataset in place (nothing is downloaded).

Config fields read: dataset, corpus_path, vocabulary, image_height,
image_width, max_label_length, batch_size, eval_batch_size, augment,
shuffle_buffer. For khmer_text, corpus_path None means the shipped corpus
and '' the syllable generator (`khmer_corpus.resolve_corpus`).
"""

import math
from collections.abc import Iterable, Iterator

import jax
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from ocr_jax.data import augment
from ocr_jax.data import khmer_corpus
from ocr_jax.data import preprocess
from ocr_jax.text import charset
# Importing the package registers the TFDS builders with tfds.builder.
import ocr_jax.data.datasets  # noqa: F401  pylint: disable=unused-import

# Training data up to this size is cached decoded (else as PNG bytes).
MAX_DECODED_CACHE_BYTES = 512 * 2**20


def _builder_kwargs(config) -> dict[str, object]:
  if config.dataset.split('/')[0] == 'khmer_text':
    return {'corpus_path': config.get('corpus_path')}
  return {}


def get_builder(config, data_dir: str | None = None):
  """The TFDS builder of `config.dataset` (with the corpus for khmer_text)."""
  return tfds.builder(config.dataset, data_dir=data_dir,
                      **_builder_kwargs(config))


def ensure_built(config, data_dir: str | None = None):
  """Builds `config.dataset` into data_dir unless it is there; no downloads.

  Raises:
    ValueError: the prepared khmer_text data came from another corpus.

  Returns:
    The prepared builder.
  """
  builder = get_builder(config, data_dir)
  if not builder.is_prepared():
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  if 'corpus_path' in _builder_kwargs(config):
    wanted = khmer_corpus.corpus_sha1(config.get('corpus_path'))
    found = builder.info.metadata.get('corpus_sha1')
    if found != wanted:
      raise ValueError(
          f'{config.dataset} in {builder.data_dir} was built from a '
          f'different corpus (sha1 {found!r}, config gives {wanted!r}); '
          'use another data_dir or delete that one.')
  return builder


def _label_table(vocab: charset.Vocabulary) -> tf.lookup.StaticHashTable:
  keys = tf.constant([ord(c) for c in vocab.chars], tf.int32)
  values = tf.range(charset.NUM_SPECIAL, vocab.size, dtype=tf.int32)
  return tf.lookup.StaticHashTable(
      tf.lookup.KeyValueTensorInitializer(keys, values), default_value=-1)


def _label_error(vocab, max_length):
  """A numpy function that raises the error explaining a bad label."""
  def fail(text: bytes, sample: bytes) -> np.int32:
    text, sample = text.decode('utf-8'), sample.decode('utf-8')
    ids = vocab.encode(text, sample=sample)  # Raises OutOfVocabularyError.
    raise ValueError(f'label {text!r} of sample {sample} has {len(ids)} '
                     f'characters, more than max_label_length {max_length}')
  return fail


def encode_label(text, sample, table, vocab, max_length):
  """Text -> (labels int32 [max_length + 1], length int32).

  An unknown character or a label longer than max_length fails the input
  pipeline with the charset error naming the character and the sample.
  """
  ids = table.lookup(tf.strings.unicode_decode(text, 'UTF-8'))
  length = tf.size(ids)
  valid = tf.logical_and(tf.reduce_all(ids >= 0), length <= max_length)
  check = tf.cond(
      valid, lambda: tf.constant(0, tf.int32),
      lambda: tf.numpy_function(_label_error(vocab, max_length),
                                [text, sample], tf.int32, stateful=True))
  with tf.control_dependencies([check]):
    labels = tf.concat([ids, [charset.EOS_ID]], axis=0)
  labels = tf.pad(labels, [[0, max_length - length]],
                  constant_values=charset.PAD_ID)
  return tf.ensure_shape(labels, [max_length + 1]), length


def _fit(image: np.ndarray, height: int,
         max_width: int) -> tuple[np.ndarray, np.int32]:
  """`preprocess.fit_to_canvas` (variable width), for tf.numpy_function."""
  canvas, width = preprocess.fit_to_canvas(image, height, max_width,
                                           variable_width=True)
  return canvas, np.int32(width)


def _decode_and_fit(encoded, height: int, max_width: int):
  """`decode_image` plus the stored image's [height, width] (int32 [2])."""
  image = tf.io.decode_png(encoded, channels=3)
  shape = tf.shape(image)[:2]
  # Reading's own resize (Pillow), so that training and reading agree.
  # Training data up to MAX_DECODED_CACHE_BYTES is cached decoded, so it
  # pays this once per example.
  image, width = tf.numpy_function(
      lambda pixels: _fit(pixels, height, max_width), [image],
      (tf.uint8, tf.int32), stateful=False)
  return (tf.ensure_shape(image, [height, max_width, 3]),
          tf.ensure_shape(width, []), shape)


def decode_image(encoded, height: int, max_width: int):
  """PNG bytes -> (uint8 [height, max_width, 3], true width int32).

  `preprocess.fit_to_canvas` with variable width: resizes to `height`
  keeping the aspect (squeezing images wider than max_width), then pads to
  max_width by repeating the last column, so augmentation sees background
  there; `standardize_batch` zeroes it.
  """
  image, width, _ = _decode_and_fit(encoded, height, max_width)
  return image, width


def _fit_box(box, stored_shape, height: int, width):
  """Scales a stored image's ink box [x0, y0, x1, y1) to the fitted image."""
  stored = tf.cast(stored_shape, tf.float32)
  sx = tf.cast(width, tf.float32) / stored[1]
  sy = height / stored[0]
  return tf.cast(box, tf.float32) * tf.stack([sx, sy, sx, sy])


def to_unit_range(images):
  """uint8 -> float32 x / 255: the first half of `preprocess.standardize`."""
  return tf.cast(images, tf.float32) / 255.0


def standardize_batch(images, widths):
  """float32 [B, H, W, 3] in [0, 1] -> standardized, exactly 0 past widths.

  The second half of `preprocess.standardize`, (x - PIXEL_MEAN) *
  PIXEL_STD_INVERSE in the same order, so that without augmentation a batch
  equals reading's `preprocess.prepare` bit for bit
  (tests/preprocess_test.py).
  """
  columns = tf.range(tf.shape(images)[2])
  keep = tf.cast(columns[None, :] < widths[:, None], images.dtype)
  # The column mask rides on the small [B, 1, W, 3] scale (cheaper than a
  # select over the batch); + 0.0 turns the -0.0 of masked negatives to 0.
  scale = keep[:, None, :, None] * tf.constant(preprocess.PIXEL_STD_INVERSE)
  return (images - tf.constant(preprocess.PIXEL_MEAN)) * scale + 0.0


def _example_fn(config, vocab, table, has_box: bool):
  """A tf.data map fn: raw example -> per-example dict (uint8 image).

  `text_box` (float32 [4], the ink box in the fitted image, or the whole
  image when the dataset stores none) only feeds augmentation;
  `_finish_batch` drops it.
  """
  def fn(example):
    image, width, stored_shape = _decode_and_fit(
        example['image'], config.image_height, config.image_width)
    if has_box:
      box = example['text_box']
    else:
      box = tf.stack([0, 0, stored_shape[1], stored_shape[0]])
    labels, length = encode_label(example['text'], example['tfds_id'],
                                  table, vocab, config.max_label_length)
    return {'image': image, 'width': width, 'labels': labels,
            'label_length': length, '_mask': tf.constant(True),
            'text_box': _fit_box(box, stored_shape, config.image_height,
                                 width)}
  return fn


def _finish_batch(batch, augment_seed=None, noise_bank=None):
  """uint8 batch -> float, optionally augmented, standardized and masked."""
  batch = dict(batch)
  boxes = batch.pop('text_box')
  images = to_unit_range(batch['image'])
  if augment_seed is not None:
    images = augment.augment_batch(images, batch['width'], augment_seed,
                                   noise_bank, boxes)
  return dict(batch, image=standardize_batch(images, batch['width']))


def _has_box(builder) -> bool:
  return 'text_box' in builder.info.features


def _read_split(builder, split, *, shuffle_files, seed=None):
  """The encoded examples of this process's slice of `split`."""
  read_config = tfds.ReadConfig(shuffle_seed=seed, add_tfds_id=True)
  return builder.as_dataset(
      split=tfds.split_for_jax_process(split), shuffle_files=shuffle_files,
      read_config=read_config,
      decoders={'image': tfds.decode.SkipDecoding()})


def _decoded_bytes(builder, config, split: str) -> int:
  """Memory that this process's decoded, padded examples would take."""
  local = builder.info.splits[tfds.split_for_jax_process(split)]
  return (local.num_examples * config.image_height * config.image_width * 3)


def _train_examples(builder, config, example_fn, seed: int):
  """Shuffled, repeated per-example dicts of this process's train slice."""
  ds = _read_split(builder, 'train', shuffle_files=True, seed=seed)
  if _decoded_bytes(builder, config, 'train') <= MAX_DECODED_CACHE_BYTES:
    # Kept decoded, padded and encoded: later epochs only augment.
    ds = ds.map(example_fn, num_parallel_calls=tf.data.AUTOTUNE).cache()
    return ds.shuffle(config.shuffle_buffer, seed=seed,
                      reshuffle_each_iteration=True).repeat()
  ds = ds.cache().shuffle(config.shuffle_buffer, seed=seed,
                          reshuffle_each_iteration=True).repeat()
  return ds.map(example_fn, num_parallel_calls=tf.data.AUTOTUNE)


def _augmented_batches(ds, config, seed: int, batch_size: int):
  """JPEG per example, then batch, then batched augmentation + standardizing.

  Seeds are folded from (seed, process index) and the element or batch
  index, so the stream is deterministic and differs between processes.
  """
  base_seed = tf.constant([seed, jax.process_index()], tf.int64)
  ds = ds.enumerate().map(
      lambda i, ex: dict(ex, image=augment.jpeg_example(
          ex['image'], tf.random.experimental.stateless_fold_in(
              base_seed, i))),
      num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.batch(batch_size, drop_remainder=True)
  # A separate salt keeps the batch seeds apart from the example seeds.
  batch_seed = tf.random.experimental.stateless_fold_in(base_seed, -1)
  noise_bank = augment.make_noise_bank(
      [seed, -2 - jax.process_index()], config.image_height,
      config.image_width)
  return ds.enumerate().map(
      lambda i, b: _finish_batch(
          b, tf.random.experimental.stateless_fold_in(batch_seed, i),
          noise_bank),
      num_parallel_calls=tf.data.AUTOTUNE)


def create_train_iterator(config, *, data_dir: str | None = None,
                          seed: int = 0) -> Iterator[dict[str, np.ndarray]]:
  """An infinite iterator of this process's training batches.

  Args:
    config: see the module docstring.
    data_dir: TFDS data dir (built here if missing).
    seed: shuffling and augmentation seed.

  Returns:
    Iterator of batch dicts, batch size config.batch_size // process_count.
  """
  batch_size = config.batch_size // jax.process_count()
  if batch_size < 1:
    raise ValueError(f'batch_size {config.batch_size} is smaller than the '
                     f'process count {jax.process_count()}')
  vocab = charset.get_vocabulary(config.vocabulary)
  builder = ensure_built(config, data_dir)
  example_fn = _example_fn(config, vocab, _label_table(vocab),
                           _has_box(builder))
  ds = _train_examples(builder, config, example_fn, seed)
  if config.augment:
    ds = _augmented_batches(ds, config, seed, batch_size)
  else:
    ds = ds.batch(batch_size, drop_remainder=True)
    ds = ds.map(_finish_batch, num_parallel_calls=tf.data.AUTOTUNE)
  return ds.prefetch(tf.data.AUTOTUNE).as_numpy_iterator()


class NumpyIterable:
  """Re-iterable numpy view of a tf.data.Dataset (a fresh pass per iter)."""

  def __init__(self, dataset: tf.data.Dataset, num_batches: int):
    self.dataset = dataset
    self.num_batches = num_batches

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
    return self.dataset.as_numpy_iterator()

  def __len__(self) -> int:
    return self.num_batches


def _padding_example(config) -> dict[str, tf.Tensor]:
  return {
      'image': tf.zeros([config.image_height, config.image_width, 3],
                        tf.uint8),
      'width': tf.constant(0, tf.int32),
      'labels': tf.zeros([config.max_label_length + 1], tf.int32),
      'label_length': tf.constant(0, tf.int32),
      '_mask': tf.constant(False),
      'text_box': tf.zeros([4], tf.float32),
  }


def create_eval_dataset(config, split: str, *,
                        data_dir: str | None = None
                        ) -> Iterable[dict[str, np.ndarray]]:
  """This process's batches of `split`, every example exactly once.

  The last batch is padded with zero examples whose `_mask` is False. Every
  process yields the same number of batches (so collective ops line up),
  ceil(ceil(N / process_count) / batch), batch = eval_batch_size //
  process_count. No augmentation.
  """
  batch_size = config.eval_batch_size // jax.process_count()
  if batch_size < 1:
    raise ValueError(f'eval_batch_size {config.eval_batch_size} is smaller '
                     f'than the process count {jax.process_count()}')
  vocab = charset.get_vocabulary(config.vocabulary)
  builder = ensure_built(config, data_dir)
  example_fn = _example_fn(config, vocab, _label_table(vocab),
                           _has_box(builder))
  total = builder.info.splits[split].num_examples
  local = builder.info.splits[tfds.split_for_jax_process(split)].num_examples
  num_batches = math.ceil(math.ceil(total / jax.process_count()) /
                          batch_size)
  ds = _read_split(builder, split, shuffle_files=False)
  ds = ds.map(example_fn, num_parallel_calls=tf.data.AUTOTUNE)
  padding = tf.data.Dataset.from_tensors(_padding_example(config))
  ds = ds.concatenate(padding.repeat(num_batches * batch_size - local))
  ds = ds.batch(batch_size, drop_remainder=True)
  ds = ds.map(_finish_batch, num_parallel_calls=tf.data.AUTOTUNE)
  return NumpyIterable(ds.prefetch(tf.data.AUTOTUNE), num_batches)


def load_split_examples(config, split: str,
                        data_dir: str | None = None) -> list[dict]:
  """All raw examples of a split as numpy dicts (decoded image, bytes text).

  For tests and tools; reads the whole split into memory.
  """
  builder = ensure_built(config, data_dir)
  return list(tfds.as_numpy(builder.as_dataset(split=split,
                                               shuffle_files=False)))
