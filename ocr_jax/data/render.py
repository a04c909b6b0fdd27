"""Renders Khmer text to RGB images with correct shaping and nothing clipped.

Khmer needs complex text layout (pre-base vowels drawn before the consonant,
subscripts stacked below it), so text is laid out by Pillow's libraqm
(HarfBuzz) engine; the basic layout would draw unshaped code points.

Geometry: the text is drawn at `RENDER_SIZE` px into an alpha mask whose box
is the union of the ink and a nominal line box (1.1 em above the baseline,
0.45 em below) plus random margins, so the same font gives the same scale for
plain and stacked text and tall stacks are never cut. The mask is then scaled
to the target height (keeping the aspect), or to fit a fixed
(height, width) box, and composited over a procedural background.

All randomness comes from a passed `numpy.random.Generator`: the same seed,
text and font give byte-identical images.
"""

import dataclasses
import functools
import glob
import os
import subprocess
from typing import Iterable, Sequence

from fontTools import ttLib
import numpy as np
from PIL import features, Image, ImageDraw, ImageFont

KHMEROS_DIR = '/usr/share/fonts/truetype/khmeros'
# The 8 KhmerOS body-text families (docs/prototype.md, "Data"). Left out:
# Muol, Muol Light and Muol Pali (display/heading faces whose letter shapes
# differ a lot from body text) and System (a UI face close to "Khmer OS").
KHMEROS_FONTS = (
    'Khmer OS',
    'Khmer OS Battambang',
    'Khmer OS Bokor',
    'Khmer OS Content',
    'Khmer OS Fasthand',
    'Khmer OS Freehand',
    'Khmer OS Metal Chrieng',
    'Khmer OS Siemreap',
)
RENDER_SIZE = 48
# Nominal line box in em, relative to the baseline (negative = above).
_LINE_TOP, _LINE_BOTTOM = -1.1, 0.45
_MARGIN_EM = (0.08, 0.25)


@dataclasses.dataclass(frozen=True)
class Font:
  """A font file and its family name."""
  family: str
  path: str


def check_raqm() -> None:
  """Raises RuntimeError when Pillow cannot shape complex scripts."""
  if not features.check('raqm'):
    raise RuntimeError(
        'Pillow has no libraqm support, so Khmer would be drawn unshaped. '
        'Fix: install libraqm and FriBiDi (Debian/Ubuntu: `apt-get install '
        'libraqm0 libfribidi0`; macOS: `brew install libraqm`), then '
        'reinstall Pillow (`pip install --force-reinstall pillow`).')


def _fc_list_khmer() -> list[Font]:
  """Khmer fonts known to fontconfig, or [] when fc-list is unavailable."""
  try:
    out = subprocess.run(['fc-list', ':lang=km', 'file', 'family'],
                         capture_output=True, text=True, check=True).stdout
  except (OSError, subprocess.CalledProcessError):
    return []
  fonts = []
  for line in out.splitlines():
    path, _, family = line.partition(':')
    if path and family:
      fonts.append(Font(family.strip().split(',')[0], path.strip()))
  return fonts


def _glob_khmeros() -> list[Font]:
  """Fallback without fontconfig: the KhmerOS files, named from the file."""
  fonts = []
  for path in glob.glob(os.path.join(KHMEROS_DIR, '*.ttf')):
    family = _family_name(path)
    if family:
      fonts.append(Font(family, path))
  return fonts


@functools.lru_cache(maxsize=None)
def _family_name(path: str) -> str:
  with ttLib.TTFont(path, lazy=True) as font:
    return font['name'].getDebugName(1) or ''


@functools.lru_cache(maxsize=None)
def _all_khmer_fonts() -> tuple[Font, ...]:
  # Sorted so that the font order (and so the data) never depends on the
  # order fontconfig happens to list files in.
  fonts = _fc_list_khmer() or _glob_khmeros()
  return tuple(sorted(set(fonts), key=lambda f: (f.family, f.path)))


