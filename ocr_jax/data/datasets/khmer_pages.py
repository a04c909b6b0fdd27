"""TFDS builder `khmer_pages`: synthetic pages of Khmer text with line boxes.

Each page is an A4 sheet at `dpi` (default 150) with a heading, paragraphs
of corpus text of the split (`text_sampler.long_text`, with its Latin and
numbers), one or two columns, mixed font sizes, indented first lines, a
page number, and a few non-text blobs (rules, boxes, a stamp). The fonts
are those of the text lines (`fonts.choose_face`). Degradations, per page:
skew within +-3 degrees, scan noise, uneven light, JPEG, or bitonal.

Features:
  image:    uint8 [height, width, 3], PNG.
  texts:    the lines' text, in reading order.
  boxes:    int32 [lines, 4] (x0, y0, x1, y1) ink boxes on the skewed page
            (boxes around the rotated line boxes), in reading order.
  straight_boxes: int32 [lines, 4] the same boxes before the skew.
  angle:    float32, the skew (degrees, counter-clockwise).
  columns:  int32, 1 or 2.

`make_page(seed, index, split)` renders one page as a pure function of its
arguments, so that the same version and seed give identical records.
Builder kwargs: `seed`, `split_sizes` (merged into `SPLIT_SIZES`; a size of
0 leaves the split out, e.g. {'train': 2, 'validation': 0, 'test': 0} for
tests), `dpi`, `degrade` (False for clean pages); non-default values must
go to their own data_dir (they are not part of its path).
"""

from collections.abc import Mapping
import dataclasses
import functools
import io

from etils import epath
import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont
import tensorflow_datasets as tfds

from ocr_jax.data import fonts
from ocr_jax.data import synth_lines
from ocr_jax.data import text_sampler
from ocr_jax.text import khmer_normalizer

SPLIT_SIZES = {'train': 2000, 'validation': 50, 'test': 50}
SPLIT_IDS = {'train': 0, 'validation': 1, 'test': 2}
A4_INCHES = (8.27, 11.69)
MAX_SKEW = 3.0


@dataclasses.dataclass
class PageSample:
  image: np.ndarray
  texts: list[str]
  boxes: np.ndarray
  straight_boxes: np.ndarray
  angle: float
  columns: int


@functools.lru_cache(maxsize=256)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
  return ImageFont.truetype(path, size)


def _width(text: str, face: fonts.Face, size: int) -> float:
  return sum(_font(path, size).getlength(run)
             for run, path in synth_lines.font_runs(text, face))


def wrap(text: str, face: fonts.Face, size: int, width: float,
         first_indent: float = 0.0) -> list[str]:
  """Greedy wrap by clusters (Khmer has no spaces between words)."""
  clusters = khmer_normalizer.split_clusters(text)
  lines = []
  while clusters:
    limit = width - (first_indent if not lines else 0.0)
    lo, hi = 1, len(clusters)
    while lo < hi:  # The most clusters that fit.
      mid = (lo + hi + 1) // 2
      if _width(''.join(clusters[:mid]), face, size) <= limit:
        lo = mid
      else:
        hi = mid - 1
    line = ''.join(clusters[:lo]).strip()
    clusters = clusters[lo:]
    if line:
      lines.append(line)
  return lines


def _draw(ink: np.ndarray, text: str, face, size, x, y, rng):
  """Pastes a line's ink at (x, top y); returns its ink box or None."""
  mask = np.asarray(synth_lines.draw_line(text, face, size, rng,
                                          margin_em=(0.0, 0.0)))
  height, width = ink.shape
  h, w = mask.shape
  x, y = int(x), int(y)
  if x + w > width or y + h > height:
    return None
  region = ink[y:y + h, x:x + w]
  np.maximum(region, mask, out=region)
  ys, xs = np.nonzero(mask > 64)
  if not len(ys):
    return None
  return (x + xs.min(), y + ys.min(), x + xs.max() + 1, y + ys.max() + 1)


