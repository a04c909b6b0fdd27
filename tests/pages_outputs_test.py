"""Tests of ocr_jax.pages.outputs: text, hOCR, JSON, searchable PDF."""

import io
import json
import xml.etree.ElementTree as ET

import numpy as np
from PIL import Image
import pypdfium2 as pdfium
import pytest

from ocr_jax.pages import outputs
from ocr_jax.pages import results

LINES = (('សួស្តី ពិភពលោក', (100, 100, 900, 160), 0.912),
         ('ក្រុមហ៊ុន ABC ១២៣ (2024)', (100, 200, 700, 260), 0.5),
         ('ព្រះរាជាណាចក្រកម្ពុជា', (100, 300, 800, 360), 0.999))


def _pages():
  first = results.PageResult('doc.pdf', 1, 1000, 800, lines=[
      results.LineResult([(x0, y0), (x1, y0), (x1, y1), (x0, y1)],
                         (x0, y0, x1, y1), text, conf)
      for text, (x0, y0, x1, y1), conf in LINES[:2]])
  second = results.PageResult('doc.pdf', 2, 1000, 800, angle=1.5, lines=[
      results.LineResult([(100.0, 300.0), (800.0, 300.0), (800.0, 360.0),
                          (100.0, 360.0)], LINES[2][1], LINES[2][0],
                         LINES[2][2], score=0.75)])
  failed = results.PageResult('doc.pdf', 3, error='truncated')
  return [first, second, failed]


def test_text_has_lines_in_order_and_form_feeds_between_pages():
  assert outputs.to_text(_pages()) == (
      f'{LINES[0][0]}\n{LINES[1][0]}\n\f{LINES[2][0]}\n\f')


def test_hocr_lines_with_bbox_and_confidence():
  document = outputs.to_hocr(_pages(), title='doc.pdf')
  root = ET.fromstring(document.encode('utf-8'))
  ns = {'h': 'http://www.w3.org/1999/xhtml'}
  pages = root.findall('.//h:div[@class="ocr_page"]', ns)
  assert len(pages) == 3
  assert pages[0].get('title') == ('image "doc.pdf"; bbox 0 0 1000 800; '
                                   'ppageno 0')
  lines = root.findall('.//h:span[@class="ocr_line"]', ns)
  assert [line.get('title') for line in lines] == [
      'bbox 100 100 900 160; x_wconf 91', 'bbox 100 200 700 260; x_wconf 50',
      'bbox 100 300 800 360; x_wconf 100']
  words = root.findall('.//h:span[@class="ocrx_word"]', ns)
  assert [w.text for w in words] == [text for text, _, _ in LINES]


def test_json_round_trip():
  data = json.loads(outputs.to_json(_pages(), source='doc.pdf'))
  assert data['source'] == 'doc.pdf'
  assert [p['page_number'] for p in data['pages']] == [1, 2, 3]
  assert data['pages'][2]['error'] == 'truncated'
  line = data['pages'][1]['lines'][0]
  assert line == {'polygon': [[100.0, 300.0], [800.0, 300.0], [800.0, 360.0],
                              [100.0, 360.0]], 'box': [100, 300, 800, 360],
                  'text': LINES[2][0], 'confidence': 0.999, 'score': 0.75}
  assert data['pages'][1]['angle'] == 1.5


@pytest.mark.parametrize('encoded', [False, True])
def test_searchable_pdf_text_layer_extracts_back(tmp_path, encoded):
  pages = _pages()
  images = [np.full((800, 1000, 3), 255, np.uint8) for _ in range(2)]
  if encoded:  # As read_pages keeps them.
    images = [outputs.encode_page_image(image) for image in images]
  images.append(None)
  path = str(tmp_path / 'out.pdf')
  outputs.write_pdf(path, pages, images)
  pdf = pdfium.PdfDocument(path)
  assert len(pdf) == 2  # The unread page is left out.
  width, height = pdf[0].get_size()
  assert (round(width), round(height)) == (360, 288)  # 1000x800 at 200 dpi.
  texts = [pdf[i].get_textpage().get_text_range() for i in range(2)]
  for text, _, _ in LINES[:2]:
    assert text in texts[0]
  assert LINES[2][0] in texts[1]
  # The words sit where the line is: the first line's text is found in its
  # box (points, origin bottom left).
  textpage = pdf[0].get_textpage()
  found = textpage.get_text_bounded(left=100 * 0.36, bottom=288 - 160 * 0.36,
                                    right=900 * 0.36, top=288 - 100 * 0.36)
  assert LINES[0][0] in found and 'ABC' not in found
  pdf.close()


def _scan(height=2338, width=1654):
  """An A4 page at 200 dpi: shaded grey paper with 40 dark text bars."""
  page = np.repeat((235 - 20 * np.arange(width) / width)[None],
                   height, 0).astype(np.uint8)
  rng = np.random.default_rng(0)
  for k in range(40):
    page[80 + 55 * k:110 + 55 * k, 150:150 + rng.integers(600, 1350)] = 30
  return np.repeat(page[..., None], 3, axis=2)


def test_page_images_are_kept_compressed():
  grey = _scan()
  assert grey.nbytes == 11_601_156
  kept = outputs.encode_page_image(grey)
  assert kept[:2] == b'\xff\xd8' and len(kept) < grey.nbytes / 20  # JPEG.
  with Image.open(io.BytesIO(kept)) as image:
    assert image.mode == 'L' and image.size == (1654, 2338)
    assert np.abs(np.asarray(image, np.int16) -
                  grey[..., 0]).mean() < 2
  colour = grey.copy()
  colour[..., 2] = 250
  kept = outputs.encode_page_image(colour)
  assert kept[:2] == b'\xff\xd8' and len(kept) < colour.nbytes / 20
  with Image.open(io.BytesIO(kept)) as image:
    assert image.mode == 'RGB'
  # Bitonal: a 1-bit PNG, lossless.
  bitonal = np.where(grey < 128, 0, 255).astype(np.uint8)
  kept = outputs.encode_page_image(bitonal)
  assert kept[:4] == b'\x89PNG' and len(kept) < bitonal.nbytes / 1000
  with Image.open(io.BytesIO(kept)) as image:
    assert image.mode == '1'
    np.testing.assert_array_equal(np.asarray(image.convert('L')),
                                  bitonal[..., 0])


def test_pdf_stores_the_kept_bytes(tmp_path):
  """The JPEG goes in as it is; a bitonal page comes back exactly."""
  grey, bitonal = _scan(400, 300), np.full((400, 300, 3), 255, np.uint8)
  bitonal[100:140, 30:270] = 0
  kept = [outputs.encode_page_image(image) for image in (grey, bitonal)]
  # At 72 dpi a pixel is a point: pages render back at their pixel size.
  pages = [results.PageResult('a.png', 1, 300, 400, dpi=72),
           results.PageResult('b.png', 1, 300, 400, dpi=72)]
  path = tmp_path / 'kept.pdf'
  outputs.write_pdf(str(path), pages, kept)
  assert kept[0] in path.read_bytes()
  pdf = pdfium.PdfDocument(str(path))
  rendered = pdf[1].render(scale=1).to_pil().convert('L')
  pdf.close()
  np.testing.assert_array_equal(np.asarray(rendered), bitonal[..., 0])