def find_khmer_fonts(
    family_filter: Sequence[str] | None = None) -> list[Font]:
  """Lists installed Khmer fonts.

  Args:
    family_filter: exact family names to keep; the result follows this
      order (one font per family, the first path in sorted order). None
      keeps every Khmer font, sorted by family then path.

  Returns:
    The fonts found; families of the filter that are not installed are
    skipped (check the length when all are required).
  """
  fonts = _all_khmer_fonts()
  if family_filter is None:
    return list(fonts)
  by_family = {}
  for font in fonts:
    by_family.setdefault(font.family, font)
  return [by_family[f] for f in family_filter if f in by_family]


def khmeros_fonts() -> list[Font]:
  """The 8 `KHMEROS_FONTS`; raises when any of them is missing."""
  fonts = find_khmer_fonts(KHMEROS_FONTS)
  if len(fonts) != len(KHMEROS_FONTS):
    missing = set(KHMEROS_FONTS) - {f.family for f in fonts}
    raise RuntimeError(
        f'KhmerOS fonts missing: {sorted(missing)}. Install them with '
        '`apt-get install fonts-khmeros`.')
  return fonts


@functools.lru_cache(maxsize=None)
def _cmap(font_path: str) -> frozenset[int]:
  with ttLib.TTFont(font_path, lazy=True) as font:
    return frozenset(font.getBestCmap())


def font_covers(font_path: str, text: str) -> bool:
  """True when the font has a glyph for every character of `text`."""
  cmap = _cmap(font_path)
  return all(ord(c) in cmap for c in text)


def fonts_for_text(fonts: Iterable[Font], text: str) -> list[Font]:
  """The fonts that can draw `text` without missing-glyph boxes."""
  return [f for f in fonts if font_covers(f.path, text)]


@functools.lru_cache(maxsize=64)
def _load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
  check_raqm()
  return ImageFont.truetype(path, size,
                            layout_engine=ImageFont.Layout.RAQM)


def text_mask(text: str, font_path: str, rng: np.random.Generator,
              size: int = RENDER_SIZE) -> np.ndarray:
  """Draws text into a float32 alpha mask [h, w] in [0, 1] with margins.

  The box is the union of the ink and the nominal line box, plus random
  margins of 0.08-0.25 em on each side, so no ink touches the border.
  """
  if not text:
    raise ValueError('cannot render an empty text')
  font = _load_font(font_path, size)
  left, top, right, bottom = font.getbbox(text, anchor='ls')
  top = min(top, int(np.floor(_LINE_TOP * size)))
  bottom = max(bottom, int(np.ceil(_LINE_BOTTOM * size)))
  m_left, m_top, m_right, m_bottom = (
      np.ceil(rng.uniform(*_MARGIN_EM, size=4) * size).astype(int))
  width = right - left + m_left + m_right
  height = bottom - top + m_top + m_bottom
  image = Image.new('L', (width, height), 0)
  ImageDraw.Draw(image).text((m_left - left, m_top - top), text, fill=255,
                             font=font, anchor='ls')
  return np.asarray(image, dtype=np.float32) / 255.0


def _resize_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
  image = Image.fromarray(mask)
  resized = image.resize((width, height), Image.Resampling.BILINEAR)
  return np.clip(np.asarray(resized), 0.0, 1.0)


def render_text(text: str, font_path: str, rng: np.random.Generator, *,
                height: int = 64, width: int | None = None) -> np.ndarray:
  """Renders text to an RGB uint8 image [height, width or natural, 3].

  Args:
    text: the (normalised) text to draw.
    font_path: a font that covers the text (see `font_covers`).
    rng: source of all randomness (margins, background, colours, offset).
    height: output height in pixels.
    width: None for a natural width (text scaled to `height`); otherwise a
      fixed width: the text is scaled down to fit, centred with a small
      random offset, and the rest is background.

  Returns:
    The image as a numpy uint8 array.
  """
  return render_text_and_alpha(text, font_path, rng, height=height,
                               width=width)[0]


