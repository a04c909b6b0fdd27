"""Tests of ocr_jax.data.line_pipeline: index-based batches, buckets, eval."""

import collections
import functools

import jax
import ml_collections
import numpy as np
import pytest

from configs import khmer_digits_wide
from ocr_jax import models
from ocr_jax.data import line_pipeline
from ocr_jax.data import preprocess
from ocr_jax.data import synth_lines
from ocr_jax.text import charset
from ocr_jax.training import optim
from ocr_jax.training import train

Sample = collections.namedtuple('Sample', 'image text font family tier')
_ALPHABET = charset.KHMER_DIGITS + 'កខគឃងចឆជឈញ'


def fake_sample(seed, index, split, *, held_out_fonts=False, tier=None):
  """A fast stand-in for `synth_lines.make_sample`: random pixels."""
  rng = np.random.default_rng(
      [seed, index, len(split), int(held_out_fonts), len(tier or '')])
  length = int(rng.integers(1, 12))
  text = ''.join(rng.choice(list(_ALPHABET), length))
  height = int(rng.integers(16, 60))
  width = max(1, int(height * length * rng.uniform(0.3, 1.2)))
  image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
  return Sample(image, text, 'Fake' + str(int(held_out_fonts)),
                'Fake', tier or 'clean')


def make_config(**overrides):
  config = ml_collections.ConfigDict(dict(
      image_height=16, image_width=300, max_label_length=12,
      vocabulary='khmer', batch_size=4, eval_batch_size=8, seed=3,
      data_workers=0, bucket_chunk_batches=3, eval_lines_per_set=11,
      eval_tiers=('clean', 'long'), eval_seed=1))
  config.update(overrides)
  return config


def stream(config=None, **kwargs):
  return line_pipeline.TrainStream(config or make_config(),
                                   sample_fn=fake_sample, **kwargs)


def assert_batches_equal(a, b):
  assert a.keys() == b.keys()
  for key in a:
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_bucket_widths():
  assert line_pipeline.bucket_widths(300, 128) == (128, 256, 300)
  assert line_pipeline.bucket_widths(256, 128) == (128, 256)
  assert line_pipeline.bucket_widths(1536, 512) == (512, 1024, 1536)
  buckets = line_pipeline.bucket_widths(1536, 128)
  assert len(buckets) == 12 and buckets[-1] == 1536
  assert line_pipeline.bucket_for(1, buckets) == 128
  assert line_pipeline.bucket_for(129, buckets) == 256
  assert line_pipeline.bucket_for(1536, buckets) == 1536


def test_batch_is_a_function_of_seed_and_step():
  first = stream()
  in_order = [first.batch(k) for k in range(8)]
  # Another stream, read out of order and from the middle (a restart).
  second = stream()
  for k in (7, 2, 5, 0, 6, 1, 4, 3):
    assert_batches_equal(second.batch(k), in_order[k])
  resumed = second.iterate(start_step=5)
  for k in range(5, 8):
    assert_batches_equal(next(resumed), in_order[k])
  # Another seed gives other batches.
  other = stream(make_config(seed=4))
  assert not np.array_equal(other.batch(0)['labels'], in_order[0]['labels'])


def expected_lines(config, indices, split='train', held_out=False,
                   tier=None):
  """(width, labels, sample) of each index, computed without the pipeline."""
  vocab = charset.get_vocabulary(config.vocabulary)
  result = {}
  for index in indices:
    sample = fake_sample(config.seed if split == 'train' else
                         config.eval_seed, index, split,
                         held_out_fonts=held_out, tier=tier)
    ids = vocab.encode(sample.text)
    _, width = preprocess.prepare(sample.image, config.image_height,
                                  config.image_width, variable_width=True)
    labels = tuple(charset.pad_labels(ids, config.max_label_length))
    result[index] = (width, labels, sample)
  return result


