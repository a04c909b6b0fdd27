"""Writes page readings as plain text, hOCR, JSON and searchable PDF.

  to_text(pages)     each page's lines in reading order; pages separated by
                     a form feed (as Tesseract's txt output)
  to_hocr(pages)     XHTML with ocr_page / ocr_line / ocrx_word spans whose
                     titles carry `bbox x0 y0 x1 y1` and `x_wconf` (0-100),
                     as Tesseract writes them
  to_json(pages)     {'source', 'pages': [{'page_number', 'width', 'height',
                     'angle', 'error', 'lines': [{'polygon', 'box', 'text',
                     'confidence', 'score'}]}]}
  write_pdf(...)     each page image, with an invisible text layer (PDF text
                     render mode 3) placed and stretched over every line, so
                     that the text can be selected, searched and copied
  encode_page_image  a page image as the PDF stores it (JPEG, or PNG if
                     bitonal): what to keep of each page until write_pdf

The text layer is written with fpdf2 in a TrueType Khmer font (embedded as
a subset with a ToUnicode map); the characters are laid out unshaped, one
glyph per code point, so text extraction gives back exactly the code points
read. Nothing of it is drawn: the page looks like the scan.

Page images are compressed once, by `encode_page_image`, and fpdf2 embeds
those bytes: a JPEG as it is (DCTDecode), a 1-bit PNG as CCITT G4 (or
Flate without libtiff). A caller that writes the PDF after reading many
pages keeps these bytes, not the arrays (an A4 page at 200 dpi is 11.6 MB
raw, about 0.5 MB as JPEG).
"""

from collections.abc import Sequence
import html
import io
import json
import os

import fpdf
from fpdf.enums import TextMode
import numpy as np
from PIL import Image

from ocr_jax.pages import results

# Fonts for the invisible text layer, first found wins: they map Khmer,
# Latin letters, digits and punctuation.
PDF_FONTS = ('/usr/share/fonts/truetype/khmeros/KhmerOS.ttf',
             '/usr/share/fonts/truetype/khmeros/KhmerOSsys.ttf',
             '/usr/share/fonts/truetype/noto/NotoSansKhmer-Regular.ttf')
# Resolution assumed for pages whose dpi is unknown (image files).
DEFAULT_DPI = 200
# JPEG quality of grey and colour page images (bitonal ones are lossless):
# glyph edges stay clean at 200 dpi for about 0.5 MB an A4 page; 85 costs
# a fifth more bytes.
JPEG_QUALITY = 75
# Baseline of the invisible text, as a fraction of the line box height from
# its top (Khmer subscripts sit below the baseline).
_BASELINE = 0.72


def to_text(pages: Sequence[results.PageResult]) -> str:
  """The text of the pages (unread pages are empty)."""
  return '\f'.join(page.text + '\n' if page.lines else ''
                   for page in pages)


def _bbox(box) -> str:
  return 'bbox ' + ' '.join(str(int(v)) for v in box)


def to_hocr(pages: Sequence[results.PageResult], *,
            title: str = '') -> str:
  """An hOCR document of the pages (see the module docstring)."""
  out = [
      '<?xml version="1.0" encoding="UTF-8"?>',
      '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"',
      '    "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">',
      '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="km" lang="km">',
      ' <head>',
      f'  <title>{html.escape(title)}</title>',
      '  <meta http-equiv="Content-Type" content="text/html;charset=utf-8"/>',
      '  <meta name="ocr-system" content="ocr_jax"/>',
      '  <meta name="ocr-capabilities" content="ocr_page ocr_line '
      'ocrx_word"/>',
      ' </head>',
      ' <body>']
  for p, page in enumerate(pages, 1):
    image = html.escape(page.source, quote=True).replace('"', '&quot;')
    out.append(f'  <div class="ocr_page" id="page_{p}" title="image '
               f'&quot;{image}&quot;; {_bbox((0, 0, page.width, page.height))}'
               f'; ppageno {page.page_number - 1}">')
    for n, line in enumerate(page.lines, 1):
      conf = round(100 * line.confidence)
      text = html.escape(line.text)
      out.append(f'   <span class="ocr_line" id="line_{p}_{n}" '
                 f'title="{_bbox(line.box)}; x_wconf {conf}">'
                 f'<span class="ocrx_word" id="word_{p}_{n}" '
                 f'title="{_bbox(line.box)}; x_wconf {conf}">{text}</span>'
                 '</span>')
    out.append('  </div>')
  out += [' </body>', '</html>', '']
  return '\n'.join(out)


