"""Tests of ocr_jax.data.fonts: families, held-out split, checks, fallback.

They use the fonts .ci/run installs (fonts-khmeros, fonts-sil-mondulkiri,
fonts-sil-mondulkiri-extra, fonts-noto-core, fonts-noto-extra).
"""

import os

import numpy as np
import pytest

from ocr_jax.data import fonts
from ocr_jax.data import render


def _files(family):
  return {face.file for face in fonts.families()[family]}


def test_families_group_faces():
  grouped = fonts.families()
  # Every KhmerOS family is its own family.
  assert _files('Khmer OS Battambang') == {'KhmerOSbattambang.ttf'}
  # The Busra variants of both packages form one family.
  assert {'Busra-R.ttf', 'Busra-B.ttf', 'Mo5V56Bu.ttf'} <= _files('Khmer Busra')
  # Every width and weight of Noto Sans Khmer is one family.
  noto = _files('Noto Sans Khmer')
  assert {'NotoSansKhmer-Regular.ttf', 'NotoSansKhmer-Bold.ttf',
          'NotoSansKhmer-CondensedThin.ttf'} <= noto
  assert len(noto) >= 9
  assert 'Khmer Mondulkiri' in grouped and 'Khmer Ratanakiri' in grouped
  assert list(grouped) == sorted(grouped)


def test_held_out_split():
  held_out = fonts.families(held_out=True)
  training = fonts.families(held_out=False)
  assert set(held_out) == set(fonts.HELD_OUT_FAMILIES)
  assert not set(held_out) & set(training)
  assert set(held_out) | set(training) == set(fonts.families())
  assert len(training) >= 8


def test_faulty_faces_are_skipped():
  names = {face.name for face in fonts.all_faces()}
  assert not names & set(fonts.EXCLUDED_FACES)
  assert 'Khmer OS Muol Light' in names


def test_shaping_check():
  assert fonts.shapes_khmer('/usr/share/fonts/truetype/khmeros/KhmerOS.ttf')
  # The Busra variant that draws spaces as underscores fails on its own.
  assert not fonts.shapes_khmer(
      '/usr/share/fonts/truetype/mondulkiri/Mo5V56xs.ttf')
  latin = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf'
  if os.path.exists(latin):
    assert not fonts.shapes_khmer(latin)  # No Khmer glyphs at all.


def test_noto_khmer_falls_back_for_latin_and_digits():
  noto = next(f for f in fonts.all_faces()
              if f.file == 'NotoSansKhmer-Bold.ttf')
  assert os.path.basename(noto.fallback) == 'NotoSans-Bold.ttf'
  assert not render.font_covers(noto.path, 'A1')
  assert fonts.can_draw(noto, '\u1780 A1 %')
  khmeros = next(f for f in fonts.all_faces() if f.file == 'KhmerOS.ttf')
  assert khmeros.fallback is None and fonts.can_draw(khmeros, 'A1')


@pytest.mark.parametrize('held_out', [False, True])
def test_choose_face_respects_held_out(held_out):
  rng = np.random.default_rng(0)
  seen = set()
  for _ in range(300):
    face = fonts.choose_face(rng, '\u1780\u17b6 Ab 12', held_out=held_out)
    assert (face.family in fonts.HELD_OUT_FAMILIES) == held_out
    assert fonts.can_draw(face, '\u1780\u17b6 Ab 12')
    seen.add(face.family)
  expected = fonts.families(held_out)
  assert seen == set(expected)  # Every family gets drawn.


def test_choose_face_is_deterministic():
  picks = [[fonts.choose_face(np.random.default_rng(7), 'x').path
            for _ in range(3)] for _ in range(2)]
  assert picks[0] == picks[1]


def test_no_font_error_names_the_packages(monkeypatch):
  monkeypatch.setattr(render, 'find_khmer_fonts', lambda: [])
  fonts.all_faces.cache_clear()
  try:
    with pytest.raises(fonts.NoKhmerFontError, match='fonts-khmeros') as err:
      fonts.all_faces()
    assert 'fonts-sil-mondulkiri-extra' in str(err.value)
  finally:
    fonts.all_faces.cache_clear()
