"""Synthetic printed Khmer text lines, rendered on the fly.

`make_sample(seed, index, split)` is a pure function: the same arguments
give a byte-identical `LineSample` in any process and any order, so a
training run can be reproduced and resumed from a sample index alone. There
is no state apart from caches of fonts and corpus.

Text: `text_sampler` (corpus lines of the requested split only, spans,
concatenations, numbers, Latin words). Fonts: `fonts` (every installed Khmer
face that shapes correctly; `fonts.HELD_OUT_FAMILIES` only with
`held_out_fonts=True`, never otherwise). The text and the tier of a sample
do not depend on `held_out_fonts`, so the same index shows the same text in
a training font and in a held-out one.

Tiers (sizes are set by the em, the font size in output pixels, so every
font is drawn at the same scale; a line is about 1.6-2.2 em high):
  clean  em 18-34 px (lines about 30-75 px high), sharp; varied size,
         weight, letter spacing, ink and paper; no degradation beyond a
         faint blur or grain.
  scan   em 12-22 px (lines about 30 px high, 15-55), left at that
         resolution: rendered larger and downsampled like a scanner, or drawn
         straight at the small size like a screenshot; then rotation up to
         +-3 degrees, slight perspective, ink spread, uneven lighting, blur,
         noise, speckle, bitonal thresholding (fax, 1-bit) and JPEG
         artefacts, each at random.
  long   70-140 characters, em 16-26 px, clean-ish (light blur or JPEG at
         times).
The train mixture (`tier=None`) draws a tier with `TIER_WEIGHTS`.

Content (`CONTENTS`):
  text    (default) the texts above.
  digits  strings of 1-8 Khmer digits (U+17E0..U+17E9, no spaces), like
          the prototype's `khmer_digits` dataset, drawn in the same fonts,
          sizes, tiers and degradations. There is no long digit string: the
          mixture gives the 'long' tier's share to 'clean' (long lines are
          drawn clean-ish; `DIGIT_TIER_WEIGHTS`), and forcing tier='long'
          raises ValueError. A share of them (`DIGIT_BOX_SHARE`) is laid
          out like the prototype's crops: the string is fitted into a box
          of width/height `DIGIT_BOX_ASPECT` (2 for its 64 x 128 images)
          at a random position, so a short string sits in wide paper and a
          long one is small in a tall box. The digits and the tier come
          from a random stream of their own, so a digit sample is a pure
          function of (seed, index, split, tier) too, and text samples are
          unchanged. In the train mixture (tier=None) a further share
          (`DIGIT_PROTO_SHARE`) is drawn by the prototype's own renderer
          (`render.render_text_and_alpha`: a fixed 64 x 128 canvas, its
          backgrounds and colours, a third of them dark) in any training
          face, then degraded as its tier (`_proto_image`); forced tiers
          (the evaluation sets) never are.

Crops vary from tight (the ink box plus a pixel or two) to loose (up to an
em of paper on the sides); no ink is ever cut. Images are at most
`MAX_WIDTH` px wide (a longer line is scaled down as a whole).
"""

import dataclasses
import functools

import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

from ocr_jax.data import degrade
from ocr_jax.data import fonts
from ocr_jax.data import render
from ocr_jax.data import text_sampler
from ocr_jax.text import charset
from ocr_jax.text import khmer_normalizer

TIERS = ('clean', 'scan', 'long')
TIER_WEIGHTS = (0.4, 0.45, 0.15)
CONTENTS = ('text', 'digits')
# Digit strings: the tiers they are drawn in, and the train mixture (the
# 'long' share of TIER_WEIGHTS goes to 'clean').
DIGIT_TIERS = ('clean', 'scan')
DIGIT_TIER_WEIGHTS = (0.55, 0.45)
# Digits per string, as the prototype's khmer_digits (1-8).
DIGIT_LENGTH = (1, 8)
# Digit strings fitted into a box (as the prototype's fixed-size crops):
# their share and the box's width / height.
DIGIT_BOX_SHARE = 0.35
DIGIT_BOX_ASPECT = (1.5, 3.0)
# Share of the training digit strings (the mixture, tier=None) drawn in the
# prototype's look (`_proto_image`), and its canvas: khmer_digits'
# IMAGE_HEIGHT x IMAGE_WIDTH (not imported: that module pulls in TFDS).
DIGIT_PROTO_SHARE = 0.3
PROTO_HEIGHT, PROTO_WIDTH = 64, 128
MAX_WIDTH = 2000
LONG_LENGTH = (70, 140)
SHORT_MAX_LENGTH = 70
# Font size (the em) in output pixels, per tier. A line image is about 1.6-2.2
# em high (the Khmer line box is 1.55 em), more when rotated.
CLEAN_EM = (18.0, 34.0)
SCAN_EM = (12.0, 22.0)
LONG_EM = (16.0, 26.0)
# Display faces (heading, poster) and brush faces are rarer in documents.
FAMILY_WEIGHTS = (
    ('Noto Sans Khmer', 2.0),
    ('Khmer OS Muol Light', 0.5),
    ('Khmer OS Muol Pali', 0.5),
    ('Khmer Oureang', 0.5),
)
# Nominal line box in em around the baseline (as render.py).
_LINE_TOP, _LINE_BOTTOM = -1.1, 0.45
_SPLIT_IDS = {split: i for i, split in enumerate(text_sampler.SPLITS)}


