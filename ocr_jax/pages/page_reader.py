"""Reads whole pages: deskew, detect lines, order, crop, recognise, assemble.

  from ocr_jax.pages import page_reader
  reader = page_reader.load_page_reader('khmer-text')  # shipped detector
  result = reader.read_page(rgb_uint8)       # -> results.PageResult
  print(result.text)

`line_reader` is an `ocr_jax.reading.reader.Reader` (any line model);
`detector` is anything with `detect(page) -> [layout.DetectedLine]` (see
`Detector`): the learned one (`ocr_jax.pages.detector`) or, in tests,
`BoxDetector`, which passes known boxes through the same core-map
post-processing.

All the crops of a page go to the line reader in one call: `Reader.read`
sorts them by width and reads them in batches of similar width (see
`ocr_jax.reading.reader`), so a variable-width model pads little, and it
gives the results back in input order.
"""

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

import numpy as np

from ocr_jax.pages import detector as detector_lib
from ocr_jax.pages import inputs
from ocr_jax.pages import layout
from ocr_jax.pages import results
from ocr_jax.reading import load
from ocr_jax.reading import reader as reader_lib

# Margin added around each line box when cropping, (left and right, top and
# bottom), in box heights: the line model's training crops
# (`synth_lines.draw_line`) pad the line box by 0.05-0.5 em left and right
# and 0.025-0.25 em above and below (means 0.275 and 0.14 em), and a Khmer
# line's ink box is about 1.7 em tall (median over validation lines), so
# about 0.16 and 0.08 of the ink box's height, which is what a page box is.
CROP_MARGIN = (0.16, 0.08)


class Detector(Protocol):
  """Finds text lines on a (deskewed) page."""

  def detect(self, image: np.ndarray) -> list[layout.DetectedLine]:
    """Lines of an [height, width, 3] uint8 page, in any order."""


class BoxDetector:
  """A detector that knows the boxes (tests, ground truth benchmarks).

  The boxes go through `layout.core_map` and `layout.lines_from_map`, the
  learned detector's post-processing, so they come out as it would give
  them from a perfect map.
  """

  def __init__(self, boxes: Sequence[layout.Box], *, scale: int = 4):
    self.boxes = list(boxes)
    self.scale = scale

  def detect(self, image: np.ndarray) -> list[layout.DetectedLine]:
    height, width = image.shape[:2]
    target = layout.core_map(self.boxes, height, width, scale=self.scale)
    return layout.lines_from_map(target, scale=self.scale,
                                 page_size=(width, height))


def crop(image: np.ndarray, box: layout.Box,
         margin: tuple[float, float] = CROP_MARGIN) -> np.ndarray:
  """The box cut from the page with a margin of (left and right, top and
  bottom) `margin` x its height (`CROP_MARGIN`)."""
  height, width = image.shape[:2]
  x0, y0, x1, y1 = box
  pad_x, pad_y = (m * (y1 - y0) for m in margin)
  c0 = max(int(np.floor(x0 - pad_x)), 0)
  r0 = max(int(np.floor(y0 - pad_y)), 0)
  c1 = min(int(np.ceil(x1 + pad_x)), width)
  r1 = min(int(np.ceil(y1 + pad_y)), height)
  return image[r0:max(r1, r0 + 1), c0:max(c1, c0 + 1)]


class PageReader:
  """Reads pages with a line detector and a line reader."""

  def __init__(self, line_reader: reader_lib.Reader, detector: Detector, *,
               deskew: bool = True, max_skew: float = 5.0,
               beam_size: int = 1):
    self.line_reader = line_reader
    self.detector = detector
    self.deskew = deskew
    self.max_skew = max_skew
    self.beam_size = beam_size

  def read_page(self, image: np.ndarray, *, source: str = '<page>',
                page_number: int = 1,
                dpi: float | None = None) -> results.PageResult:
    """Reads one [height, width, 3] uint8 RGB page."""
    height, width = image.shape[:2]
    result = results.PageResult(source, page_number, width, height, dpi=dpi)
    straight, angle = image, 0.0
    if self.deskew:
      straight, angle = layout.deskew(image, max_angle=self.max_skew)
    result.angle = angle
    detected = self.detector.detect(straight)
    if not detected:
      return result
    order = layout.reading_order([line.box for line in detected])
    detected = [detected[i] for i in order]
    crops = [crop(straight, line.box) for line in detected]
    readings = self.recognize(crops)
    for line, reading in zip(detected, readings):
      result.lines.append(self._line(line, reading, angle, width, height))
    return result

  def recognize(self, crops: Sequence[np.ndarray]
                ) -> list[reader_lib.ReadResult]:
    """Reads line crops, in input order (the reader batches by width)."""
    return self.line_reader.read(list(crops), beam_size=self.beam_size)

  def read_pages(self, pages: Iterable[inputs.Page], *,
                 dpi: float | None = None
                 ) -> Iterator[results.PageResult]:
    """Reads `inputs.iter_pages` pages; unreadable pages carry the error."""
    for page in pages:
      if not page.ok:
        yield results.PageResult(page.source, page.page_number,
                                 error=page.error)
        continue
      yield self.read_page(page.image, source=page.source,
                           page_number=page.page_number, dpi=dpi)

  @staticmethod
  def _line(line, reading, angle, width, height) -> results.LineResult:
    x0, y0, x1, y1 = line.box
    corners = np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
    polygon = layout.unrotate_points(corners, angle, width, height)
    box = (max(int(np.floor(polygon[:, 0].min())), 0),
           max(int(np.floor(polygon[:, 1].min())), 0),
           min(int(np.ceil(polygon[:, 0].max())), width),
           min(int(np.ceil(polygon[:, 1].max())), height))
    return results.LineResult(
        [(float(x), float(y)) for x, y in polygon], box,
        reading.text if reading.ok else '',
        float(reading.confidence or 0.0), line.score)


def load_page_reader(model: str = 'khmer-text', detector: str | None = None,
                     *, batch_size: int = 32, **kwargs) -> PageReader:
  """A PageReader from a line model (run folder, .ocrx or shipped name) and
  a detector (run folder or weights file; None: the shipped one)."""
  return PageReader(load.load_reader(model, batch_size=batch_size),
                    detector_lib.load_detector(detector), **kwargs)