def test_bucketing_keeps_true_width_length_and_pixels():
  config = make_config()
  lines = stream(config)
  chunk_size = config.bucket_chunk_batches * config.batch_size
  # Two chunks: every sample index 0..2 * chunk_size - 1 exactly once.
  expected = expected_lines(config, range(2 * chunk_size))
  by_labels = collections.defaultdict(list)
  for width, labels, sample in expected.values():
    by_labels[labels, width].append(sample)
  seen = 0
  for k in range(2 * config.bucket_chunk_batches):
    batch = lines.batch(k)
    width = batch['image'].shape[2]
    assert width in (128, 256, 300)
    assert batch['image'].shape[:2] == (config.batch_size,
                                        config.image_height)
    assert batch['_mask'].all()
    # The narrowest bucket holding the widest row.
    assert width == line_pipeline.bucket_for(batch['width'].max(),
                                             (128, 256, 300))
    for row in range(config.batch_size):
      key = (tuple(batch['labels'][row]), int(batch['width'][row]))
      assert key in by_labels, 'a row matches no sample'
      sample = by_labels[key].pop()
      assert batch['label_length'][row] == len(sample.text)
      assert batch['labels'][row][len(sample.text)] == charset.EOS_ID
      # Reading's preprocessing at the batch's width, bit for bit.
      prepared, _ = preprocess.prepare(sample.image, config.image_height,
                                       width, variable_width=True)
      np.testing.assert_array_equal(batch['image'][row], prepared)
      seen += 1
  assert seen == 2 * chunk_size
  assert not any(by_labels.values())


def test_batches_of_a_chunk_are_sorted_by_width():
  config = make_config(bucket_chunk_batches=4)
  lines = stream(config)
  batches = [lines.batch(k) for k in range(4)]
  spans = sorted((b['width'].min(), b['width'].max()) for b in batches)
  for (_, high), (low, _) in zip(spans, spans[1:]):
    assert high <= low


def test_processes_split_a_chunk():
  config = make_config()
  single = stream(config)
  halves = [stream(config, process_index=p, process_count=2)
            for p in range(2)]
  requests = single.chunk_requests(1)
  assert sorted(halves[0].chunk_requests(1) + halves[1].chunk_requests(1)) \
      == requests
  for half in halves:
    assert half.batch(0)['image'].shape[0] == config.batch_size // 2


def test_workers_give_the_same_batches():
  config = make_config(data_workers=1)
  pooled = stream(config)
  local = stream(make_config(data_workers=0))
  try:
    for k in (0, 1, 4):
      assert_batches_equal(pooled.batch(k), local.batch(k))
  finally:
    pooled.close()


def test_bad_label_names_the_sample():
  with pytest.raises(ValueError, match='train sample'):
    stream(make_config(max_label_length=1)).batch(0)


@pytest.mark.parametrize('process_count', [1, 2])
def test_eval_sets_cover_every_line_once(process_count):
  config = make_config()
  per_process = [line_pipeline.create_eval_sets(
      config, 'validation', sample_fn=fake_sample, process_index=p,
      process_count=process_count) for p in range(process_count)]
  assert list(per_process[0]) == ['clean', 'clean_heldout', 'long',
                                  'long_heldout']
  for name in per_process[0]:
    tier, held_out = name.removesuffix('_heldout'), name.endswith('heldout')
    expected = expected_lines(config, range(config.eval_lines_per_set),
                              'validation', held_out, tier)
    rows = []
    batches = [list(sets[name]) for sets in per_process]
    # Every process yields as many batches, of the same shapes.
    assert len({len(b) for b in batches}) == 1
    assert len(batches[0]) == len(per_process[0][name]) == 2  # 11 / 8.
    for step in zip(*batches):
      assert len({b['image'].shape for b in step}) == 1
      for batch in step:
        assert batch['image'].shape[0] == config.eval_batch_size // (
            process_count)
        for row in range(batch['image'].shape[0]):
          if not batch['_mask'][row]:
            assert batch['width'][row] == 0
            assert not batch['image'][row].any()
            continue
          rows.append((tuple(batch['labels'][row]),
                       int(batch['width'][row])))
    assert sorted(rows) == sorted((labels, width) for width, labels, _ in
                                  expected.values())
    # Fixed: a second pass gives the same batches.
    assert_batches_equal(next(iter(per_process[0][name])), batches[0][0])