@dataclasses.dataclass(frozen=True)
class LineSample:
  """One synthetic line.

  Attributes:
    image: uint8 [h, w, 3] RGB.
    text: the normalised label; every character is in the 'khmer'
      vocabulary (and in 'digits' for digit strings).
    font: the font file name of the face (e.g. 'KhmerOSbattambang.ttf').
    family: the face's family (`fonts.Face.family`).
    tier: 'clean', 'scan' or 'long'.
  """
  image: np.ndarray
  text: str
  font: str
  family: str
  tier: str


# A font object costs about 0.2 MB and 0.05 ms to make: keep few.
@functools.lru_cache(maxsize=128)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
  render.check_raqm()
  return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.RAQM)


@functools.lru_cache(maxsize=None)
def _primary_chars(path: str) -> frozenset[str]:
  return fonts.face_chars(fonts.Face('', '', path))


def font_runs(text: str, face: fonts.Face) -> list[tuple[str, str]]:
  """Splits text into runs drawn by the face or by its fallback.

  Returns:
    (run, font path) pairs in text order: the fallback draws the characters
    the face lacks (Latin letters, digits, punctuation for Noto Khmer).
  """
  if face.fallback is None:
    return [(text, face.path)]
  own = _primary_chars(face.path)
  runs = []
  for char in text:
    path = face.path if char in own else face.fallback
    if runs and runs[-1][1] == path:
      runs[-1] = (runs[-1][0] + char, path)
    else:
      runs.append((char, path))
  return runs


def draw_line(text: str, face: fonts.Face, size: int,
              rng: np.random.Generator, *, spacing: float = 0.0,
              stroke: int = 0, tight: bool = False,
              margin_em: tuple[float, float] = (0.05, 0.5)) -> Image.Image:
  """Draws one line into an 8-bit ink mask (255 = ink) with margins.

  Args:
    text: the text (the face, with its fallback, must cover it).
    face: the face.
    size: the font size in pixels.
    rng: source of the margins.
    spacing: extra space after each cluster, in em (letter spacing).
    stroke: an outline of this many pixels around the glyphs (bolder).
    tight: crop to the ink box (else to the nominal line box and the ink).
    margin_em: range of the random margins, in em, left and right; top and
      bottom get half of it.

  Returns:
    The mask; nothing of the ink is cut.
  """
  pieces = []
  for run, path in font_runs(text, face):
    font = _font(path, size)
    chunks = khmer_normalizer.split_clusters(run) if spacing else [run]
    pieces.extend((chunk, font) for chunk in chunks)
  x = 0.0
  placed = []
  ink = [np.inf, np.inf, -np.inf, -np.inf]
  for chunk, font in pieces:
    if chunk.strip():
      left, top, right, bottom = font.getbbox(chunk, anchor='ls',
                                              stroke_width=stroke)
      ink = [min(ink[0], x + left), min(ink[1], top),
             max(ink[2], x + right), max(ink[3], bottom)]
      placed.append((x, chunk, font))
    x += font.getlength(chunk) + spacing * size
  if not placed:
    raise ValueError(f'nothing to draw in {text!r}')
  if not tight:
    ink = [min(ink[0], 0.0), min(ink[1], _LINE_TOP * size),
           max(ink[2], x - spacing * size), max(ink[3], _LINE_BOTTOM * size)]
  margins = rng.uniform(*margin_em, size=4) * size
  margins[1:4:2] *= 0.5  # Top and bottom.
  if tight:
    margins = rng.uniform(0.0, 2.0, size=4) + stroke
  x0 = np.floor(ink[0] - margins[0])
  y0 = np.floor(ink[1] - margins[1])
  width = int(np.ceil(ink[2] + margins[2] - x0))
  height = int(np.ceil(ink[3] + margins[3] - y0))
  mask = Image.new('L', (width, height), 0)
  draw = ImageDraw.Draw(mask)
  for left, chunk, font in placed:
    draw.text((left - x0, -y0), chunk, fill=255, font=font, anchor='ls',
              stroke_width=stroke, stroke_fill=255)
  return mask


