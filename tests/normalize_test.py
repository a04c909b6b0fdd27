"""Tests of ocr_jax.text.khmer_normalizer: hand-made cases, corpus lines."""

import numpy as np
from PIL import Image, ImageDraw, ImageFont
import pytest

from ocr_jax.text import charset
from ocr_jax.text import khmer_normalizer
from ocr_jax.data import render

normalize_khmer = khmer_normalizer.normalize_khmer

# Rank of each cluster part in the canonical order, for an independent check.
_RANKS = {khmer_normalizer.BASE: 0, khmer_normalizer.SHIFTER: 1,
          khmer_normalizer.COENG_CAT: 2, khmer_normalizer.VOWEL: 3,
          khmer_normalizer.SIGN: 4}


def _is_canonical(text: str) -> bool:
  """True when every cluster lists its parts in the canonical order."""
  for cluster in khmer_normalizer.split_clusters(text):
    ranks, i = [], 0
    while i < len(cluster):
      category = khmer_normalizer.char_category(cluster[i])
      if category == khmer_normalizer.OTHER:
        ranks.append(-1)
      elif category == khmer_normalizer.COENG_CAT:
        if i + 1 == len(cluster) or khmer_normalizer.char_category(
            cluster[i + 1]) != khmer_normalizer.BASE:
          return False  # A COENG must carry a consonant.
        ranks.append(2.5 if cluster[i + 1] == khmer_normalizer.RO else 2)
        i += 1
      else:
        ranks.append(_RANKS[category])
      i += 1
    if ranks != sorted(ranks) or ranks.count(2.5) > 1:
      return False
  return True


@pytest.mark.parametrize('raw, expected', [
    # COENG+consonant typed after the vowel moves before it.
    ('\u1780\u17b6\u17d2\u178f', '\u1780\u17d2\u178f\u17b6'),
    # COENG typed before the vowel, its consonant after it (corpus typo).
    ('\u1798\u17d2\u17c1\u178f', '\u1798\u17d2\u178f\u17c1'),
    # Register shifter right after the base, before subscripts.
    ('\u179f\u17d2\u1794\u17c9\u17b6', '\u179f\u17c9\u17d2\u1794\u17b6'),
    # COENG+RO last among the subscripts.
    ('\u179f\u17d2\u179a\u17d2\u178f\u17b8',
     '\u179f\u17d2\u178f\u17d2\u179a\u17b8'),
    # Robat before the subscript.
    ('\u1780\u17d2\u178f\u17cc', '\u1780\u17cc\u17d2\u178f'),
    # Vowel before the sign; above sign before REAHMUK.
    ('\u1780\u17c6\u17b6', '\u1780\u17b6\u17c6'),
    ('\u1780\u17c7\u17c6', '\u1780\u17c6\u17c7'),
    # Duplicate marks removed.
    ('\u1780\u17b7\u17b7', '\u1780\u17b7'),
    ('\u1780\u17b6\u17c6\u17c6', '\u1780\u17b6\u17c6'),
    # Split vowels composed.
    ('\u1780\u17c1\u17b8', '\u1780\u17be'),
    ('\u1780\u17c1\u17b6', '\u1780\u17c4'),
    # Deprecated letters, subscript DA.
    ('\u17a3\u17b9', '\u17a2\u17b9'),
    ('\u17a4', '\u17a2\u17b6'),
    ('\u179f\u17d2\u178a', '\u179f\u17d2\u178f'),
    # Invisible characters and whitespace.
    ('\u1780\u200b\u1781\u200c\u1782\u200d\ufeff\u1783',
     '\u1780\u1781\u1782\u1783'),
    ('\u1780\u17b4\u17b5', '\u1780'),
    ('  \u1780 \t\n \u1781\u00a0 ', '\u1780 \u1781'),
    # A COENG with nothing to carry is dropped.
    ('\u1780\u17d2 \u1781', '\u1780 \u1781'),
    # Non-Khmer text passes through.
    ('abc 123 \u17e1\u17e2!', 'abc 123 \u17e1\u17e2!'),
    ('', ''),
])
def test_hand_made_cases(raw, expected):
  assert normalize_khmer(raw) == expected
  assert normalize_khmer(expected) == expected


