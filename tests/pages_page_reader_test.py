"""Tests of ocr_jax.pages.page_reader with stand-in line models."""

import numpy as np
import pytest

from ocr_jax.data import preprocess
from ocr_jax.pages import inputs
from ocr_jax.pages import layout
from ocr_jax.pages import page_reader
from ocr_jax.reading import reader as reader_lib
from ocr_jax.text import charset

TO_KHMER = str.maketrans('0123456789', charset.KHMER_DIGITS)


class GrayLevelReader:
  """Reads a crop as the gray level of its darkest pixels ('g40')."""

  def __init__(self, batch_size=2):
    self.batch_size = batch_size
    self.batches = []

  def read(self, crops, beam_size=1):
    del beam_size
    self.batches.append([c.shape[1] / c.shape[0] for c in crops])
    return [reader_lib.ReadResult('<array>', f'g{int(c.min())}', 0.5)
            for c in crops]


def _two_column_page():
  """A heading, two columns of 3 lines, each line a bar of its own gray."""
  page = np.full((600, 1000, 3), 255, np.uint8)
  boxes, levels = [], []
  def line(x0, y0, x1, y1, level):
    page[y0 + 8:y1 - 8, x0 + 4:x1 - 4] = level
    boxes.append((x0, y0, x1, y1))
    levels.append(level)
  line(100, 40, 900, 100, 10)                       # Heading.
  for k in range(3):
    line(100, 150 + 60 * k, 460 - 40 * k, 200 + 60 * k, 20 + k)   # Left.
    line(540, 150 + 60 * k, 900, 200 + 60 * k, 30 + k)            # Right.
  return page, boxes, levels


class OneCallReader(reader_lib.Reader):
  """A real Reader whose `read` calls are counted."""

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self.read_sizes = []

  def read(self, inputs, **kwargs):
    self.read_sizes.append(len(inputs))
    return super().read(inputs, **kwargs)


def _gray_level_model(batch_size):
  """A real Reader over a fake model that reads the darkest gray level.

  The model writes the level (in Khmer digits) of the darkest pixel left of
  each line's width, and records (batch width, line widths) of each call.
  """
  vocabulary = charset.get_vocabulary('digits')
  spec = reader_lib.ReaderSpec(
      preset='fake', kind='ctc', vocabulary=vocabulary, image_height=32,
      image_width=512, variable_width=True, max_label_length=4,
      config={'bucket_step': 64})
  calls = []

  def predict(variables, images, widths):
    del variables
    images, widths = np.asarray(images), np.asarray(widths)
    calls.append((images.shape[2], widths.tolist()))
    ids = np.full((len(images), 5), charset.PAD_ID, np.int32)
    for row, (image, width) in enumerate(zip(images, widths)):
      level = str(preprocess.to_uint8(image[:, :width]).min())
      ids[row, :len(level)] = [charset.NUM_SPECIAL + int(d) for d in level]
      ids[row, len(level)] = charset.EOS_ID
    return ids, np.full(len(images), 0.5), np.ones(ids.shape, np.float32)

  reader = OneCallReader(spec, {}, lambda beam_size: predict,
                         batch_size=batch_size)
  return reader, calls


def test_read_page_orders_columns_and_reads_the_page_in_one_call():
  page, boxes, levels = _two_column_page()
  lines, calls = _gray_level_model(batch_size=2)
  reader = page_reader.PageReader(lines, page_reader.BoxDetector(boxes))
  result = reader.read_page(page, source='p.png', page_number=3)
  assert result.ok and (result.width, result.height) == (1000, 600)
  assert result.angle == 0.0
  # Reading order (heading, left column, right column), whatever order the
  # reader batched them in.
  assert levels == [10, 20, 30, 21, 31, 22, 32]
  expected = [str(level).translate(TO_KHMER) for level in
              (10, 20, 21, 22, 30, 31, 32)]
  assert [line.text for line in result.lines] == expected
  assert result.text.splitlines()[0] == expected[0]
  # One read of all 7 crops: the reader sorted them by width and cut
  # batches of 2, 2, 2, 1, each padded to the bucket of its widest line.
  assert lines.read_sizes == [7]
  assert [len(widths) for _, widths in calls] == [2, 2, 2, 1]
  widths = [w for _, batch in calls for w in batch]
  assert widths == sorted(widths) and len(set(widths)) > 3
  buckets = lines.spec.bucket_widths
  assert [width for width, _ in calls] == [
      min(b for b in buckets if b >= max(batch)) for _, batch in calls]
  heading = result.lines[0]
  assert heading.box == pytest.approx((100, 40, 900, 100), abs=4)
  assert heading.polygon[0] == pytest.approx((heading.box[0],
                                              heading.box[1]), abs=1)
  assert heading.confidence == 0.5


def test_skewed_page_is_deskewed_and_boxes_mapped_back():
  page, boxes, _ = _two_column_page()
  skewed = layout.rotate(page, 2.0)
  reader = page_reader.PageReader(GrayLevelReader(),
                                  page_reader.BoxDetector(boxes))
  result = reader.read_page(skewed)
  assert result.angle == pytest.approx(2.0, abs=0.2)
  assert len(result.lines) == 7
  # The heading's right end rises on the skewed page (counter-clockwise).
  (_, left_y), (_, right_y) = result.lines[0].polygon[:2]
  assert left_y - right_y == pytest.approx(800 * np.tan(np.radians(2.0)),
                                           abs=3)


def test_blank_page_and_unreadable_pages():
  reader = page_reader.PageReader(GrayLevelReader(),
                                  page_reader.BoxDetector([]))
  blank = np.full((200, 100, 3), 255, np.uint8)
  pages = [inputs.Page('a.png', 1, blank),
           inputs.Page('b.pdf', 1, None, 'cannot open PDF')]
  got = list(reader.read_pages(pages))
  assert got[0].ok and got[0].lines == [] and got[0].text == ''
  assert got[1].error == 'cannot open PDF' and got[1].source == 'b.pdf'


def test_crop_pads_like_the_line_models_training_crops():
  page = np.arange(200 * 300).reshape(200, 300) % 251
  page = np.repeat(page[..., None], 3, axis=2).astype(np.uint8)
  # A box 50 px tall: 0.16 x 50 = 8 px left and right, 0.08 x 50 = 4 px
  # above and below.
  got = page_reader.crop(page, (100.0, 60.0, 200.0, 110.0))
  np.testing.assert_array_equal(got, page[56:114, 92:208])
  # Clipped at the page's edges; fractional sides round outwards.
  got = page_reader.crop(page, (2.5, 1.0, 299.0, 51.0), margin=(0.1, 0.1))
  np.testing.assert_array_equal(got, page[0:56, 0:300])  # 51 + 5.
