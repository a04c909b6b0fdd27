"""Tests of ocr_jax.data.synth_lines: purity, splits, fonts, tiers."""

import collections

import numpy as np
import pytest

from ocr_jax.data import degrade
from ocr_jax.data import fonts
from ocr_jax.data import synth_lines
from ocr_jax.data import text_sampler
from ocr_jax.data.datasets import khmer_digits
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


@pytest.fixture(scope='module')
def digit_mixture():
  """Train-mixture digit strings 0..79 of seed 0."""
  return [synth_lines.make_sample(0, i, 'train', content='digits')
          for i in range(80)]


def test_digit_strings_follow_the_prototype(digit_mixture):
  digits = charset.get_vocabulary('digits')
  lengths = collections.Counter(len(s.text) for s in digit_mixture)
  # 1-8 digits, each length drawn about 10 times in 80.
  assert set(lengths) == set(range(1, 9)), lengths
  for sample in digit_mixture:
    assert set(sample.text) <= set(charset.KHMER_DIGITS)
    assert not digits.missing(sample.text)
    assert sample.tier in ('clean', 'scan')
    assert sample.family not in fonts.HELD_OUT_FAMILIES
    grey = sample.image.mean(axis=-1)
    assert np.percentile(grey, 99) - np.percentile(grey, 1) > 50
  # Every digit appears, in many training families.
  assert set(''.join(s.text for s in digit_mixture)) == set(
      charset.KHMER_DIGITS)
  assert len({s.family for s in digit_mixture}) >= 8
  tiers = collections.Counter(s.tier for s in digit_mixture)
  assert abs(tiers['clean'] / len(digit_mixture) - 0.55) < 0.2, tiers


def test_digit_strings_are_pure_and_leave_text_samples_alone(digit_mixture,
                                                            mixture):
  again = synth_lines.make_sample(0, 5, 'train', content='digits')
  assert _same(again, digit_mixture[5])
  assert _same(synth_lines.make_sample(0, 5, 'train', content='text'),
               mixture[5])
  assert len({s.image.tobytes() for s in digit_mixture}) == len(
      digit_mixture)
  other_split = [synth_lines.make_sample(0, i, 'test', content='digits')
                 for i in range(20)]
  assert [s.text for s in other_split] != [s.text for s in
                                           digit_mixture[:20]]


def test_digit_strings_in_held_out_fonts_and_forced_tiers(digit_mixture):
  for i in range(12):
    held = synth_lines.make_sample(0, i, 'train', held_out_fonts=True,
                                   content='digits')
    assert held.family in fonts.HELD_OUT_FAMILIES
    # The digits and the tier do not depend on the font set.
    assert (held.text, held.tier) == (digit_mixture[i].text,
                                      digit_mixture[i].tier)
    for tier in synth_lines.DIGIT_TIERS:
      forced = synth_lines.make_sample(0, i, 'test', tier=tier,
                                       content='digits')
      assert forced.tier == tier and 1 <= len(forced.text) <= 8
  with pytest.raises(ValueError, match='long'):
    synth_lines.make_sample(0, 0, 'test', tier='long', content='digits')
  with pytest.raises(ValueError, match='content'):
    synth_lines.make_sample(0, 0, 'test', content='words')


def test_fit_box_pads_to_the_aspect_and_keeps_the_ink():
  rng = np.random.default_rng(0)
  ink = np.zeros((4, 10), np.uint8)
  ink[1:3, 2:8] = 255
  mask = degrade.to_image(ink / 255.0)
  # Wide line, box 2:1: paper above or below (10 / 2 = 5 rows).
  wide = synth_lines.fit_box(mask, 2.0, rng)
  assert wide.size == (10, 5)
  # Narrow line (2 x 4 px), box 2:1: paper on the sides (4 * 2 columns).
  narrow = synth_lines.fit_box(mask.crop((2, 0, 4, 4)), 2.0, rng)
  assert narrow.size == (8, 4)
  for boxed, source in ((wide, mask), (narrow, mask.crop((2, 0, 4, 4)))):
    assert np.asarray(boxed).sum() == np.asarray(source).sum()
  # Any position in the slack: 12 - 2 + 1 columns in a 3:1 box.
  offsets = {np.flatnonzero(np.asarray(synth_lines.fit_box(
      mask.crop((2, 0, 4, 4)), 3.0, rng)).any(axis=0))[0] for _ in range(200)}
  assert offsets == set(range(11))


def test_proto_look_has_the_prototype_canvas_and_is_pure():
  # khmer_digits' canvas (kept as constants: importing it pulls in TFDS).
  assert (synth_lines.PROTO_HEIGHT, synth_lines.PROTO_WIDTH) == (
      khmer_digits.IMAGE_HEIGHT, khmer_digits.IMAGE_WIDTH)
  face = fonts.families(False)['Khmer Mondulkiri'][0]
  for seed in range(6):
    clean = synth_lines._proto_image('០១២៣', face,
                                     np.random.default_rng(seed), 'clean')
    assert clean.shape == (64, 128, 3) and clean.dtype == np.uint8
    again = synth_lines._proto_image('០១២៣', face,
                                     np.random.default_rng(seed), 'clean')
    np.testing.assert_array_equal(clean, again)
    # 'scan' keeps a lower resolution: 0.35-0.9 of the canvas, 2:1.
    scan = synth_lines._proto_image('០១២៣', face,
                                    np.random.default_rng(seed), 'scan')
    h, w = scan.shape[:2]
    assert 22 <= h <= 58 and abs(w - 2 * h) <= 1, scan.shape


def test_proto_look_only_in_the_train_mixture(digit_mixture):
  # Clean prototype-look samples are exactly 64 x 128; other layouts come
  # out that size only by chance. Share 0.3 x clean 0.55 of 80: about 13.
  def protos(samples):
    return [s for s in samples if s.image.shape == (64, 128, 3)]
  found = protos(digit_mixture)
  assert 5 <= len(found) <= 25, len(found)
  assert all(s.tier == 'clean' for s in found)
  index = next(i for i, s in enumerate(digit_mixture)
               if s.image.shape == (64, 128, 3))
  assert _same(synth_lines.make_sample(0, index, 'train', content='digits'),
               digit_mixture[index])
  # The same index in held-out fonts: same digits and look, another face.
  held = synth_lines.make_sample(0, index, 'train', held_out_fonts=True,
                                 content='digits')
  assert held.image.shape == (64, 128, 3)
  assert held.text == digit_mixture[index].text
  assert held.family in fonts.HELD_OUT_FAMILIES
  forced = [synth_lines.make_sample(0, i, 'train', tier='clean',
                                    content='digits') for i in range(80)]
  assert len(protos(forced)) <= 1
