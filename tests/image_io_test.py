"""Tests of ocr_jax.data.image_io: every mode reads, bad files fail cleanly.

Model-input preprocessing is tested in preprocess_test.py.
"""

import io
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
from PIL import Image
import pytest

from ocr_jax.data import image_io


def _png_chunk(kind: bytes, data: bytes) -> bytes:
  crc = zlib.crc32(kind + data) & 0xFFFFFFFF
  return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', crc)


def write_huge_png(path, width=20000, height=20000):
  """A valid all-black greyscale PNG of width x height, about 400 KB."""
  compressor = zlib.compressobj(1)
  row = bytes(width + 1)  # Filter byte 0, then the pixels.
  data = b''.join(compressor.compress(row) for _ in range(height))
  data += compressor.flush()
  header = struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)
  with open(path, 'wb') as f:
    f.write(b'\x89PNG\r\n\x1a\n' + _png_chunk(b'IHDR', header) +
            _png_chunk(b'IDAT', data) + _png_chunk(b'IEND', b''))


def write_bmp_header(path, width, height):
  """A BMP whose header claims width x height but holds no pixels."""
  info = struct.pack('<IiiHHIIiiII', 40, width, height, 1, 24, 0, 0, 2835,
                     2835, 0, 0)
  header = b'BM' + struct.pack('<IHHI', 54 + 3 * width * height, 0, 0, 54)
  with open(path, 'wb') as f:
    f.write(header + info)


def _text_image(mode='RGB', size=(60, 20)):
  rgb = Image.new('RGB', size, (255, 255, 255))
  rgb.paste((0, 0, 0), (10, 5, 50, 15))
  return rgb if mode == 'RGB' else rgb.convert(mode)


def _roundtrip(image, fmt, **kwargs):
  buffer = io.BytesIO()
  image.save(buffer, fmt, **kwargs)
  return buffer.getvalue()


@pytest.mark.parametrize('mode,fmt', [
    ('RGB', 'PNG'), ('RGB', 'JPEG'), ('L', 'PNG'), ('L', 'JPEG'),
    ('1', 'PNG'), ('1', 'BMP'), ('P', 'PNG'), ('P', 'GIF'), ('CMYK', 'JPEG'),
    ('CMYK', 'TIFF'), ('LA', 'PNG'), ('RGBA', 'PNG'), ('RGBA', 'WEBP'),
    ('I;16', 'PNG'), ('I', 'TIFF'), ('F', 'TIFF'), ('YCbCr', 'JPEG'),
])
def test_reads_every_mode_as_rgb(mode, fmt):
  data = _roundtrip(_text_image(mode), fmt)
  pixels = image_io.read_image(data)
  assert pixels.shape == (20, 60, 3) and pixels.dtype == np.uint8
  # White background, black box, whatever the mode.
  assert pixels[1, 1].min() > 200, (mode, fmt, pixels[1, 1])
  assert pixels[10, 30].max() < 60, (mode, fmt, pixels[10, 30])


def test_transparency_composites_on_white():
  rgba = Image.new('RGBA', (8, 4), (0, 0, 0, 0))
  rgba.putpixel((1, 1), (0, 0, 0, 255))
  pixels = image_io.read_image(rgba)
  np.testing.assert_array_equal(pixels[0, 0], [255, 255, 255])
  np.testing.assert_array_equal(pixels[1, 1], [0, 0, 0])
  palette = rgba.convert('P')
  palette.info['transparency'] = palette.getpixel((0, 0))
  data = _roundtrip(palette, 'PNG', transparency=palette.getpixel((0, 0)))
  np.testing.assert_array_equal(image_io.read_image(data)[0, 0],
                                [255, 255, 255])


def test_sixteen_bit_scales_to_eight_bit():
  gray = np.full((4, 4), 65535, np.uint16)
  gray[0, 0] = 0
  image = Image.fromarray(gray)
  pixels = image_io.read_image(_roundtrip(image, 'PNG'))
  assert pixels[0, 0, 0] == 0 and pixels[1, 1, 0] == 255


def test_first_frame_and_exif_orientation():
  frames = [Image.new('RGB', (6, 3), color) for color in ('red', 'blue')]
  data = _roundtrip(frames[0], 'GIF', save_all=True,
                    append_images=frames[1:])
  pixels = image_io.read_image(data)
  assert pixels[0, 0, 0] > 200 and pixels[0, 0, 2] < 50
  exif = Image.Exif()
  exif[0x0112] = 6  # Rotated 90 degrees: width and height swap.
  data = _roundtrip(Image.new('RGB', (40, 10), 'white'), 'JPEG', exif=exif)
  assert image_io.read_image(data).shape == (40, 10, 3)


def test_arrays_of_any_layout():
  assert image_io.read_image(np.zeros((5, 7), np.uint8)).shape == (5, 7, 3)
  assert image_io.read_image(np.zeros((5, 7, 1), np.float32)).shape == (5,
                                                                        7, 3)
  ones = image_io.read_image(np.ones((2, 3, 3), np.float64))
  assert ones.min() == 255
  with pytest.raises(image_io.ImageReadError, match='shape'):
    image_io.read_image(np.zeros((5, 7, 2), np.uint8))
  with pytest.raises(image_io.ImageReadError, match='NaN'):
    image_io.read_image(np.full((2, 2), np.nan))


