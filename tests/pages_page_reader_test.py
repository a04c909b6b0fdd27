"""Tests of ocr_jax.pages.page_reader with a stand-in line reader."""

import numpy as np
import pytest

from ocr_jax.pages import inputs
from ocr_jax.pages import layout
from ocr_jax.pages import page_reader
from ocr_jax.reading import reader as reader_lib


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


def test_read_page_orders_columns_and_recognizes_in_width_batches():
  page, boxes, _ = _two_column_page()
  lines = GrayLevelReader(batch_size=2)
  reader = page_reader.PageReader(lines, page_reader.BoxDetector(boxes))
  result = reader.read_page(page, source='p.png', page_number=3)
  assert result.ok and (result.width, result.height) == (1000, 600)
  assert result.angle == 0.0
  assert [line.text for line in result.lines] == [
      'g10', 'g20', 'g21', 'g22', 'g30', 'g31', 'g32']
  assert result.text.splitlines()[0] == 'g10'
  # Batches of 2, 2, 2, 1 by increasing aspect ratio.
  ratios = [r for batch in lines.batches for r in batch]
  assert [len(b) for b in lines.batches] == [2, 2, 2, 1]
  assert ratios == sorted(ratios)
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
