"""End-to-end tests of the khmer_pages pages, detector training and the
read_pages CLI (plumbing only: no trained models exist yet)."""

import json
import os

from absl import flags
import numpy as np
import pytest

from ocr_jax import read_pages
from ocr_jax.data.datasets import khmer_pages
from ocr_jax.pages import outputs
from ocr_jax.pages import results
from ocr_jax.pages import train_detector
from configs import line_detector

pytestmark = pytest.mark.usefixtures('fast_compile')


def test_make_page_is_deterministic_with_boxes_in_order():
  a = khmer_pages.make_page(0, 1, 'test', dpi=40)
  b = khmer_pages.make_page(0, 1, 'test', dpi=40)
  assert np.array_equal(a.image, b.image) and a.texts == b.texts
  assert a.image.shape == (round(11.69 * 40), round(8.27 * 40), 3)
  assert len(a.texts) == len(a.boxes) == len(a.straight_boxes) > 3
  assert abs(a.angle) <= khmer_pages.MAX_SKEW
  clean = khmer_pages.make_page(0, 1, 'test', dpi=40, degrade=False)
  assert clean.angle == 0.0
  assert np.array_equal(clean.boxes, clean.straight_boxes)
  # Ink lies inside the boxes: outside them the clean page is paper.
  ink = clean.image[..., 0] < 128
  for x0, y0, x1, y1 in clean.boxes:
    ink[y0:y1, x0:x1] = False
  assert ink.sum() < 0.01 * clean.image[..., 0].size


@pytest.fixture(scope='module')
def detector_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('detector'))
  train_detector.train_and_evaluate(line_detector.get_config('tiny'),
                                    workdir)
  return workdir


def test_cli_reads_pdf_and_images_and_reports_failures(tmp_path,
                                                       detector_run,
                                                       monkeypatch):
  page = khmer_pages.make_page(0, 0, 'test', dpi=40, degrade=False)
  pdf = str(tmp_path / 'scan.pdf')
  outputs.write_pdf(pdf, [results.PageResult('x', 1, dpi=40)] * 2,
                    [page.image, page.image])
  kept = []  # What the CLI held of each page until it wrote the PDF.
  write_pdf = outputs.write_pdf
  def spy(path, pages, images, **kwargs):
    kept.append(list(images))
    write_pdf(path, pages, images, **kwargs)
  monkeypatch.setattr(outputs, 'write_pdf', spy)
  (tmp_path / 'broken.pdf').write_bytes(b'%PDF-1.4 garbage')
  values = flags.FlagValues()
  read_pages.define_flags(values)
  out = str(tmp_path / 'out')
  values(['prog', '--model=khmer-digits', f'--detector={detector_run}',
          f'--output_dir={out}', '--format=txt,hocr,pdf,json', '--dpi=40'])
  status = read_pages.main(['prog', pdf, str(tmp_path / 'broken.pdf')],
                           values)
  assert status == read_pages.EXIT_SOME_FAILED
  assert sorted(os.listdir(out)) == [
      'broken.hocr', 'broken.json', 'broken.pdf', 'broken.txt', 'scan.hocr',
      'scan.json', 'scan.pdf', 'scan.txt']
  data = json.load(open(os.path.join(out, 'scan.json'), encoding='utf-8'))
  assert [p['page_number'] for p in data['pages']] == [1, 2]
  assert all(p['error'] is None for p in data['pages'])
  broken = json.load(open(os.path.join(out, 'broken.json'),
                          encoding='utf-8'))
  assert 'cannot open PDF' in broken['pages'][0]['error']
  # scan.pdf's two pages were kept as JPEG bytes (the page is antialiased
  # grey), a small part of the raw array; the broken file had no image.
  scan, nothing = kept
  assert nothing == [None] and len(scan) == 2
  raw = page.image.nbytes  # 468 x 331 x 3 at 40 dpi.
  for image in scan:
    assert isinstance(image, bytes) and image[:2] == b'\xff\xd8'
    assert len(image) < raw / 5
