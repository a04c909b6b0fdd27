"""The inventory of installed Khmer fonts, grouped into families.

A *face* is one font file; a *family* is the unit that is sampled and held
out: every KhmerOS family is a family of its own, all the SIL Busra variants
('Khmer Busra', 'Khmer Busra dot', 'Khmer Busra high', ...) form the family
'Khmer Busra', and every width and weight of Noto Sans Khmer (or Noto Serif
Khmer) is one family.

`HELD_OUT_FAMILIES` are never trained on: they measure how well a model reads
fonts it has never seen.

The Noto Khmer faces hold only Khmer glyphs (no digits, Latin letters or
ASCII punctuation). As a browser or word processor would, each Noto face gets
a *fallback* face that draws what it lacks: the Noto Sans (or Noto Serif)
face of the same width and weight. Other faces draw everything themselves.

Each face is checked once per process: it must map the Khmer letters, carry
an OpenType 'khmr' shaping table, stack a subscript consonant under its base
when shaped by libraqm (a face drawn unshaped would teach wrong pictures)
and draw the space without ink. Faces that fail are skipped, and so are the
`EXCLUDED_FACES`, whose faults were found by looking at their renders.

Debian packages: fonts-khmeros, fonts-sil-mondulkiri,
fonts-sil-mondulkiri-extra, fonts-noto-core, fonts-noto-extra.
"""

from collections.abc import Sequence
import dataclasses
import functools
import os

from fontTools import ttLib
import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

from ocr_jax.data import render

# Families never trained on (all their faces).
HELD_OUT_FAMILIES = ('Noto Serif Khmer', 'Khmer Busra')
DEBIAN_PACKAGES = ('fonts-khmeros', 'fonts-sil-mondulkiri',
                   'fonts-sil-mondulkiri-extra', 'fonts-noto-core',
                   'fonts-noto-extra')
# fontconfig family names of faces never used, with the reason.
EXCLUDED_FACES = {
    # ក + ើ (U+17BE) is drawn like ក + េ: the label would not match the image.
    'Khmer OS Muol': 'draws KA + OE like KA + E',
    # Debugging variants of Busra: visible marks where there is no text.
    'Khmer Busra diagnostic': 'draws the space as an underscore',
    'Khmer Busra xspace': 'draws the space as an underscore',
    'Khmer Busra dot': 'draws dotted circles in COENG RO clusters',
}
# fontconfig family names that are grouped under a shorter family name.
_FAMILY_PREFIXES = ('Khmer Busra',)
# Khmer face file prefix -> Latin fallback file prefix (same folder).
_FALLBACK_PREFIXES = (('NotoSansKhmer-', 'NotoSans-'),
                      ('NotoSerifKhmer-', 'NotoSerif-'))
# Consonants every Khmer face must map.
_KHMER_LETTERS = ''.join(chr(c) for c in range(0x1780, 0x17A3))


@dataclasses.dataclass(frozen=True)
class Face:
  """One font file.

  Attributes:
    family: the family it is sampled and held out with.
    name: fontconfig's family name of the file ('Khmer Busra dot').
    path: the font file.
    fallback: a font file drawing the characters `path` lacks, or None.
  """
  family: str
  name: str
  path: str
  fallback: str | None = None

  @property
  def file(self) -> str:
    """The font file name, without its folder."""
    return os.path.basename(self.path)


class NoKhmerFontError(RuntimeError):
  """No usable Khmer font is installed."""


def family_of(name: str) -> str:
  """The sampling family of a fontconfig family name."""
  for prefix in _FAMILY_PREFIXES:
    if name.startswith(prefix):
      return prefix
  return name


def _fallback_path(path: str) -> str | None:
  base = os.path.basename(path)
  for khmer, latin in _FALLBACK_PREFIXES:
    if base.startswith(khmer):
      folder = os.path.dirname(path)
      for candidate in (latin + base[len(khmer):], latin + 'Regular.ttf'):
        candidate = os.path.join(folder, candidate)
        if os.path.exists(candidate):
          return candidate
  return None


@functools.lru_cache(maxsize=None)
def _has_khmer_gsub(path: str) -> bool:
  with ttLib.TTFont(path, lazy=True) as font:
    if 'GSUB' not in font:
      return False
    records = font['GSUB'].table.ScriptList.ScriptRecord
    return any(r.ScriptTag == 'khmr' for r in records)


