"""Tests of ocr_jax.data.synth_lines: purity, splits, fonts, tiers."""

import collections

import numpy as np
import pytest

from ocr_jax.data import degrade
from ocr_jax.data import fonts
from ocr_jax.data import synth_lines
from ocr_jax.data import text_sampler
from ocr_jax.text import charset
from ocr_jax.text import khmer_normalizer

VOCAB = charset.get_vocabulary('khmer')


@pytest.fixture(scope='module')
def mixture():
  """Train-mixture samples 0..119 of seed 0."""
  return [synth_lines.make_sample(0, i, 'train') for i in range(120)]


def _same(a, b):
  return (a.text == b.text and a.font == b.font and a.tier == b.tier and
          a.image.shape == b.image.shape and
          a.image.tobytes() == b.image.tobytes())


def test_same_arguments_give_identical_samples_in_any_order(mixture):
  again = [synth_lines.make_sample(0, i, 'train') for i in (7, 3, 5)]
  for sample, i in zip(again, (7, 3, 5)):
    assert _same(sample, mixture[i])
  forced = synth_lines.make_sample(4, 11, 'test', held_out_fonts=True,
                                   tier='scan')
  assert _same(forced, synth_lines.make_sample(4, 11, 'test',
                                               held_out_fonts=True,
                                               tier='scan'))


def test_different_arguments_give_different_samples(mixture):
  assert len({s.image.tobytes() for s in mixture}) == len(mixture)
  assert not _same(synth_lines.make_sample(1, 3, 'train'), mixture[3])
  assert not _same(synth_lines.make_sample(0, 3, 'validation'), mixture[3])


def test_samples_follow_the_contract(mixture):
  families = fonts.families()
  for sample in mixture:
    image = sample.image
    assert image.dtype == np.uint8 and image.ndim == 3
    assert image.shape[2] == 3
    assert 10 <= image.shape[0] <= 100
    assert 1 <= image.shape[1] <= synth_lines.MAX_WIDTH
    assert sample.text == khmer_normalizer.normalize_khmer(sample.text)
    assert sample.text and not VOCAB.missing(sample.text)
    assert sample.font in {f.file for f in families[sample.family]}
    assert sample.tier in synth_lines.TIERS
    grey = image.mean(axis=-1)
    # Ink is visible against the paper.
    assert np.percentile(grey, 99) - np.percentile(grey, 1) > 50


def test_training_fonts_only_by_default(mixture):
  assert not {s.family for s in mixture} & set(fonts.HELD_OUT_FAMILIES)
  assert len({s.family for s in mixture}) >= 8


def test_held_out_fonts_only_when_asked(mixture):
  for i in range(30):
    sample = synth_lines.make_sample(0, i, 'train', held_out_fonts=True)
    assert sample.family in fonts.HELD_OUT_FAMILIES
    # Text and tier do not depend on the font set.
    assert (sample.text, sample.tier) == (mixture[i].text, mixture[i].tier)


def test_tier_mixture(mixture):
  counts = collections.Counter(s.tier for s in mixture)
  for tier, weight in zip(synth_lines.TIERS, synth_lines.TIER_WEIGHTS):
    assert abs(counts[tier] / len(mixture) - weight) < 0.15, counts


def test_forced_tiers():
  heights = {tier: [] for tier in synth_lines.TIERS}
  for i in range(16):
    long = synth_lines.make_sample(0, i, 'validation', tier='long')
    assert 70 <= len(long.text) <= 140
    assert long.image.shape[1] <= synth_lines.MAX_WIDTH
    scan = synth_lines.make_sample(0, i, 'validation', tier='scan')
    clean = synth_lines.make_sample(0, i, 'validation', tier='clean')
    assert len(clean.text) <= synth_lines.SHORT_MAX_LENGTH
    assert len(scan.text) <= synth_lines.SHORT_MAX_LENGTH
    for sample in (long, scan, clean):
      heights[sample.tier].append(sample.image.shape[0])
  # Scans are low resolution: lines about 30 px high, never scaled up.
  assert 24 <= np.median(heights['scan']) <= 38
  assert max(heights['scan']) <= 60
  assert np.median(heights['clean']) >= 40