def _blobs(draw: ImageDraw.ImageDraw, rng, width, height, margin):
  """A stamp or box in the bottom margin, a rule at the foot."""
  if rng.random() < 0.5:
    r = int(margin * 0.3)
    cx = int(rng.uniform(margin + r, width - margin - r))
    draw.ellipse((cx - r, height - margin * 0.9, cx + r,
                  height - margin * 0.9 + 2 * r), outline=160,
                 width=max(2, r // 8))
  if rng.random() < 0.5:
    y = int(height - margin * 1.05)
    draw.line((margin, y, width - margin, y), fill=255,
              width=max(1, int(margin * 0.02)))


def make_page(seed: int, index: int, split: str, *, dpi: int = 150,
              degrade: bool = True, skew: bool = True,
              held_out_fonts: bool = False) -> PageSample:
  """Renders page `index` of `split` (see the module docstring)."""
  rng = np.random.default_rng(np.random.SeedSequence(
      [seed, SPLIT_IDS[split], index, dpi, int(held_out_fonts)]))
  width, height = (round(v * dpi) for v in A4_INCHES)
  margin = 0.08 * width
  columns = 2 if rng.random() < 0.4 else 1
  gutter = 0.04 * width
  column_width = (width - 2 * margin - (columns - 1) * gutter) / columns
  ink = np.zeros((height, width), np.uint8)
  entries = []  # (text, box) in reading order.
  body = int(rng.uniform(10, 14) * dpi / 72)
  face = fonts.choose_face(rng, 'កខ', held_out=held_out_fonts)
  heading = text_sampler.sample_text(rng, split, max_length=30)
  if fonts.can_draw(face, heading):
    size = int(body * rng.uniform(1.4, 1.9))
    for line in wrap(heading, face, size, width - 2 * margin)[:2]:
      box = _draw(ink, line, face, size, margin, margin +
                  sum(1 for _ in entries) * size * 1.5, rng)
      if box:
        entries.append((line, box))
  top = margin + (len(entries) + 0.8) * body * 2.2
  bottom = height - 1.2 * margin
  for column in range(columns):
    x, y = margin + column * (column_width + gutter), top
    while y + body * 2 < bottom:
      text = text_sampler.long_text(rng, split)
      if not fonts.can_draw(face, text):
        text = ''.join(c for c in text if c in fonts.face_chars(face))
      indent = body * 1.5 if rng.random() < 0.5 else 0.0
      for k, line in enumerate(wrap(text, face, body, column_width * 0.97,
                                    indent)):
        if y + body * 2 >= bottom:
          break
        box = _draw(ink, line, face, body, x + (indent if k == 0 else 0),
                    y, rng)
        if box:
          entries.append((line, box))
        y += body * 1.9
      y += body * 0.8  # Paragraph gap.
  number = str(index + 1)
  if rng.random() < 0.5:
    number = number.translate(str.maketrans('0123456789', '០១២៣៤៥៦៧៨៩'))
  if fonts.can_draw(face, number):
    box = _draw(ink, number, face, body, width / 2, height - margin * 0.8,
                rng)
    if box:
      entries.append((number, box))
  mask = Image.fromarray(ink)
  _blobs(ImageDraw.Draw(mask), rng, width, height, margin)
  angle = float(rng.uniform(-MAX_SKEW, MAX_SKEW))
  angle = angle if degrade and skew else 0.0
  image = _render(np.asarray(mask), rng, angle, degrade)
  straight = np.array([box for _, box in entries], np.int32).reshape(-1, 4)
  return PageSample(image, [t for t, _ in entries],
                    _rotate_boxes(straight, angle, width, height), straight,
                    angle, columns)


def _rotate_boxes(boxes, angle, width, height):
  """Boxes around the boxes rotated counter-clockwise about the centre."""
  if angle == 0.0 or not len(boxes):
    return boxes
  theta = np.radians(angle)
  out = []
  for x0, y0, x1, y1 in boxes:
    corners = np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], float)
    p = corners - (width / 2, height / 2)
    x = p[:, 0] * np.cos(theta) + p[:, 1] * np.sin(theta) + width / 2
    y = -p[:, 0] * np.sin(theta) + p[:, 1] * np.cos(theta) + height / 2
    out.append((np.floor(x.min()), np.floor(y.min()), np.ceil(x.max()),
                np.ceil(y.max())))
  return np.clip(np.array(out), 0, [width, height, width, height]).astype(
      np.int32)


def _render(ink: np.ndarray, rng, angle: float, degrade: bool) -> np.ndarray:
  """Ink mask -> RGB page: paper, ink, skew, noise, light, JPEG, bitonal."""
  if angle:
    ink = np.asarray(Image.fromarray(ink).rotate(
        angle, resample=Image.Resampling.BILINEAR))
  paper = 250.0 - (rng.uniform(0, 25) if degrade else 0.0)
  gray = paper - ink.astype(np.float32) / 255.0 * (paper - 15.0)
  if degrade:
    h, w = gray.shape
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    light = 1.0 - rng.uniform(0, 0.25) * (
        np.cos(rng.uniform(0, 6.3)) * xx + np.sin(rng.uniform(0, 6.3)) * yy)
    gray = gray * light + rng.normal(0, rng.uniform(0, 10), gray.shape)
  gray = np.clip(gray, 0, 255).astype(np.uint8)
  if degrade and rng.random() < 0.2:  # Bitonal scan.
    gray = np.where(gray < 128, 0, 255).astype(np.uint8)
  image = Image.fromarray(gray).convert('RGB')
  if degrade and rng.random() < 0.5:
    encoded = io.BytesIO()
    image.save(encoded, 'JPEG', quality=int(rng.integers(40, 90)))
    image = Image.open(encoded).convert('RGB')
  return np.asarray(image)


class KhmerPages(tfds.core.GeneratorBasedBuilder):
  """Synthetic Khmer pages with line boxes (see the module docstring)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First version.'}

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    # As in khmer_text: the default probes the `importlib_resources`
    # package, which tensorflow-datasets does not declare.
    return epath.Path(__file__)

  def __init__(self, *, seed: int = 0,
               split_sizes: Mapping[str, int] | None = None,
               dpi: int = 150, degrade: bool = True, **kwargs):
    unknown = set(split_sizes or {}) - set(SPLIT_SIZES)
    if unknown:
      raise ValueError(f'unknown splits {sorted(unknown)}')
    self._seed = seed
    self._split_sizes = {**SPLIT_SIZES, **(split_sizes or {})}
    self._dpi = dpi
    self._degrade = degrade
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(shape=(None, None, 3)),
            'texts': tfds.features.Sequence(tfds.features.Text()),
            'boxes': tfds.features.Tensor(shape=(None, 4), dtype=np.int32),
            'straight_boxes': tfds.features.Tensor(shape=(None, 4),
                                                   dtype=np.int32),
            'angle': tfds.features.Scalar(dtype=np.float32),
            'columns': tfds.features.Scalar(dtype=np.int32),
        }),
        description=__doc__)

  def _split_generators(self, dl_manager):
    del dl_manager  # Rendered locally.
    return {split: self._generate_examples(split)
            for split, size in self._split_sizes.items() if size}

  def _generate_examples(self, split):
    for index in range(self._split_sizes[split]):
      page = make_page(self._seed, index, split, dpi=self._dpi,
                       degrade=self._degrade)
      yield index, {'image': page.image, 'texts': page.texts,
                    'boxes': page.boxes,
                    'straight_boxes': page.straight_boxes,
                    'angle': page.angle, 'columns': page.columns}