@functools.lru_cache(maxsize=None)
def shapes_khmer(path: str) -> bool:
  """True when libraqm shapes the face correctly, as far as checked.

  Unshaped, KA COENG KA is drawn as three glyphs side by side; shaped, the
  second KA becomes a subscript below the first, so the advance stays that of
  one KA and the ink reaches further down. The space must add no ink.
  """
  if not render.font_covers(path, _KHMER_LETTERS + '\u17d2'):
    return False
  if not _has_khmer_gsub(path):
    return False
  render.check_raqm()
  font = ImageFont.truetype(path, 48, layout_engine=ImageFont.Layout.RAQM)
  single = font.getlength('\u1780')
  stacked = font.getlength('\u1780\u17d2\u1780')
  below = font.getbbox('\u1780\u17d2\u1780', anchor='ls')[3]
  base_below = font.getbbox('\u1780', anchor='ls')[3]
  return (stacked < 1.3 * single and below > base_below + 4 and
          _ink(font, '\u1780 \u1780') <= 2.02 * _ink(font, '\u1780'))


def _ink(font: ImageFont.FreeTypeFont, text: str) -> float:
  """The total ink of text drawn in the font."""
  left, top, right, bottom = font.getbbox(text, anchor='ls')
  image = Image.new('L', (right - left + 2, bottom - top + 2), 0)
  ImageDraw.Draw(image).text((1 - left, 1 - top), text, fill=255, font=font,
                             anchor='ls')
  return float(np.asarray(image, np.float64).sum())


@functools.lru_cache(maxsize=None)
def all_faces() -> tuple[Face, ...]:
  """Every installed Khmer face that shapes correctly, sorted by path.

  Raises:
    NoKhmerFontError: when none is installed.
  """
  faces = []
  for font in render.find_khmer_fonts():
    if font.family in EXCLUDED_FACES or not shapes_khmer(font.path):
      continue
    faces.append(Face(family_of(font.family), font.family, font.path,
                      _fallback_path(font.path)))
  if not faces:
    raise NoKhmerFontError(
        'No Khmer font that libraqm can shape is installed. Install them '
        'with `apt-get install ' + ' '.join(DEBIAN_PACKAGES) + '`.')
  # Sorted by path so the inventory order never depends on fontconfig.
  return tuple(sorted(faces, key=lambda f: f.path))


def families(held_out: bool | None = None) -> dict[str, tuple[Face, ...]]:
  """Faces grouped by family, families sorted by name.

  Args:
    held_out: None for every family, False for the training families only,
      True for `HELD_OUT_FAMILIES` only.
  """
  return dict(_families(held_out))


@functools.lru_cache(maxsize=None)
def _families(held_out: bool | None) -> tuple[tuple[str, tuple[Face, ...]]]:
  grouped = {}
  for face in all_faces():
    if held_out is None or (face.family in HELD_OUT_FAMILIES) == held_out:
      grouped.setdefault(face.family, []).append(face)
  if not grouped:
    which = 'held-out' if held_out else 'training'
    raise NoKhmerFontError(
        f'No {which} Khmer font family is installed (held out: '
        f'{HELD_OUT_FAMILIES}). Install ' + ' '.join(DEBIAN_PACKAGES) + '.')
  return tuple((name, tuple(grouped[name])) for name in sorted(grouped))


@functools.lru_cache(maxsize=None)
def _cmap(path: str) -> frozenset[int]:
  with ttLib.TTFont(path, lazy=True) as font:
    return frozenset(font.getBestCmap())


@functools.lru_cache(maxsize=None)
def face_chars(face: Face) -> frozenset[str]:
  """The characters the face draws, its fallback's included."""
  codes = _cmap(face.path)
  if face.fallback:
    codes = codes | _cmap(face.fallback)
  return frozenset(chr(c) for c in codes)


def can_draw(face: Face, text: str) -> bool:
  """True when the face (with its fallback) has a glyph for every char."""
  return face_chars(face).issuperset(text)


def choose_face(rng: np.random.Generator, text: str, *,
                held_out: bool = False,
                family_weights: Sequence[tuple[str, float]] = ()) -> Face:
  """A face that can draw `text`: a random family, then a random face.

  Families whose faces cannot draw the text are skipped.

  Args:
    rng: the source of randomness.
    text: the text to draw.
    held_out: draw from `HELD_OUT_FAMILIES` (True) or the others (False).
    family_weights: (family, weight) pairs changing the default weight 1.

  Raises:
    NoKhmerFontError: when no face of the selection can draw the text.
  """
  grouped = families(held_out)
  names = list(grouped)
  weights = dict(family_weights)
  p = np.array([weights.get(n, 1.0) for n in names], np.float64)
  order = rng.choice(len(names), size=len(names), replace=False, p=p / p.sum())
  for i in order:
    usable = [f for f in grouped[names[i]] if can_draw(f, text)]
    if usable:
      return usable[int(rng.integers(len(usable)))]
  missing = sorted(set(text) - set().union(
      *(face_chars(f) for fs in grouped.values() for f in fs)))
  raise NoKhmerFontError(f'no font draws {text!r} (missing: {missing})')
