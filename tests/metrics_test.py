"""Tests for ocr_jax.training.metrics against hand-computed cases."""

import json
import math

import numpy as np
import pytest

from ocr_jax.text import khmer_normalizer
from ocr_jax.training import metrics


@pytest.mark.parametrize(
    'a, b, expected',
    [
        ('', '', 0),
        ('abc', '', 3),
        ('', 'ab', 2),
        ('kitten', 'sitting', 3),
        ('flaw', 'lawn', 2),
        ('abc', 'abc', 0),
        ('abcdef', 'bcdef', 1),
        ('abcdef', 'abcxef', 1),
        ('ab', 'ba', 2),
        ([5, 6, 7], [5, 7], 1),
        ('១២៣', '១៣', 1),
    ],
)
def test_edit_distance(a, b, expected):
  assert metrics.edit_distance(a, b) == expected
  assert metrics.edit_distance(b, a) == expected


def test_edit_distance_numpy_arrays():
  assert metrics.edit_distance(np.array([1, 2, 3]), np.array([1, 3])) == 1


def test_edit_distance_random_against_full_table():
  rng = np.random.default_rng(0)

  def full_table(a, b):
    table = np.zeros((len(a) + 1, len(b) + 1), int)
    table[:, 0] = np.arange(len(a) + 1)
    table[0, :] = np.arange(len(b) + 1)
    for i in range(1, len(a) + 1):
      for j in range(1, len(b) + 1):
        table[i, j] = min(table[i - 1, j] + 1, table[i, j - 1] + 1,
                          table[i - 1, j - 1] + (a[i - 1] != b[j - 1]))
    return table[-1, -1]

  for _ in range(50):
    a = ''.join(rng.choice(list('abc'), rng.integers(0, 9)))
    b = ''.join(rng.choice(list('abc'), rng.integers(0, 9)))
    assert metrics.edit_distance(a, b) == full_table(a, b)


def test_scores_hand_computed():
  scores = metrics.OcrScores(normalize=False)
  scores.update(['១២៣', '៤៥'], ['១៣', '៤៥៦'])
  result = scores.result()
  assert result['n'] == 2
  assert result['cer'] == pytest.approx(2 / 5)
  assert result['char_accuracy'] == pytest.approx(3 / 5)
  assert result['seq_accuracy'] == 0.0
  assert result['mean_ned'] == pytest.approx((1 / 3 + 1 / 3) / 2)
  assert result['by_length'] == {
      2: {'n': 1, 'cer': 0.5, 'char_accuracy': 0.5, 'seq_accuracy': 0.0},
      3: {'n': 1, 'cer': pytest.approx(1 / 3),
          'char_accuracy': pytest.approx(2 / 3), 'seq_accuracy': 0.0},
  }
  assert scores.worst == [(1, '១២៣', '១៣'), (1, '៤៥', '៤៥៦')]


def test_missing_first_char_is_one_error_not_a_wrong_tail():
  scores = metrics.OcrScores(normalize=False)
  scores.update(['abcdefghij'], ['bcdefghij'])
  assert scores.result()['cer'] == pytest.approx(0.1)


def test_exact_matches_and_long_predictions():
  scores = metrics.OcrScores(normalize=False)
  scores.update(['ab', 'cd'], ['ab', 'cdxxxxxx'])
  result = scores.result()
  assert result['seq_accuracy'] == 0.5
  assert result['cer'] == pytest.approx(6 / 4)
  # 1 - CER is kept raw: negative when predictions are much longer.
  assert result['char_accuracy'] == pytest.approx(-0.5)
  assert result['mean_ned'] == pytest.approx((0 + 6 / 8) / 2)


def test_empty_accumulator_and_empty_strings():
  result = metrics.OcrScores(normalize=False).result()
  assert result['n'] == 0
  assert math.isnan(result['cer']) and math.isnan(result['mean_ned'])
  scores = metrics.OcrScores(normalize=False)
  scores.update([''], [''])
  result = scores.result()
  assert result['cer'] == 0.0 and result['seq_accuracy'] == 1.0
  assert result['mean_ned'] == 0.0


def test_length_mismatch_raises():
  with pytest.raises(ValueError):
    metrics.OcrScores(normalize=False).update(['a'], [])


def test_normalisation_makes_two_spellings_equal():
  # Subscript typed after the vowel vs canonical order; a zero-width space.
  typed, canonical = '\u1798\u17d2\u17c1\u178f', '\u1798\u17d2\u178f\u17c1'
  with_zwsp = 'ab\u200bc'
  scores = metrics.OcrScores()
  scores.update([canonical, 'abc'], [typed, with_zwsp])
  assert scores.result()['cer'] == 0.0
  assert scores.result()['seq_accuracy'] == 1.0
  raw = metrics.OcrScores(normalize=False)
  raw.update([canonical, 'abc'], [typed, with_zwsp])
  assert raw.result()['seq_accuracy'] == 0.0


def test_normalize_is_applied_to_both_sides(monkeypatch):
  monkeypatch.setattr(khmer_normalizer, 'normalize_khmer', str.upper)
  scores = metrics.OcrScores()
  scores.update(['abc'], ['ABC'])
  scores.update(['XY'], ['xy'])
  assert scores.result()['seq_accuracy'] == 1.0


def test_merge_equals_single_accumulator_and_keeps_worst_k():
  refs = ['abc', 'de', 'fghij', 'k', 'lm', 'nop']
  preds = ['abd', 'de', 'f', 'kkk', '', 'nop']
  whole = metrics.OcrScores(normalize=False, max_worst=2)
  whole.update(refs, preds)
  first = metrics.OcrScores(normalize=False, max_worst=2)
  first.update(refs[:3], preds[:3])
  second = metrics.OcrScores(normalize=False, max_worst=2)
  second.update(refs[3:], preds[3:])
  merged = first.merge(second)
  assert merged is first
  assert merged.result() == whole.result()
  assert merged.worst == whole.worst == [(4, 'fghij', 'f'), (2, 'k', 'kkk')]


def test_state_dict_round_trip_through_json():
  scores = metrics.OcrScores(normalize=False, max_worst=3)
  scores.update(['abc', 'de'], ['ab', 'dex'])
  state = json.loads(json.dumps(scores.state_dict()))
  restored = metrics.OcrScores.from_state_dict(state)
  assert restored.result() == scores.result()
  assert restored.worst == scores.worst
