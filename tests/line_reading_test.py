"""Reading variable-width lines: width buckets, exports with a symbolic
width, bad inputs (ocr_jax.reading.reader, .export, .ocrx)."""

import dataclasses
import io

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from ocr_jax.data import preprocess
from ocr_jax.models import conv
from ocr_jax.reading import export
from ocr_jax.reading import load
from ocr_jax.reading import ocrx
from ocr_jax.reading import reader as reader_lib
# Sibling test module (pytest puts tests/ on sys.path).
import reader_test  # pylint: disable=g-bad-import-order

pytestmark = pytest.mark.usefixtures('fast_compile')
HEIGHT, MAX_WIDTH = 32, 512
# Line widths in input order (not sorted), at the model's height. Each is at
# least 56 px inside the bucket of its batch (batches of 2 after sorting:
# 60 and 200 in 256, 290 and 420 in 512, 500 in 512), farther than the
# tiny backbone's receptive field reaches (about 40 px), so the bucket
# cannot change a reading.
WIDTHS = (420, 60, 500, 200, 290)


def line_image(width, seed):
  """Dark bars of random widths and levels on a light, noisy background."""
  rng = np.random.default_rng(seed)
  pixels = np.full((HEIGHT, width, 3), 225, np.uint8)
  x = 4
  while x < width - 10:
    bar = int(rng.integers(3, 9))
    pixels[6:26, x:x + bar] = rng.integers(0, 120)
    x += bar + int(rng.integers(3, 12))
  return pixels - rng.integers(0, 25, pixels.shape, dtype=np.uint8)


class ShapeLog:
  """Wraps a Reader's predict_fns, logging the image widths called with."""

  def __init__(self, predict_fns):
    self.predict_fns = predict_fns
    self.widths = []

  def __call__(self, beam_size):
    fn = self.predict_fns(beam_size)

    def logged(variables, images, widths):
      self.widths.append(images.shape[2])
      return fn(variables, images, widths)

    return logged


def full_width(reader):
  """The same model read at image_width only (as before buckets)."""
  spec = dataclasses.replace(reader.spec, any_width=False)
  return reader_lib.Reader(spec, reader.variables, reader.predict_fns,
                           batch_size=reader.batch_size)


@pytest.fixture(scope='module')
def reader():
  return reader_test.perturb(load.random_reader(
      'tiny_line_ctc', vocabulary='khmer', image_height=HEIGHT,
      image_width=MAX_WIDTH, dataset='synth_lines', batch_size=2))


@pytest.fixture(scope='module')
def lines():
  return [line_image(width, seed) for seed, width in enumerate(WIDTHS)]


def test_bucket_widths_follow_the_training_rule(reader):
  assert reader.spec.bucket_widths == (128, 256, 384, 512)
  spec = dataclasses.replace(reader.spec, config=dict(
      reader.spec.config, bucket_step=200))
  assert spec.bucket_widths == (200, 400, 512)
  assert full_width(reader).spec.bucket_widths == (512,)
  assert preprocess.bucket_for(385, reader.spec.bucket_widths) == 512
  assert preprocess.bucket_for(9999, reader.spec.bucket_widths) == 512


def test_bucketed_reading_matches_full_width_reading_in_input_order(
    reader, lines):
  log = ShapeLog(reader.predict_fns)
  bucketed = reader_lib.Reader(reader.spec, reader.variables, log,
                               batch_size=2)
  results = bucketed.read(lines, char_confidences=True)
  # Sorted by width, cut into batches of 2, each at its widest bucket.
  assert log.widths == [256, 512, 512]
  expected = full_width(reader).read(lines, char_confidences=True)
  assert [r.source for r in results] == [r.source for r in expected]
  assert [r.text for r in results] == [r.text for r in expected]
  assert sum(bool(r.text) for r in results) >= 3  # Non-trivial readings.
  np.testing.assert_allclose([r.confidence for r in results],
                             [r.confidence for r in expected], rtol=1e-4)
  for got, want in zip(results, expected):
    assert [c for c, _ in got.characters] == [c for c, _ in want.characters]
  # Each result is the one of its own image read alone.
  for i in (0, 3):
    alone = reader.read(lines[i])
    assert alone.text == results[i].text
    np.testing.assert_allclose(alone.confidence, results[i].confidence,
                               rtol=1e-4)


def test_fixed_size_model_reads_at_its_full_width():
  digits = load.random_reader('tiny', batch_size=4)
  assert digits.spec.bucket_widths == (digits.spec.image_width,)
  log = ShapeLog(digits.predict_fns)
  logged = reader_lib.Reader(digits.spec, digits.variables, log,
                             batch_size=4)
  images = [reader_test.digit_image('០១២', width=width)
            for width in (60, 128, 300)]
  results = logged.read(images)
  assert log.widths == [128]
  assert [r.ok for r in results] == [True] * 3


@pytest.mark.parametrize('kernel,strides,groups', [
    ((3, 3), (1, 1), 1), ((3, 3), (2, 1), 1), ((1, 1), (2, 2), 1),
    ((3, 5), (1, 2), 1), ((5, 5), (2, 2), 4)])
