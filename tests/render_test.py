"""Tests of ocr_jax.data.render: fonts, coverage, no clipping, determinism."""

import numpy as np
from PIL import features, Image, ImageDraw, ImageFont
import pytest

from ocr_jax.data import render

DEJAVU = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf'
# Tall stacks: marks above plus one or two subscripts below.
TALL_TEXTS = (
    '\u179f\u17d2\u178f\u17d2\u179a\u17b8',  # stree, two subscripts
    '\u1782\u17d2\u179a\u17bf\u1784',  # kroeung
    '\u17a1\u17be',  # tall LA with OE
    '\u1789\u17c9\u17bb\u17c6',  # nho + shifter + u + nikahit
    '\u1780\u17d2\u179f\u17d2\u1796\u17c3\u17c7',
    '\u17e0\u17e1\u17e2\u17e3\u17e4\u17e5\u17e6\u17e7',
)


@pytest.fixture(scope='module')
def fonts():
  return render.khmeros_fonts()


def test_khmeros_selection(fonts):
  assert [f.family for f in fonts] == list(render.KHMEROS_FONTS)
  assert len({f.path for f in fonts}) == 8


def test_find_khmer_fonts_lists_only_khmer(fonts):
  everything = render.find_khmer_fonts()
  assert set(fonts) <= set(everything)
  assert all(render.font_covers(f.path, '\u1780') for f in everything)
  assert render.find_khmer_fonts(['No Such Family']) == []


def test_font_lacking_glyphs_is_skipped(fonts):
  if not render.font_covers(DEJAVU, 'abc'):
    pytest.skip('DejaVu Sans not installed')
  assert not render.font_covers(DEJAVU, '\u1780')
  assert render.font_covers(fonts[0].path, '\u1780abc')
  candidates = [render.Font('DejaVu Sans', DEJAVU), fonts[0]]
  assert render.fonts_for_text(candidates, '\u1780\u17b6') == [fonts[0]]
  assert render.fonts_for_text(candidates, '12') == candidates


@pytest.mark.parametrize('width', [None, 128])
def test_nothing_clipped(fonts, width):
  for text in TALL_TEXTS:
    for index, font in enumerate(fonts):
      rng = np.random.default_rng(index)
      image, alpha = render.render_text_and_alpha(text, font.path, rng,
                                                  height=64, width=width)
      assert image.shape[0] == 64 and image.dtype == np.uint8
      if width:
        assert image.shape[1] == width
      assert alpha.max() > 0.9, (text, font.family)
      border = np.concatenate([alpha[0], alpha[-1], alpha[:, 0],
                               alpha[:, -1]])
      assert border.max() < 0.02, (text, font.family)


def test_text_mask_margins(fonts):
  mask = render.text_mask(TALL_TEXTS[0], fonts[4].path,
                          np.random.default_rng(0))
  rows = np.nonzero(mask.max(axis=1) > 0)[0]
  cols = np.nonzero(mask.max(axis=0) > 0)[0]
  margin = int(0.08 * render.RENDER_SIZE)
  assert rows[0] >= margin and rows[-1] < mask.shape[0] - margin
  assert cols[0] >= margin and cols[-1] < mask.shape[1] - margin


def test_deterministic(fonts):
  def draw(seed):
    return render.render_text('\u1780\u17d2\u179a\u17bb\u1784', fonts[1].path,
                              np.random.default_rng(seed))
  np.testing.assert_array_equal(draw(3), draw(3))
  assert not np.array_equal(draw(3), draw(4))


def test_text_contrasts_with_background():
  rng = np.random.default_rng(0)
  for _ in range(200):
    background = render.make_background(rng, 16, 32)
    assert background.shape == (16, 32, 3)
    assert 0.0 <= background.min() and background.max() <= 1.0
    mean = float(background.mean())
    colour = render.contrasting_colour(rng, mean)
    assert abs(float(colour.mean()) - mean) > 0.35


def test_raqm_missing_raises_with_fix(monkeypatch):
  monkeypatch.setattr(features, 'check', lambda name: False)
  with pytest.raises(RuntimeError, match='libraqm'):
    render.check_raqm()


def _draw(text, path, layout):
  font = ImageFont.truetype(path, 48, layout_engine=layout)
  image = Image.new('L', (300, 120))
  ImageDraw.Draw(image).text((40, 80), text, font=font, fill=255,
                             anchor='ls')
  return np.asarray(image)


def test_shaping_draws_pre_base_vowel_first(fonts):
  # KA + vowel E (U+17C1): shaped, E is drawn where KA alone would be and KA
  # moves right; unshaped (basic layout), KA stays put and E follows it.
  path = fonts[1].path
  for layout, moved in ((ImageFont.Layout.RAQM, True),
                        (ImageFont.Layout.BASIC, False)):
    ka = _draw('\u1780', path, layout)
    ka_e = _draw('\u1780\u17c1', path, layout)
    right = np.nonzero(ka.max(axis=0))[0][-1] + 1
    assert np.array_equal(ka[:, :right], ka_e[:, :right]) != moved, layout