def fake_digits(seed, index, split, *, held_out_fonts=False, tier=None,
                content='text'):
  """A stand-in that draws digit strings only when asked for them."""
  sample = fake_sample(seed, index, split, held_out_fonts=held_out_fonts,
                       tier=tier)
  if content != 'digits':
    raise ValueError(f'asked for {content!r}')
  rng = np.random.default_rng([seed, index])
  text = ''.join(rng.choice(list(charset.KHMER_DIGITS), len(sample.text)))
  return sample._replace(text=text)


def test_synth_content_reaches_training_and_eval_samples():
  config = make_config(synth_content='digits', vocabulary='digits',
                       eval_lines_per_set=3)
  digits = charset.get_vocabulary('digits')
  lines = line_pipeline.TrainStream(config, sample_fn=fake_digits)
  # The first chunk's batches hold samples 0 .. C * B - 1.
  count = config.bucket_chunk_batches * config.batch_size
  texts = [digits.decode(row) for k in range(config.bucket_chunk_batches)
           for row in lines.batch(k)['labels']]
  assert sorted(texts) == sorted(
      fake_digits(config.seed, i, 'train', content='digits').text
      for i in range(count))
  sets = line_pipeline.create_eval_sets(config, 'test',
                                        sample_fn=fake_digits,
                                        process_index=0, process_count=1)
  for name, eval_set in sets.items():
    tier, held_out = name.removesuffix('_heldout'), name.endswith('heldout')
    assert sorted(line.text for line in eval_set.lines()) == sorted(
        fake_digits(config.eval_seed, i, 'test', held_out_fonts=held_out,
                    tier=tier, content='digits').text
        for i in range(3)), name
  with pytest.raises(ValueError, match='synth_content'):
    line_pipeline.RenderSpec.from_config(make_config(synth_content='poems'))


def test_digit_lines_render_through_synth_lines():
  config = make_config(synth_content='digits', vocabulary='digits',
                       max_label_length=8, image_height=32)
  spec = line_pipeline.RenderSpec.from_config(config)
  digits = charset.get_vocabulary('digits')
  for index, held_out, tier in ((0, False, None), (1, True, 'scan')):
    sample = synth_lines.make_sample(config.seed, index, 'test',
                                     held_out_fonts=held_out, tier=tier,
                                     content='digits')
    line = line_pipeline.render_line(spec, (config.seed, index, 'test',
                                            held_out, tier))
    assert line.text == sample.text == digits.decode(line.labels)
    assert line.pixels.shape[0] == 32 and line.length == len(sample.text)


@pytest.mark.usefixtures('fast_compile')
def test_khmer_digits_wide_tiny_config_trains_two_steps():
  config = khmer_digits_wide.get_config('tiny')
  vocab = charset.get_vocabulary(config.vocabulary)
  model = models.create_model(config.model, vocab_size=vocab.size)
  learning_rate_fn = optim.create_learning_rate_fn(config,
                                                   config.steps_per_epoch)
  state = train.create_train_state(config, model, jax.random.key(0),
                                   learning_rate_fn)
  step = jax.jit(functools.partial(
      train.train_step, model=model, config=config, kind='ctc',
      learning_rate_fn=learning_rate_fn))
  lines = line_pipeline.TrainStream(config)
  before = jax.tree.leaves(state.params)
  for k in range(2):
    batch = lines.batch(k)
    assert batch['image'].shape[1:] == (48, 384, 3)
    assert all(set(vocab.decode(row)) <= set(charset.KHMER_DIGITS)
               for row in batch['labels'])
    state, metrics = step(state, batch, jax.random.key(1))
  assert int(state.step) == 2 and np.isfinite(float(metrics['loss']))
  assert any(not np.array_equal(a, b) for a, b in
             zip(before, jax.tree.leaves(state.params)))