def _scale(mask: Image.Image, size: int, em: float, stretch: float,
           rng: np.random.Generator) -> Image.Image:
  """Resizes a mask drawn at font size `size` so the em becomes `em` px.

  The width is also stretched by `stretch`; a line wider than MAX_WIDTH is
  scaled down as a whole to fit.
  """
  w, h = mask.size
  scale = em / size
  width = w * scale * stretch
  if width > MAX_WIDTH:
    scale *= MAX_WIDTH / width
    width = MAX_WIDTH
  height = max(8, int(round(h * scale)))
  return degrade.resize(mask, int(min(MAX_WIDTH, max(1, round(width)))),
                        height, rng)


def _max_angle(mask: Image.Image) -> float:
  """Rotation limit: +-3 degrees, less for long lines so that the drift
  across the line stays within about half the line height."""
  w, h = mask.size
  return min(3.0, float(np.degrees(np.arctan(0.5 * h / max(w, 1)))))


def fit_box(mask: Image.Image, aspect: float,
            rng: np.random.Generator) -> Image.Image:
  """Pads a mask with paper to width / height = `aspect`.

  As a string fitted into a fixed-size crop: the mask keeps its scale and
  lands at a uniformly random position in the box.
  """
  w, h = mask.size
  box_w = max(w, int(round(h * aspect)))
  box_h = max(h, int(round(w / aspect)))
  box = Image.new('L', (box_w, box_h), 0)
  box.paste(mask, (int(rng.integers(0, box_w - w + 1)),
                   int(rng.integers(0, box_h - h + 1))))
  return box


def _clean_image(text, face, rng, em_range, light_degradation, box=None):
  """Sharp text; at most a faint blur or mild JPEG (`light_degradation`).

  `box`: None, or the aspect of a box to fit the line into (`fit_box`).
  """
  em = rng.uniform(*em_range)
  size = int(np.clip(round(em * rng.uniform(1.0, 2.0)), 8, 160))
  spacing = rng.uniform(-0.02, 0.15) if rng.random() < 0.2 else 0.0
  stroke = 1 if size >= 28 and rng.random() < 0.1 else 0
  mask = draw_line(text, face, size, rng, spacing=spacing, stroke=stroke,
                   tight=rng.random() < 0.15)
  if box is not None:
    mask = fit_box(mask, box, rng)
  mask = _scale(mask, size, em, rng.uniform(0.9, 1.1), rng)
  image = degrade.composite(degrade.from_image(mask), rng,
                            light_paper=rng.random() < 0.8)
  if rng.random() < 0.25:
    image = degrade.gaussian_noise(image, rng, rng.uniform(0.005, 0.025))
  pil = Image.fromarray(degrade.to_uint8(image))
  if rng.random() < light_degradation:
    pil = degrade.blur(pil, rng.uniform(0.2, 0.6))
  if rng.random() < light_degradation:
    pil = degrade.jpeg(pil, int(rng.integers(50, 95)))
  return np.asarray(pil.convert('RGB'))


