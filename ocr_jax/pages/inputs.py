"""Reads the pages of image files and PDFs, one page at a time.

`iter_pages(paths)` yields one `Page` per page, in file order then page
order:

  PNG, JPEG, BMP, ...   one page (read by `ocr_jax.data.image_io`)
  TIFF                  one page per frame (multi-page TIFF)
  PDF                   one page per PDF page, rasterised by pypdfium2 at
                        `dpi` (lowered for a page that would exceed
                        `max_pixels`)

Memory stays bounded: only one page is decoded at a time, and the pixel
limit of `image_io` applies to every page. A file that cannot be read (a
missing, corrupt, truncated or too large image, an encrypted, corrupt or
zero-page PDF) yields one `Page` whose `error` says why and whose `image` is
None; its earlier pages (of a truncated TIFF) are still yielded, and the
other files are still read. A blank page is a page like any other.
"""

from collections.abc import Iterable, Iterator
import os
from typing import NamedTuple

import numpy as np
from PIL import Image
import pypdfium2 as pdfium

from ocr_jax.data import image_io

DEFAULT_DPI = 200
PDF_SUFFIXES = ('.pdf',)


class Page(NamedTuple):
  """One page of an input file.

  Attributes:
    source: the file (or a description of an in-memory image).
    page_number: 1-based page (or frame) number in the file.
    image: [height, width, 3] uint8 RGB pixels; None when `error` is set.
    error: why the page (and the rest of its file) could not be read.
  """
  source: str
  page_number: int
  image: np.ndarray | None
  error: str | None = None

  @property
  def ok(self) -> bool:
    return self.error is None


class PageReadError(Exception):
  """A page could not be read; the message says why."""


def is_pdf(path: str) -> bool:
  """True for a path named *.pdf or whose content starts like a PDF."""
  if path.lower().endswith(PDF_SUFFIXES):
    return True
  try:
    with open(path, 'rb') as f:
      return f.read(5) == b'%PDF-'
  except OSError:
    return False


def iter_pages(paths: Iterable[image_io.ImageSource], *,
               dpi: int = DEFAULT_DPI,
               max_pixels: int = image_io.DEFAULT_MAX_PIXELS
               ) -> Iterator[Page]:
  """Yields every page of every input (see the module docstring).

  Args:
    paths: files, folders (their files in sorted name order) or in-memory
      images (arrays, PIL images, encoded bytes).
    dpi: resolution at which PDF pages are rasterised.
    max_pixels: the largest page, in pixels.
  """
  for source in image_io.expand_inputs(list(paths)):
    name = image_io.describe_source(source)
    page_number = 0
    try:
      for page_number, image in _file_pages(source, dpi, max_pixels):
        yield Page(name, page_number, image)
    except image_io.ImageReadError as e:
      yield Page(name, page_number + 1, None, e.reason)
    except PageReadError as e:
      yield Page(name, page_number + 1, None, str(e))


def _file_pages(source, dpi: int, max_pixels: int):
  """(page number, pixels) pairs of one input."""
  if isinstance(source, (str, os.PathLike)) and os.path.isfile(source):
    path = os.fspath(source)
    if is_pdf(path):
      yield from _pdf_pages(path, dpi, max_pixels)
      return
    yield 1, image_io.read_image(path, max_pixels=max_pixels)
    yield from _more_frames(path, max_pixels)
    return
  yield 1, image_io.read_image(source, max_pixels=max_pixels)


def _more_frames(path: str, max_pixels: int):
  """Frames 2... of a multi-frame image (TIFF); frame 1 is read already."""
  try:
    image = Image.open(path)
  except Exception:  # pylint: disable=broad-except
    return  # Frame 1 opened a moment ago; nothing more to read.
  with image:
    try:
      count = getattr(image, 'n_frames', 1)
    except Exception as e:  # pylint: disable=broad-except
      raise PageReadError(f'truncated or corrupt multi-page file: {e}'
                          ) from None
    for index in range(1, count):
      try:
        image.seek(index)
        width, height = image.size
        if width * height > max_pixels:
          raise PageReadError(
              f'page {index + 1} is {width}x{height}, over the '
              f'{max_pixels / 1e6:.0f} MP limit (not decoded)')
        image.load()
        pixels = np.asarray(image_io.to_rgb(image), np.uint8)
      except PageReadError:
        raise
      except Exception as e:  # pylint: disable=broad-except
        raise PageReadError(f'page {index + 1}: truncated or corrupt image '
                            f'data: {e}') from None
      yield index + 1, pixels


def pdf_scale(width_pt: float, height_pt: float, dpi: int,
              max_pixels: int) -> float:
  """Points -> pixels scale: dpi / 72, lowered to fit max_pixels."""
  scale = dpi / 72.0
  pixels = width_pt * height_pt * scale * scale
  if pixels > max_pixels:
    scale *= (max_pixels / pixels) ** 0.5 * 0.999
  return scale


def _pdf_pages(path: str, dpi: int, max_pixels: int):
  """Rasterises a PDF page by page."""
  try:
    pdf = pdfium.PdfDocument(path)
  except pdfium.PdfiumError as e:
    # PDFium also refuses a PDF without pages here ('Success' or 'Data
    # format error'), so the message names all three causes.
    raise PageReadError('cannot open PDF (encrypted, corrupt or without '
                        f'pages): {e}') from None
  try:
    count = len(pdf)
    if count == 0:
      raise PageReadError('the PDF has no pages')
    for index in range(count):
      try:
        page = pdf[index]
        width, height = page.get_size()
        if width <= 0 or height <= 0:
          raise PageReadError(f'page {index + 1} has no area')
        scale = pdf_scale(width, height, dpi, max_pixels)
        bitmap = page.render(scale=scale)
        pixels = np.asarray(bitmap.to_pil().convert('RGB'), np.uint8)
        bitmap.close()
        page.close()
      except pdfium.PdfiumError as e:
        raise PageReadError(f'page {index + 1}: cannot render: {e}'
                            ) from None
      yield index + 1, pixels
  finally:
    pdf.close()


def count_pdf_pages(path: str) -> int:
  """The pages of a PDF, 1 when it cannot be opened (its error page)."""
  try:
    pdf = pdfium.PdfDocument(path)
  except pdfium.PdfiumError:
    return 1
  try:
    return max(len(pdf), 1)
  finally:
    pdf.close()


def count_frames(path: str) -> int:
  """The frames of an image file, 1 when it cannot be opened."""
  try:
    with Image.open(path) as image:
      return max(int(getattr(image, 'n_frames', 1)), 1)
  except Exception:  # pylint: disable=broad-except
    return 1