def test_validation_and_test_text_never_in_train_samples(mixture):
  train_lines = text_sampler.corpus_lines('train')
  held = [line for split in ('validation', 'test')
          for line in text_sampler.corpus_lines(split) if len(line) >= 12
          and not any(line in t for t in train_lines)]
  for sample in mixture:
    assert not any(line in sample.text for line in held)


def test_latin_and_numbers_appear(mixture):
  latin = sum(any('A' <= c <= 'z' and c.isalpha() for c in s.text)
              for s in mixture)
  digits = sum(any(c.isdigit() for c in s.text) for s in mixture)
  # About a quarter and a third (text_sampler_test checks the shares on
  # more texts; these are the first 120 samples of one seed).
  assert 0.08 * len(mixture) <= latin <= 0.6 * len(mixture)
  assert 0.15 * len(mixture) <= digits <= 0.7 * len(mixture)


def test_bad_arguments():
  with pytest.raises(ValueError, match='split'):
    synth_lines.make_sample(0, 0, 'dev')
  with pytest.raises(ValueError, match='tier'):
    synth_lines.make_sample(0, 0, 'train', tier='photo')
  with pytest.raises(ValueError, match='>= 0'):
    synth_lines.make_sample(0, -1, 'train')


def test_draw_line_keeps_all_ink():
  face = next(f for f in fonts.all_faces() if f.file == 'KhmerOS.ttf')
  rng = np.random.default_rng(0)
  text = '\u1780\u17d2\u179a\u17bb\u1798 \u17af\u1780 A'  # Tall stack.
  for tight in (False, True):
    mask = np.asarray(synth_lines.draw_line(text, face, 40, rng,
                                            tight=tight))
    assert mask.max() == 255
    # No ink on the border: nothing was cut.
    border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    assert border.max() < 128


def test_letter_spacing_widens_the_line():
  face = next(f for f in fonts.all_faces() if f.file == 'KhmerOS.ttf')
  text = '\u1780\u17b6\u179a\u1784\u17b6\u179a'
  plain = synth_lines.draw_line(text, face, 40, np.random.default_rng(0),
                                margin_em=(0.1, 0.1))
  spaced = synth_lines.draw_line(text, face, 40, np.random.default_rng(0),
                                 spacing=0.2, margin_em=(0.1, 0.1))
  # 4 clusters, 3 gaps of 0.2 em = 24 px at size 40.
  assert spaced.width - plain.width == pytest.approx(24, abs=2)


def test_noto_latin_uses_the_fallback_font():
  noto = next(f for f in fonts.all_faces()
              if f.file == 'NotoSansKhmer-Regular.ttf')
  runs = synth_lines.font_runs('\u1780\u17b6 USD 5', noto)
  assert [r for r, _ in runs] == ['\u1780\u17b6 ', 'USD', ' ', '5']
  assert runs[1][1] == noto.fallback and runs[0][1] == noto.path


def test_degradations_keep_shape_and_range():
  rng = np.random.default_rng(0)
  image = degrade.composite(np.zeros((30, 80), np.float32), rng)
  assert image.shape == (30, 80, 3)
  binary = degrade.bitonal(image, rng)
  assert set(np.unique(binary)) <= {0.0, 1.0}
  assert degrade.speckle(image, rng, 0.1).shape == image.shape
  mask = degrade.to_image(np.ones((20, 100), np.float32))
  rotated = degrade.rotate(mask, 3.0)
  assert rotated.height > 20 + 100 * 0.05 - 1
  warped = degrade.perspective(mask, rng, 0.05)
  assert np.asarray(warped).sum() > 0.9 * np.asarray(mask).sum()