@pytest.fixture(scope='module')
def battambang():
  fonts = render.find_khmer_fonts(['Khmer OS Battambang'])
  if not fonts:
    pytest.skip('Khmer OS Battambang not installed')
  return ImageFont.truetype(fonts[0].path, 48,
                            layout_engine=ImageFont.Layout.RAQM)


def _draw(text, font):
  image = Image.new('L', (400, 160))
  ImageDraw.Draw(image).text((40, 100), text, font=font, fill=255,
                             anchor='ls')
  return np.asarray(image)


@pytest.mark.parametrize('variant, canonical', [
    ('\u1780\u17b6\u17d2\u178f', '\u1780\u17d2\u178f\u17b6'),
    ('\u179f\u17d2\u178f\u17ca', '\u179f\u17ca\u17d2\u178f'),
    ('\u1794\u17d2\u179a\u17ca\u17bc', '\u1794\u17ca\u17d2\u179a\u17bc'),
    ('\u1780\u17d2\u179a\u17d2\u178f', '\u1780\u17d2\u178f\u17d2\u179a'),
    ('\u1780\u17c6\u17b6', '\u1780\u17b6\u17c6'),
    ('\u1780\u17c1\u17b8', '\u1780\u17be'),
    ('\u179f\u17d2\u178a', '\u179f\u17d2\u178f'),
    ('\u17a4', '\u17a2\u17b6'),
])
def test_spellings_that_render_alike_get_one_label(variant, canonical,
                                                   battambang):
  # The premise: HarfBuzz draws both spellings with the same pixels ...
  np.testing.assert_array_equal(_draw(variant, battambang),
                                _draw(canonical, battambang))
  # ... so they must normalise to one label.
  assert normalize_khmer(variant) == normalize_khmer(canonical) == canonical


def test_fixes_real_corpus_lines(corpus_lines):
  fixes = {
      # COENG typed before the vowel E, subscript TA after it.
      '\u179f\u1798\u17d2\u17c1\u178f\u1785':
          '\u179f\u1798\u17d2\u178f\u17c1\u1785',
      # Vowel typed before the subscript (\u179f\u17b9\u17d2\u1791).
      '\u179f\u17b9\u17d2\u1791\u1784': '\u179f\u17d2\u1791\u17b9\u1784',
      # Vowel AE typed before the subscript BA.
      '\u179f\u17c2\u17d2\u1794\u1780': '\u179f\u17d2\u1794\u17c2\u1780',
  }
  for raw, fixed in fixes.items():
    lines = [line for line in corpus_lines if raw in line]
    assert lines, f'{raw!r} no longer in the corpus'
    for line in lines:
      assert fixed in normalize_khmer(line)
      assert raw not in normalize_khmer(line)


def test_corpus_lines_become_canonical(corpus_lines):
  raw_canonical = sum(_is_canonical(line) for line in corpus_lines)
  normalised = [normalize_khmer(line) for line in corpus_lines]
  # About 13 % of the raw lines have marks out of order.
  assert 0.08 < 1 - raw_canonical / len(corpus_lines) < 0.25
  assert all(_is_canonical(line) for line in normalised)


def test_idempotent_over_corpus(corpus_lines):
  for line in corpus_lines:
    once = normalize_khmer(line)
    assert normalize_khmer(once) == once, line


def test_corpus_result_is_in_khmer_vocabulary(corpus_lines):
  vocab = charset.get_vocabulary('khmer')
  missing = set()
  for line in corpus_lines:
    missing.update(vocab.missing(normalize_khmer(line)))
  assert not missing


def test_split_clusters_keeps_text():
  text = normalize_khmer('\u179f\u17d2\u178f\u17c1\u1785 \u1780\u17b6\u179a!')
  clusters = khmer_normalizer.split_clusters(text)
  assert ''.join(clusters) == text
  assert clusters[:2] == ['\u179f\u17d2\u178f\u17c1', '\u1785']
