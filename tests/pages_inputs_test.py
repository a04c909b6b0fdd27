"""Tests of ocr_jax.pages.inputs: images, multi-page TIFF, PDF, bad files."""

import fpdf
import numpy as np
from PIL import Image

from ocr_jax.pages import inputs


def _page(value: int, size=(60, 40)) -> Image.Image:
  return Image.new('RGB', size, (value, value, value))


def _pdf(path, sizes_pt, *, password=None):
  pdf = fpdf.FPDF(unit='pt')
  if password:
    pdf.set_encryption(owner_password='owner', user_password=password)
  for width, height in sizes_pt:
    pdf.add_page(format=(width, height))
    pdf.set_fill_color(0, 0, 0)
    pdf.rect(0, 0, width / 2, height, style='F')  # Left half black.
  pdf.output(str(path))


def _zero_page_pdf() -> bytes:
  """A well-formed PDF whose page tree is empty."""
  objects = (b'<< /Type /Catalog /Pages 2 0 R >>',
             b'<< /Type /Pages /Kids [] /Count 0 >>')
  out = bytearray(b'%PDF-1.4\n')
  offsets = []
  for number, body in enumerate(objects, 1):
    offsets.append(len(out))
    out += b'%d 0 obj\n%s\nendobj\n' % (number, body)
  xref = len(out)
  out += b'xref\n0 3\n0000000000 65535 f \n'
  out += b''.join(b'%010d 00000 n \n' % offset for offset in offsets)
  out += b'trailer\n<< /Size 3 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n' % xref
  return bytes(out)


def test_png_jpeg_and_multipage_tiff(tmp_path):
  _page(10).save(tmp_path / 'a.png')
  _page(200).save(tmp_path / 'b.jpg', quality=95)
  _page(50).save(tmp_path / 'c.tif', save_all=True,
                 append_images=[_page(100), _page(150, (30, 20))])
  pages = list(inputs.iter_pages([tmp_path / 'a.png', tmp_path / 'b.jpg',
                                  tmp_path / 'c.tif']))
  assert [(p.page_number, p.error) for p in pages] == [
      (1, None), (1, None), (1, None), (2, None), (3, None)]
  assert pages[0].image.shape == (40, 60, 3)
  assert pages[0].image.dtype == np.uint8
  assert abs(int(pages[1].image[20, 30, 0]) - 200) <= 2
  assert [int(p.image[0, 0, 0]) for p in pages[2:]] == [50, 100, 150]
  assert pages[4].image.shape == (20, 30, 3)


def test_pdf_rasterised_at_dpi_page_by_page(tmp_path):
  path = tmp_path / 'doc.pdf'
  _pdf(path, [(72, 144), (144, 72)])
  pages = list(inputs.iter_pages([str(path)], dpi=100))
  assert [p.page_number for p in pages] == [1, 2]
  assert pages[0].image.shape == (200, 100, 3)  # 1 x 2 inches at 100 dpi.
  assert pages[1].image.shape == (100, 200, 3)
  assert pages[0].image[100, 10, 0] < 30 and pages[0].image[100, 90, 0] > 225


def test_pdf_page_over_the_pixel_limit_is_rasterised_smaller(tmp_path):
  path = tmp_path / 'big.pdf'
  _pdf(path, [(720, 720)])  # 10 x 10 inches.
  (page,) = inputs.iter_pages([str(path)], dpi=300, max_pixels=250_000)
  assert page.ok and page.image.shape[0] * page.image.shape[1] <= 250_000
  assert page.image.shape[0] >= 495


def test_bad_files_give_errors_and_the_rest_is_read(tmp_path):
  _pdf(tmp_path / 'locked.pdf', [(72, 72)], password='secret')
  (tmp_path / 'corrupt.pdf').write_bytes(b'%PDF-1.4\nnot really a pdf')
  (tmp_path / 'empty.pdf').write_bytes(_zero_page_pdf())
  tiff = tmp_path / 'cut.tif'
  _page(50, (400, 300)).save(tiff, save_all=True, compression=None,
                             append_images=[_page(90, (400, 300))])
  data = tiff.read_bytes()
  tiff.write_bytes(data[:len(data) * 3 // 4])  # Cut inside page 2.
  Image.new('1', (20000, 20000)).save(tmp_path / 'huge.png')
  _page(255).save(tmp_path / 'blank.png')
  names = ['locked.pdf', 'corrupt.pdf', 'empty.pdf', 'cut.tif', 'huge.png',
           'missing.png', 'blank.png']
  pages = list(inputs.iter_pages([str(tmp_path / n) for n in names]))
  by_file = {}
  for page in pages:
    by_file.setdefault(page.source.rsplit('/', 1)[1], []).append(page)
  assert 'encrypted, corrupt' in by_file['locked.pdf'][0].error
  assert 'password' in by_file['locked.pdf'][0].error.lower()
  assert 'encrypted, corrupt' in by_file['corrupt.pdf'][0].error
  assert 'without pages' in by_file['empty.pdf'][0].error
  cut = by_file['cut.tif']
  assert cut[0].ok and cut[0].image.shape == (300, 400, 3)
  assert cut[1].page_number == 2 and 'page 2' in cut[1].error
  assert 'limit' in by_file['huge.png'][0].error
  assert by_file['missing.png'][0].error == 'no such file'
  assert by_file['blank.png'][0].ok
  assert (by_file['blank.png'][0].image == 255).all()