def render_text_and_alpha(
    text: str, font_path: str, rng: np.random.Generator, *, height: int = 64,
    width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """`render_text` plus the ink coverage: float32 [height, width] in [0, 1]."""
  mask = text_mask(text, font_path, rng)
  mask_h, mask_w = mask.shape
  scale = height / mask_h
  if width is not None:
    scale = min(scale, width / mask_w)
  new_w = max(1, int(round(mask_w * scale)))
  new_h = max(1, int(round(mask_h * scale)))
  if width is not None:
    new_w = min(new_w, width)
  mask = _resize_mask(mask, new_w, new_h)
  out_w = new_w if width is None else width
  alpha = np.zeros((height, out_w), np.float32)
  y0 = int(rng.integers(0, height - new_h + 1))
  x0 = int(rng.integers(0, out_w - new_w + 1))
  alpha[y0:y0 + new_h, x0:x0 + new_w] = mask
  background = make_background(rng, height, out_w)
  colour = contrasting_colour(rng, float(background.mean()))
  image = background * (1.0 - alpha[..., None]) + colour * alpha[..., None]
  return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8), alpha


def ink_box(alpha: np.ndarray, threshold: float = 0.02) -> np.ndarray:
  """The ink bounding box [x0, y0, x1, y1) of an alpha map, int32 [4].

  Stored with each example so augmentation can zoom and rotate the text as
  far as the image allows without cutting it.
  """
  rows = np.nonzero(alpha.max(axis=1) > threshold)[0]
  cols = np.nonzero(alpha.max(axis=0) > threshold)[0]
  if not rows.size:
    return np.array([0, 0, alpha.shape[1], alpha.shape[0]], np.int32)
  return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], np.int32)


def _smooth_noise(rng: np.random.Generator, height: int, width: int,
                  cells: int) -> np.ndarray:
  """Low-frequency noise in [-1, 1]: a coarse random grid, upsampled."""
  grid_h = max(2, cells)
  grid_w = max(2, int(round(cells * width / height)))
  grid = rng.uniform(-1.0, 1.0, size=(grid_h, grid_w)).astype(np.float32)
  image = Image.fromarray(grid).resize(
      (width, height), Image.Resampling.BICUBIC)
  return np.clip(np.asarray(image), -1.0, 1.0)


def make_background(rng: np.random.Generator, height: int,
                    width: int) -> np.ndarray:
  """A float32 RGB background [height, width, 3] in [0, 1].

  One of: solid colour, linear gradient, noise, paper texture (blotches,
  grain and faint ruled lines). The variation around the mean stays within
  about +-0.15 so `contrasting_colour` holds over the whole image.
  """
  light = rng.random() < 0.7
  base = _random_colour(rng, light)
  kind = rng.choice(['solid', 'gradient', 'noise', 'paper'])
  ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
  xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
  if kind == 'solid':
    variation = np.zeros((height, width), np.float32)
  elif kind == 'gradient':
    angle = rng.uniform(0.0, 2.0 * np.pi)
    ramp = np.cos(angle) * xs + np.sin(angle) * ys
    variation = 0.24 * (ramp - ramp.mean()) / max(np.ptp(ramp), 1e-6)
  elif kind == 'noise':
    variation = rng.normal(0.0, rng.uniform(0.02, 0.05),
                           size=(height, width)).astype(np.float32)
  else:
    blotches = 0.06 * _smooth_noise(rng, height, width, int(rng.integers(2, 6)))
    grain = rng.normal(0.0, 0.015, size=(height, width)).astype(np.float32)
    variation = blotches + grain
    if rng.random() < 0.3:
      period = int(rng.integers(8, 24))
      lines = (np.arange(height) % period == 0).astype(np.float32)[:, None]
      variation = variation - 0.08 * lines
  background = base[None, None, :] + variation[..., None]
  return np.clip(background, 0.0, 1.0).astype(np.float32)


def _random_colour(rng: np.random.Generator, light: bool) -> np.ndarray:
  """A tinted grey: light (0.75-1.0) or dark (0.0-0.3)."""
  level = rng.uniform(0.75, 1.0) if light else rng.uniform(0.0, 0.3)
  tint = rng.uniform(-0.08, 0.08, size=3)
  return np.clip(level + tint, 0.0, 1.0).astype(np.float32)


def contrasting_colour(rng: np.random.Generator,
                       background_mean: float) -> np.ndarray:
  """A text colour at least 0.4 away in grey level from the background."""
  if background_mean > 0.5:
    level = rng.uniform(0.0, max(0.05, background_mean - 0.45))
  else:
    level = rng.uniform(min(0.95, background_mean + 0.45), 1.0)
  tint = rng.uniform(-0.05, 0.05, size=3)
  return np.clip(level + tint, 0.0, 1.0).astype(np.float32)
