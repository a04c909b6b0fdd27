"""Reads image files robustly, and lists the images of a folder.

`read_image` accepts any file Pillow can decode, in any mode, and returns RGB
uint8 pixels:

  RGB, RGBX, YCbCr, HSV, LAB, CMYK   converted to RGB
  RGBA, LA, PA, P with transparency  composited on white
  L, 1 (bilevel), P                  expanded to RGB
  I;16 (16-bit), I, F                scaled to 0..255, then expanded
  multi-frame (GIF, TIFF)            the first frame
  EXIF orientation                   applied (phone photos come out upright)

Every failure (missing, empty, truncated, corrupt or non-image file, an image
too large to decode safely) raises one `ImageReadError` naming the file and
the reason, so that callers can report it per file and go on with the rest.

Memory stays bounded: the pixel count is read from the header before any
decoding, and an image over `max_pixels` (50 MP by default) is refused,
except JPEGs, which libjpeg decodes directly at 1/2, 1/4 or 1/8 scale
(`Image.draft`) until they fit. A 20000 x 20000 PNG is refused after reading
its header; it is never decoded.

`expand_inputs` turns paths, folders (their files in sorted name order, text
files such as labels.tsv skipped) and in-memory images into a flat list of
single image sources. Turning pixels into model inputs is
`ocr_jax.data.preprocess`.
"""

import io
import os
import re
import warnings
from typing import Any

import numpy as np
from PIL import Image
from PIL import ImageOps

# Largest image decoded at full resolution, in pixels (50 megapixels).
DEFAULT_MAX_PIXELS = 50_000_000

# Files a folder input skips: labels and notes, not images.
SKIPPED_SUFFIXES = ('.tsv', '.txt', '.json', '.md', '.csv', '.yaml', '.yml')

# Anything that can be read: a path, encoded bytes, a PIL image or pixels.
ImageSource = Any


class ImageReadError(Exception):
  """An image could not be read; `source` names it, `reason` says why."""

  def __init__(self, source: str, reason: str):
    super().__init__(f'{source}: {reason}')
    self.source = source
    self.reason = reason


def describe_source(source: ImageSource) -> str:
  """A short name for an image source, used in errors and results."""
  if isinstance(source, (str, os.PathLike)):
    return os.fspath(source)
  if isinstance(source, (bytes, bytearray, memoryview)):
    return f'<{len(source)} bytes>'
  if isinstance(source, np.ndarray):
    return f'<array {source.shape} {source.dtype}>'
  if isinstance(source, Image.Image):
    return f'<PIL image {source.size[0]}x{source.size[1]} {source.mode}>'
  return f'<{type(source).__name__}>'