def test_im2col_traces_under_a_symbolic_width(kernel, strides, groups):
  rng = np.random.default_rng(0)
  weights = rng.normal(size=(*kernel, 4 // groups, 4)).astype(np.float32)
  fn = lambda x: conv.conv2d(x, weights, strides, 'SAME', groups,
                             impl='matmul')
  # A multiple of the stride: 'SAME' pads the same at every such width.
  batch, width = jax.export.symbolic_shape(f'b, {strides[1]}*w')
  exported = jax.export.export(jax.jit(fn), platforms=('cpu',))(
      jax.ShapeDtypeStruct((batch, 3, width, 4), jnp.float32))
  for columns in (1, 2, 5, 33):
    x = rng.normal(size=(2, 3, columns * strides[1], 4)).astype(np.float32)
    np.testing.assert_allclose(exported.call(x), fn(x), rtol=1e-5,
                               atol=1e-5)


def test_export_with_a_symbolic_width_reads_every_bucket(reader, lines,
                                                         tmp_path):
  path = export.export_reader(reader, str(tmp_path / 'line.ocrx'),
                              weight_format='float32', platforms=('cpu',))
  meta = ocrx.read_meta(path)
  assert meta['any_width'] and meta['width_multiple'] == 4
  assert meta['inputs']['images'][2] == '4 * k'
  loaded = reader_lib.Reader.from_export(path, batch_size=2)
  assert loaded.spec.bucket_widths == reader.spec.bucket_widths
  log = ShapeLog(loaded.predict_fns)
  logged = reader_lib.Reader(loaded.spec, loaded.variables, log,
                             batch_size=2)
  results = logged.read(lines)
  assert log.widths == [256, 512, 512]
  expected = reader.read(lines)
  assert [r.text for r in results] == [r.text for r in expected]
  np.testing.assert_allclose([r.confidence for r in results],
                             [r.confidence for r in expected], rtol=1e-4)
  # One function, called directly at widths that are no bucket.
  for width in (4, 76):
    images = np.stack([preprocess.prepare(line, HEIGHT, width, True)[0]
                       for line in lines[:3]])
    widths = np.minimum([420, 60, 500], width).astype(np.int32)
    got = loaded.predict_batch(images, widths)
    want = reader.predict_batch(images, widths)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-4)
  # Other widths are zero-padded to a multiple of 4 px.
  odd = np.pad(images, ((0, 0), (0, 0), (0, 1), (0, 0)))  # 77 px.
  np.testing.assert_array_equal(loaded.predict_batch(odd, widths)[0],
                                loaded.predict_batch(images, widths)[0])


def test_export_with_a_fixed_width_is_read_at_full_width(reader, lines,
                                                         tmp_path):
  # What a file written before symbolic widths holds (no any_width).
  path = export.export_reader(full_width(reader), str(tmp_path / 'w.ocrx'),
                              platforms=('cpu',))
  assert not ocrx.read_meta(path)['any_width']
  loaded = reader_lib.Reader.from_export(path, batch_size=2)
  assert loaded.spec.bucket_widths == (MAX_WIDTH,)
  assert loaded.read(lines[1]).text == reader.read(lines[1]).text


def test_export_of_a_strided_backbone_reads_multiples_of_its_stride(
    tmp_path):
  # Default ResNet strides: 8 px per frame, 'SAME' strided convolutions.
  model = reader_test.perturb(load.random_reader(
      'tiny_ctc', vocabulary='khmer', image_width=300, dataset='khmer_text',
      batch_size=2))
  path = export.export_reader(model, str(tmp_path / 's.ocrx'),
                              platforms=('cpu',))
  loaded = reader_lib.Reader.from_export(path, batch_size=2)
  assert loaded.spec.width_multiple == 8
  assert model.spec.bucket_widths == (128, 256, 300)
  assert loaded.spec.bucket_widths == (128, 256, 304)
  log = ShapeLog(loaded.predict_fns)
  logged = reader_lib.Reader(loaded.spec, loaded.variables, log,
                             batch_size=2)
  lines = [np.repeat(line_image(width, seed), 2, axis=0)  # 64 px high.
           for seed, width in enumerate((700, 50, 90))]
  results = logged.read(lines)
  assert log.widths == [128, 304]
  expected = model.read(lines)
  assert [r.text for r in results] == [r.text for r in expected]
  np.testing.assert_allclose([r.confidence for r in results],
                             [r.confidence for r in expected], rtol=1e-4)


def _png(pixels):
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format='PNG')
  return buffer.getvalue()


def test_bad_inputs_give_results_or_per_file_errors(reader):
  blank = np.full((HEIGHT, 300, 3), 240, np.uint8)
  inputs = [
      blank,                                      # No text.
      np.zeros((1, 1, 3), np.uint8),              # 1 x 1.
      line_image(20_000, seed=1),                 # A 20,000 px line.
      np.full((5_000, 1, 3), 30, np.uint8),       # A vertical strip.
      np.full((1, 5_000, 3), 30, np.uint8),       # One row.
      np.full((20_000, 40, 3), 200, np.uint8),    # Very tall.
      _png(line_image(300, seed=2))[:60],         # A truncated file.
      b'not an image',
      line_image(200, seed=3),
  ]
  results = reader.read(inputs, char_confidences=True)
  assert len(results) == len(inputs)
  assert [r.ok for r in results] == [True] * 6 + [False, False, True]
  for result in results[:6] + results[8:]:
    assert 0.0 <= result.confidence <= 1.0
    assert isinstance(result.text, str)
  assert all(r.error for r in results[6:8])
  # The 20,000 px line is squeezed to the widest bucket; the strip and the
  # row read at their fitted widths.
  assert preprocess.fit_size(20_000, HEIGHT, HEIGHT, MAX_WIDTH, True) == (
      MAX_WIDTH, HEIGHT)
  assert preprocess.fit_size(1, 5_000, HEIGHT, MAX_WIDTH, True) == (1, HEIGHT)
  # Alone or among others, a bad input reads the same.
  assert reader.read(inputs[2]).text == results[2].text