@pytest.fixture
def bad_files(tmp_path):
  good = _roundtrip(_text_image(), 'PNG')
  jpeg = _roundtrip(_text_image(size=(200, 80)), 'JPEG')
  files = {
      'empty.png': b'',
      'truncated.png': good[:len(good) // 2],
      'truncated.jpg': jpeg[:len(jpeg) // 2],
      'corrupt.png': good[:40] + bytes(range(256)) * 4,
      'text.png': b'this is not an image\n',
      'random.bin': np.random.default_rng(0).bytes(3000),
  }
  for name, data in files.items():
    (tmp_path / name).write_bytes(data)
  write_huge_png(tmp_path / 'huge.png')
  write_bmp_header(tmp_path / 'huge.bmp', 20000, 20000)
  (tmp_path / 'folder.png').mkdir()
  return tmp_path


@pytest.mark.parametrize('name,reason', [
    ('empty.png', 'empty file'),
    ('truncated.png', 'truncated|corrupt'),
    ('truncated.jpg', 'truncated'),
    ('corrupt.png', 'corrupt'),
    ('text.png', 'not an image'),
    ('random.bin', 'not an image'),
    ('huge.png', 'too large|over the'),
    ('huge.bmp', 'too large|over the'),
    ('folder.png', 'directory'),
    ('missing.png', 'no such file'),
])
def test_bad_files_raise_image_read_error(bad_files, name, reason):
  with pytest.raises(image_io.ImageReadError, match=reason) as info:
    image_io.read_image(bad_files / name)
  assert info.value.source == str(bad_files / name)


def test_over_limit_png_is_refused_before_decoding(tmp_path):
  path = tmp_path / 'big.png'
  Image.new('L', (300, 200)).save(path)
  with pytest.raises(image_io.ImageReadError, match='0 MP limit'):
    image_io.read_image(path, max_pixels=50_000)


def test_over_limit_jpeg_decodes_at_reduced_scale(tmp_path):
  path = tmp_path / 'big.jpg'
  _text_image(size=(800, 400)).save(path)
  pixels = image_io.read_image(path, max_pixels=25_000)
  assert pixels.shape == (100, 200, 3)  # 1/4 scale fits.


def reset_peak_memory() -> bool:
  """Resets this process's peak resident memory (Linux); False if unable."""
  try:
    with open('/proc/self/clear_refs', 'w', encoding='ascii') as f:
      f.write('5')
    return True
  except OSError:
    return False


def peak_memory_mb() -> float:
  """Peak resident memory of this process since start or reset (VmHWM)."""
  with open('/proc/self/status', encoding='ascii') as f:
    for line in f:
      if line.startswith('VmHWM:'):
        return int(line.split()[1]) / 1024
  raise OSError('no VmHWM')


def test_huge_image_memory_stays_bounded(bad_files):
  if not os.path.exists('/proc/self/status'):
    pytest.skip('needs /proc (Linux)')
  # VmHWM, unlike ru_maxrss, does not inherit the parent's peak over exec.
  code = ('import sys\n'
          'from ocr_jax.data import image_io\n'
          'for name in ("huge.png", "huge.bmp"):\n'
          '  try:\n'
          '    image_io.read_image(sys.argv[1] + "/" + name)\n'
          '  except image_io.ImageReadError:\n'
          '    pass\n'
          'for line in open("/proc/self/status"):\n'
          '  if line.startswith("VmHWM:"):\n'
          '    print(int(line.split()[1]) // 1024)\n')
  out = subprocess.run([sys.executable, '-c', code, str(bad_files)],
                       check=True, capture_output=True, text=True,
                       cwd=os.path.dirname(os.path.dirname(__file__)))
  peak_mb = int(out.stdout.strip())
  assert peak_mb < 200, peak_mb  # A decoded 20000 x 20000 image is 400 MB+.


def test_list_folder_sorted_skipping_text_hidden_and_folders(tmp_path):
  for name in ('b.png', 'a.JPG', 'labels.tsv', 'notes.MD', '.hidden.png',
               'c.unknown'):
    (tmp_path / name).write_bytes(b'x')
  (tmp_path / 'sub').mkdir()
  (tmp_path / 'sub' / 'd.png').write_bytes(b'x')
  assert image_io.list_folder(str(tmp_path)) == [
      str(tmp_path / name) for name in ('a.JPG', 'b.png', 'c.unknown')]


def test_expand_inputs_flattens_folders_in_place(tmp_path):
  folder = tmp_path / 'scans'
  folder.mkdir()
  for name in ('2.png', '1.png', 'labels.tsv'):
    (folder / name).write_bytes(b'x')
  pixels = np.zeros((2, 2, 3), np.uint8)
  sources = image_io.expand_inputs(['first.png', folder, pixels, b'data'])
  assert sources[:3] == ['first.png', str(folder / '1.png'),
                         str(folder / '2.png')]
  assert sources[3] is pixels and sources[4] == b'data'
  assert image_io.expand_inputs('one.png') == ['one.png']
  assert image_io.expand_inputs(str(folder)) == [str(folder / '1.png'),
                                                 str(folder / '2.png')]