def read_image(source: ImageSource, *,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
  """Reads one image as RGB pixels.

  Args:
    source: a file path, the encoded bytes of a file, a PIL image, or an
      array [height, width], [height, width, 1|3|4] of uint8, uint16 or
      float (0..1) pixels.
    max_pixels: refuse images with more pixels than this (JPEGs are decoded
      at a reduced scale instead).

  Returns:
    [height, width, 3] uint8 RGB pixels.

  Raises:
    ImageReadError: the source is missing, empty, truncated, corrupt, not an
      image, too large, or of an unsupported kind.
  """
  name = describe_source(source)
  if isinstance(source, np.ndarray):
    return _array_to_rgb(source, name)
  if isinstance(source, Image.Image):
    _check_size(source, name, max_pixels)
    return _decode(source, name)
  if isinstance(source, (bytes, bytearray, memoryview)):
    if not source:
      raise ImageReadError(name, 'empty data')
    return _open_and_decode(io.BytesIO(bytes(source)), name, max_pixels)
  if isinstance(source, (str, os.PathLike)):
    path = os.fspath(source)
    if not os.path.exists(path):
      raise ImageReadError(name, 'no such file')
    if os.path.isdir(path):
      raise ImageReadError(name, 'is a directory, not an image file')
    try:
      size = os.path.getsize(path)
    except OSError as e:
      raise ImageReadError(name, f'cannot read file: {e.strerror}') from None
    if size == 0:
      raise ImageReadError(name, 'empty file (0 bytes)')
    try:
      with open(path, 'rb') as f:
        return _open_and_decode(f, name, max_pixels)
    except OSError as e:
      raise ImageReadError(name, f'cannot read file: {e}') from None
  raise ImageReadError(name, 'expected a path, bytes, a PIL image or an '
                       f'array, got {type(source).__name__}')


def _open_and_decode(f, name: str, max_pixels: int) -> np.ndarray:
  """Opens (header only), checks the size, then decodes."""
  try:
    with warnings.catch_warnings():
      # The pixel count is checked below against max_pixels instead.
      warnings.simplefilter('ignore', Image.DecompressionBombWarning)
      image = Image.open(f)
  except Image.DecompressionBombError as e:
    found = re.search(r'(\d+) pixels', str(e))
    size = f'{int(found.group(1)) / 1e6:.0f} MP, ' if found else ''
    raise ImageReadError(
        name, f'image too large: {size}over the {max_pixels / 1e6:.0f} MP '
        'limit (a possible decompression bomb; not decoded)') from None
  except Image.UnidentifiedImageError:
    kind = _sniff(f)
    if kind:
      raise ImageReadError(name, f'corrupt {kind} file: its header cannot be '
                           'parsed') from None
    raise ImageReadError(name, 'not an image file (or an unsupported format)'
                         ) from None
  except Exception as e:  # pylint: disable=broad-except
    raise ImageReadError(name, f'corrupt image header: {_reason(e)}'
                         ) from None
  with image:
    _check_size(image, name, max_pixels)
    return _decode(image, name)


_SIGNATURES = (
    (b'\x89PNG\r\n\x1a\n', 'PNG'), (b'\xff\xd8\xff', 'JPEG'),
    (b'GIF87a', 'GIF'), (b'GIF89a', 'GIF'), (b'BM', 'BMP'),
    (b'II*\x00', 'TIFF'), (b'MM\x00*', 'TIFF'), (b'RIFF', 'WEBP'))


def _sniff(f) -> str | None:
  """The format a file's first bytes claim, or None."""
  try:
    f.seek(0)
    head = f.read(16)
  except (OSError, ValueError):
    return None
  return next((kind for magic, kind in _SIGNATURES
               if head.startswith(magic)), None)


def _reason(error: Exception) -> str:
  text = str(error) or type(error).__name__
  return text.replace('\n', ' ')


def _check_size(image: Image.Image, name: str, max_pixels: int) -> None:
  """Refuses images over max_pixels, or asks libjpeg for a reduced scale."""
  width, height = image.size
  if width <= 0 or height <= 0:
    raise ImageReadError(name, f'image has no pixels ({width}x{height})')
  if width * height <= max_pixels:
    return
  if image.format == 'JPEG' and hasattr(image, 'draft'):
    # DCT scaling: libjpeg decodes at 1/2, 1/4 or 1/8 scale, never in full.
    for scale in (2, 4, 8):
      if (width // scale) * (height // scale) <= max_pixels:
        image.draft(image.mode, (width // scale, height // scale))
        if image.size[0] * image.size[1] <= max_pixels:
          return
  raise ImageReadError(
      name, f'image is {width}x{height} = {width * height / 1e6:.0f} MP, '
      f'over the {max_pixels / 1e6:.0f} MP limit (not decoded)')


def _decode(image: Image.Image, name: str) -> np.ndarray:
  """Decodes the first frame and converts it to [H, W, 3] uint8 RGB."""
  try:
    if getattr(image, 'n_frames', 1) > 1:
      image.seek(0)
    image.load()
  except Exception as e:  # pylint: disable=broad-except
    if 'truncated' in str(e).lower() or isinstance(e, EOFError):
      raise ImageReadError(name, f'truncated image file: {_reason(e)}'
                           ) from None
    raise ImageReadError(name, f'corrupt image data: {_reason(e)}') from None
  try:
    image = ImageOps.exif_transpose(image) or image
  except Exception:  # pylint: disable=broad-except
    pass  # A broken EXIF block only loses the orientation.
  try:
    return np.asarray(to_rgb(image), np.uint8)
  except ImageReadError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise ImageReadError(
        name, f'cannot convert mode {image.mode} to RGB: {_reason(e)}'
    ) from None


def to_rgb(image: Image.Image) -> Image.Image:
  """Converts a decoded PIL image of any mode to RGB (see module docstring)."""
  mode = image.mode
  if mode == 'RGB':
    return image
  if mode == 'P':
    has_alpha = 'transparency' in image.info or (
        image.palette is not None and image.palette.mode == 'RGBA')
    image = image.convert('RGBA' if has_alpha else 'RGB')
    mode = image.mode
  if mode in ('RGBA', 'LA', 'PA', 'RGBa', 'La'):
    rgba = image.convert('RGBA')
    background = Image.new('RGBA', rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert('RGB')
  if mode.startswith('I') or mode == 'F':
    gray = _scale_to_uint8(np.asarray(image))
    return Image.fromarray(gray).convert('RGB')
  # 1, L, CMYK, YCbCr, HSV, LAB, RGBX: Pillow's own conversions.
  if mode == 'LAB':
    from PIL import ImageCms  # Optional (needs LittleCMS): only LAB uses it.
    return ImageCms.applyTransform(image, ImageCms.buildTransform(
        ImageCms.createProfile('LAB'), ImageCms.createProfile('sRGB'),
        'LAB', 'RGB'))
  return image.convert('RGB')


def _scale_to_uint8(pixels: np.ndarray) -> np.ndarray:
  """Maps 16-bit, 32-bit integer or float grey levels to 0..255."""
  pixels = pixels.astype(np.float64)
  if pixels.size == 0:
    return pixels.astype(np.uint8)
  high = float(np.max(pixels))
  low = float(np.min(pixels))
  if low >= 0 and high <= 1.0 and pixels.dtype.kind == 'f':
    pixels = pixels * 255.0
  elif low >= 0 and high <= 255:
    pass
  elif low >= 0 and high <= 65535:
    pixels = pixels / 257.0
  else:
    pixels = (pixels - low) * (255.0 / max(high - low, 1e-12))
  return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def _array_to_rgb(array: np.ndarray, name: str) -> np.ndarray:
  """Accepts [H, W], [H, W, 1|3|4] arrays of any numeric dtype."""
  if array.ndim == 3 and array.shape[-1] == 1:
    array = array[..., 0]
  if array.ndim not in (2, 3) or (array.ndim == 3
                                  and array.shape[-1] not in (3, 4)):
    raise ImageReadError(name, 'expected an array [height, width] or '
                         f'[height, width, 1|3|4], got shape {array.shape}')
  if array.shape[0] == 0 or array.shape[1] == 0:
    raise ImageReadError(name, f'image has no pixels (shape {array.shape})')
  if array.dtype != np.uint8:
    if not np.issubdtype(array.dtype, np.number) or array.dtype.kind == 'c':
      raise ImageReadError(name, f'unsupported pixel dtype {array.dtype}')
    if array.dtype.kind == 'f' and not np.all(np.isfinite(array)):
      raise ImageReadError(name, 'pixels hold NaN or infinite values')
    if array.dtype.kind == 'f':
      array = np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)
    else:
      array = _scale_to_uint8(array)
  if array.ndim == 2:
    return np.repeat(array[..., None], 3, axis=-1)
  if array.shape[-1] == 4:
    return np.asarray(to_rgb(Image.fromarray(array)))
  return np.ascontiguousarray(array)


# --- Folders ------------------------------------------------------------------


def list_folder(folder: str) -> list[str]:
  """A folder's files in sorted name order, hidden and text files skipped."""
  names = sorted(
      name for name in os.listdir(folder)
      if not name.startswith('.') and not name.lower().endswith(
          SKIPPED_SUFFIXES) and not os.path.isdir(os.path.join(folder, name)))
  return [os.path.join(folder, name) for name in names]


def expand_inputs(inputs) -> list[ImageSource]:
  """Flattens inputs to a list of single images (folders expanded).

  `inputs` is one source or a list or tuple of them; a folder path stands
  for `list_folder(folder)`.
  """
  if not isinstance(inputs, (list, tuple)):
    inputs = [inputs]
  sources = []
  for item in inputs:
    if isinstance(item, (str, os.PathLike)) and os.path.isdir(item):
      sources.extend(list_folder(os.fspath(item)))
    else:
      sources.append(item)
  return sources