def _scan_image(text, face, rng, box=None):
  """Low resolution (an em of 12-22 px, lines about 30 px) and degraded.

  `box`: None, or the aspect of a box to fit the line into (`fit_box`).
  """
  em = float(np.clip(rng.normal(15.0, 2.5), *SCAN_EM))
  # Scanners and cameras see the page sharper than the final pixels
  # (downsampled); screenshots draw straight at the small size.
  oversample = 1.0 if rng.random() < 0.2 else rng.uniform(1.5, 3.0)
  size = int(round(em * oversample))
  spacing = rng.uniform(-0.02, 0.12) if rng.random() < 0.15 else 0.0
  mask = draw_line(text, face, size, rng, spacing=spacing,
                   tight=rng.random() < 0.25, margin_em=(0.02, 0.6))
  if box is not None:
    mask = fit_box(mask, box, rng)
  if oversample > 1.0 and rng.random() < 0.3:
    mask = degrade.ink_spread(mask, rng)
  if rng.random() < 0.6:
    limit = _max_angle(mask)
    mask = degrade.rotate(mask, rng.uniform(-limit, limit))
  if rng.random() < 0.3:
    mask = degrade.perspective(mask, rng, rng.uniform(0.02, 0.08))
  mask = _scale(mask, size, em, rng.uniform(0.85, 1.15), rng)
  is_bitonal = rng.random() < 0.25
  light_paper = rng.random() < 0.95
  image = degrade.composite(degrade.from_image(mask), rng,
                            light_paper=light_paper)
  h, w = image.shape[:2]
  # A fax or 1-bit scan of a shadowed page turns the shadow black: only
  # gentle lighting before thresholding.
  if rng.random() < (0.15 if is_bitonal else 0.5):
    image = image * degrade.lighting(rng, h, w)
  pil = Image.fromarray(degrade.to_uint8(image))
  if rng.random() < 0.6:
    # Blur in proportion to the glyphs: 0.3-1 px at an em of 16 px.
    pil = degrade.blur(pil, rng.uniform(0.3, 1.0) * em / 16.0)
  elif rng.random() < 0.15:
    pil = degrade.motion_blur(pil, rng)
  image = np.asarray(pil, np.float32) * (1.0 / 255.0)
  if rng.random() < 0.5:
    image = degrade.gaussian_noise(image, rng, rng.uniform(0.01, 0.07))
  if rng.random() < 0.25:
    image = degrade.speckle(image, rng, rng.uniform(0.002, 0.015))
  if is_bitonal:
    image = degrade.bitonal(np.clip(image, 0.0, 1.0), rng,
                            light_paper=light_paper)
  pil = Image.fromarray(degrade.to_uint8(image))
  if rng.random() < (0.15 if is_bitonal else 0.5):
    pil = degrade.jpeg(pil, int(rng.integers(15, 80)))
  return np.asarray(pil.convert('RGB'))


def _proto_image(text, face, rng, tier):
  """The prototype's khmer_digits look in any face, degraded as `tier`.

  Drawn as khmer_digits' `make_example` draws (the string at 48 px, scaled
  to fit a PROTO_HEIGHT x PROTO_WIDTH canvas at a random offset over a
  procedural background), so the reader learns that layout and palette in
  every face. 'clean': at most a faint blur, grain or JPEG. 'scan': left at
  a lower resolution (0.35-0.9 of the canvas), then blur, noise, speckle,
  bitonal thresholding and JPEG at random (as `_scan_image`).
  """
  image, _ = render.render_text_and_alpha(text, face.path, rng,
                                          height=PROTO_HEIGHT,
                                          width=PROTO_WIDTH)
  pil = Image.fromarray(image)
  if tier == 'clean':
    if rng.random() < 0.2:
      pil = degrade.blur(pil, rng.uniform(0.2, 0.6))
    if rng.random() < 0.2:
      pil = degrade.jpeg(pil, int(rng.integers(50, 95)))
    return np.asarray(pil.convert('RGB'))
  scale = rng.uniform(0.35, 0.9)
  pil = degrade.resize(pil, int(round(PROTO_WIDTH * scale)),
                       int(round(PROTO_HEIGHT * scale)), rng)
  if rng.random() < 0.5:
    pil = degrade.blur(pil, rng.uniform(0.2, 0.8) * scale)
  image = np.asarray(pil, np.float32) * (1.0 / 255.0)
  if rng.random() < 0.5:
    image = degrade.gaussian_noise(image, rng, rng.uniform(0.01, 0.06))
  if rng.random() < 0.2:
    image = degrade.speckle(image, rng, rng.uniform(0.002, 0.01))
  is_bitonal = rng.random() < 0.15
  if is_bitonal:
    image = degrade.bitonal(np.clip(image, 0.0, 1.0), rng,
                            light_paper=float(np.median(image)) > 0.5)
  pil = Image.fromarray(degrade.to_uint8(image))
  if rng.random() < (0.15 if is_bitonal else 0.5):
    pil = degrade.jpeg(pil, int(rng.integers(20, 80)))
  return np.asarray(pil.convert('RGB'))