def to_json(pages: Sequence[results.PageResult], *, source: str = '') -> str:
  """A JSON document of the pages (see the module docstring)."""
  data = {'source': source, 'pages': [{
      'page_number': page.page_number, 'width': page.width,
      'height': page.height, 'angle': round(page.angle, 3),
      'error': page.error,
      'lines': [{'polygon': [[round(x, 1), round(y, 1)]
                             for x, y in line.polygon],
                 'box': [int(v) for v in line.box], 'text': line.text,
                 'confidence': round(line.confidence, 4),
                 'score': round(line.score, 4)} for line in page.lines],
  } for page in pages]}
  return json.dumps(data, ensure_ascii=False, indent=1)


def pdf_font() -> str:
  """The font file of the text layer (the first of PDF_FONTS installed)."""
  for path in PDF_FONTS:
    if os.path.exists(path):
      return path
  raise FileNotFoundError(f'no font for the PDF text layer; install one of '
                          f'{PDF_FONTS} (Debian: fonts-khmeros)')


def encode_page_image(image: np.ndarray,
                      jpeg_quality: int = JPEG_QUALITY) -> bytes:
  """A [height, width, 3] uint8 page as the PDF will store it.

  A bitonal page (black and white only) becomes a 1-bit PNG: lossless and
  a fraction of a JPEG's size there, where JPEG rings around every glyph
  edge. Other pages become JPEG of `jpeg_quality`, one channel if grey.
  """
  grey = image[..., 0]
  is_grey = bool((image[..., 1] == grey).all() and
                 (image[..., 2] == grey).all())
  encoded = io.BytesIO()
  if is_grey and bool(((grey == 0) | (grey == 255)).all()):
    Image.fromarray(grey).convert('1').save(encoded, 'PNG', optimize=True)
  else:
    Image.fromarray(grey if is_grey else image).save(
        encoded, 'JPEG', quality=jpeg_quality)
  return encoded.getvalue()


def write_pdf(path: str, pages: Sequence[results.PageResult],
              images: Sequence[np.ndarray | bytes | None], *,
              jpeg_quality: int = JPEG_QUALITY,
              font: str | None = None) -> None:
  """Writes a searchable PDF: each page image with its invisible text.

  Args:
    path: the PDF to write.
    pages: the readings; pages with an error are skipped.
    images: the page images `pages` were read from (same order; the line
      boxes are in their pixels): [height, width, 3] uint8 arrays, or
      `encode_page_image` bytes, stored as they are.
    jpeg_quality: the JPEG quality of arrays (see `encode_page_image`).
    font: the TrueType file of the text layer (default `pdf_font()`).
  """
  pdf = fpdf.FPDF(unit='pt')
  pdf.set_auto_page_break(False)
  pdf.set_margins(0, 0, 0)
  pdf.add_font('textlayer', fname=font or pdf_font())
  for page, image in zip(pages, images):
    if not page.ok or image is None:
      continue
    if not isinstance(image, bytes):
      image = encode_page_image(image, jpeg_quality)
    _add_page(pdf, page, image)
  if not pdf.pages:
    pdf.add_page(format=(595, 842))  # A PDF needs a page: an empty A4.
  pdf.output(path)


def _add_page(pdf: fpdf.FPDF, page: results.PageResult,
              image: bytes) -> None:
  with Image.open(io.BytesIO(image)) as header:  # Reads the size only.
    width, height = header.size
  points = 72.0 / (page.dpi or DEFAULT_DPI)
  pdf.add_page(format=(width * points, height * points))
  pdf.image(io.BytesIO(image), x=0, y=0, w=width * points,
            h=height * points)
  pdf.text_mode = TextMode.INVISIBLE
  for line in page.lines:
    x0, y0, x1, y1 = (v * points for v in line.box)
    text = line.text.strip()
    if not text or x1 <= x0 or y1 <= y0:
      continue
    size = max(1.0, 0.6 * (y1 - y0))
    pdf.set_font('textlayer', size=size)
    pdf.set_stretching(100)
    natural = pdf.get_string_width(text)
    if natural > 0:
      pdf.set_stretching(100 * (x1 - x0) / natural)
    pdf.text(x0, y0 + _BASELINE * (y1 - y0), text)
  pdf.set_stretching(100)
  pdf.text_mode = TextMode.FILL