def _rngs(seed: int, index: int, split: str, held_out_fonts: bool,
          tier: str | None, content: str):
  if seed < 0 or index < 0:
    raise ValueError(f'seed and index must be >= 0, got {seed}, {index}')
  if split not in _SPLIT_IDS:
    raise ValueError(f'unknown split {split!r}; valid: {text_sampler.SPLITS}')
  if content not in CONTENTS:
    raise ValueError(f'unknown content {content!r}; valid: {CONTENTS}')
  tiers = TIERS if content == 'text' else DIGIT_TIERS
  if tier is not None and tier not in tiers:
    raise ValueError(f'unknown tier {tier!r} for {content}; valid: {tiers} '
                     'or None')
  tier_id = 0 if tier is None else 1 + TIERS.index(tier)
  key = [seed, index, _SPLIT_IDS[split], tier_id]
  # The text does not depend on the fonts; the image does. Digit strings
  # use streams 3 and 4-5, so that text samples (0 and 1-2) are unchanged.
  first = 0 if content == 'text' else 3
  return (np.random.default_rng(key + [first]),
          np.random.default_rng(key + [first + 1 + int(held_out_fonts)]))


def digit_string(rng: np.random.Generator) -> str:
  """1-8 random Khmer digits (`DIGIT_LENGTH`), as the prototype's."""
  length = int(rng.integers(DIGIT_LENGTH[0], DIGIT_LENGTH[1] + 1))
  return ''.join(charset.KHMER_DIGITS[d] for d in rng.integers(0, 10, length))


def _text_and_tier(rng: np.random.Generator, split: str, tier: str | None,
                   content: str) -> tuple[str, str]:
  """The label and the tier (drawn from the mixture when None)."""
  if content == 'digits':
    if tier is None:
      tier = DIGIT_TIERS[int(rng.choice(len(DIGIT_TIERS),
                                        p=DIGIT_TIER_WEIGHTS))]
    return digit_string(rng), tier
  if tier is None:
    tier = TIERS[int(rng.choice(len(TIERS), p=TIER_WEIGHTS))]
  if tier == 'long':
    return text_sampler.long_text(rng, split, *LONG_LENGTH), tier
  return text_sampler.sample_text(rng, split,
                                  max_length=SHORT_MAX_LENGTH), tier


def make_sample(seed: int, index: int, split: str, *,
                held_out_fonts: bool = False,
                tier: str | None = None,
                content: str = 'text') -> LineSample:
  """Renders sample `index` of `split` (a pure function of its arguments).

  Args:
    seed: the data seed (>= 0).
    index: the sample index (>= 0); any index is valid.
    split: 'train', 'validation' or 'test': the corpus split the text is
      drawn from.
    held_out_fonts: False draws only training font families, True only
      `fonts.HELD_OUT_FAMILIES`.
    tier: None for the train mixture (`TIER_WEIGHTS`), or one of `TIERS` to
      force it (evaluation sets); digit strings: `DIGIT_TIER_WEIGHTS` and
      `DIGIT_TIERS`.
    content: one of `CONTENTS`: 'text' or 'digits' (digit strings; the
      split then only seeds the draw, since no corpus text is used).

  Returns:
    The sample.
  """
  text_rng, image_rng = _rngs(seed, index, split, held_out_fonts, tier,
                              content)
  # Only the train mixture draws the prototype's look: the forced-tier
  # (evaluation) sets stay as they were.
  proto = (content == 'digits' and tier is None
           and text_rng.random() < DIGIT_PROTO_SHARE)
  text, tier = _text_and_tier(text_rng, split, tier, content)
  face = fonts.choose_face(image_rng, text, held_out=held_out_fonts,
                           family_weights=FAMILY_WEIGHTS)
  if proto:
    return LineSample(image=_proto_image(text, face, image_rng, tier),
                      text=text, font=face.file, family=face.family,
                      tier=tier)
  box = None
  if content == 'digits' and image_rng.random() < DIGIT_BOX_SHARE:
    box = image_rng.uniform(*DIGIT_BOX_ASPECT)
  if tier == 'clean':
    image = _clean_image(text, face, image_rng, CLEAN_EM, 0.1, box)
  elif tier == 'long':
    image = _clean_image(text, face, image_rng, LONG_EM, 0.3)
  else:
    image = _scan_image(text, face, image_rng, box)
  return LineSample(image=image, text=text, font=face.file,
                    family=face.family, tier=tier)
