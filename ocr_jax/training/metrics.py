"""OCR scores on host: edit distance, error rates, exact-match accuracy.

`edit_distance` (Levenshtein) and `OcrScores`, which accumulates character
error rate, exact-match accuracy and normalised edit distance over decoded
strings. Both sides of every pair are Khmer-normalised first, so two
spellings of the same text are not counted as errors.
"""

import dataclasses
from typing import Any, Callable, Sequence

from ocr_jax.text import khmer_normalizer


def edit_distance(a: Sequence[Any], b: Sequence[Any]) -> int:
  """Levenshtein distance (unit insert, delete and substitute costs).

  Strings compare by code point; any other sequences (lists of ids, numpy
  arrays) compare element by element. The common prefix and suffix are
  stripped first, so near-matches, the usual OCR case, cost little.

  Args:
    a: first sequence.
    b: second sequence.

  Returns:
    The minimum number of edits turning `a` into `b`.
  """
  if not isinstance(a, str):
    a = list(a)
  if not isinstance(b, str):
    b = list(b)
  start = 0
  shortest = min(len(a), len(b))
  while start < shortest and a[start] == b[start]:
    start += 1
  end_a, end_b = len(a), len(b)
  while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
    end_a -= 1
    end_b -= 1
  a, b = a[start:end_a], b[start:end_b]
  if len(a) < len(b):
    a, b = b, a
  if not b:
    return len(a)
  previous = list(range(len(b) + 1))
  for i, item_a in enumerate(a, 1):
    current = [i]
    for j, item_b in enumerate(b, 1):
      current.append(
          min(
              previous[j] + 1,
              current[j - 1] + 1,
              previous[j - 1] + (item_a != item_b),
          )
      )
    previous = current
  return previous[-1]


def _identity(text: str) -> str:
  return text


def _get_normalizer(normalize: bool) -> Callable[[str], str]:
  return khmer_normalizer.normalize_khmer if normalize else _identity


def _rates(n: int, distance: int, ref_chars: int, exact: int) -> dict:
  """CER, character and sequence accuracy from summed counts."""
  if n == 0:
    nan = float('nan')
    return {'cer': nan, 'char_accuracy': nan, 'seq_accuracy': nan}
  cer = distance / max(ref_chars, 1)
  return {
      'cer': cer,
      'char_accuracy': 1.0 - cer,
      'seq_accuracy': exact / n,
  }


@dataclasses.dataclass
class OcrScores:
  """Host-side accumulator of OCR scores over (reference, prediction) pairs.

  `cer` is the total edit distance divided by the total number of reference
  characters (code points, after normalisation): an alignment-based rate,
  never a position-wise comparison, so a missing first character costs 1.
  `char_accuracy` is `1 - cer` unclipped: it goes below 0 when predictions
  are much longer than the references. With no samples the rates are NaN;
  with only empty references `cer` is the total distance.

  `update` and `merge` modify the accumulator in place (`merge` also returns
  it). `state_dict`/`from_state_dict` give a JSON-serialisable form, e.g. to
  merge the scores of several processes.

  Attributes:
    normalize: apply `khmer_normalizer.normalize_khmer` to both sides.
    max_worst: how many of the worst errors to keep.
  """

  normalize: bool = True
  max_worst: int = 10
  n: int = 0
  total_distance: int = 0
  total_ref_chars: int = 0
  num_exact: int = 0
  sum_ned: float = 0.0
  # Reference length -> [n, total_distance, total_ref_chars, num_exact].
  length_counts: dict[int, list[int]] = dataclasses.field(default_factory=dict)
  # (distance, reference, prediction), worst first.
  worst: list[tuple[int, str, str]] = dataclasses.field(default_factory=list)

  def update(self, references: Sequence[str], predictions: Sequence[str]):
    """Adds a batch of pairs; both lists must have the same length."""
    if len(references) != len(predictions):
      raise ValueError(
          f'{len(references)} references but {len(predictions)} predictions'
      )
    normalizer = _get_normalizer(self.normalize)
    errors = []
    for reference, prediction in zip(references, predictions):
      reference, prediction = normalizer(reference), normalizer(prediction)
      distance = edit_distance(reference, prediction)
      length = len(reference)
      exact = int(reference == prediction)
      self.n += 1
      self.total_distance += distance
      self.total_ref_chars += length
      self.num_exact += exact
      self.sum_ned += distance / max(length, len(prediction), 1)
      counts = self.length_counts.setdefault(length, [0, 0, 0, 0])
      for index, value in enumerate((1, distance, length, exact)):
        counts[index] += value
      if distance:
        errors.append((distance, reference, prediction))
    self._add_worst(errors)

  def merge(self, other: 'OcrScores') -> 'OcrScores':
    """Adds the counts of `other` into this accumulator and returns it."""
    self.n += other.n
    self.total_distance += other.total_distance
    self.total_ref_chars += other.total_ref_chars
    self.num_exact += other.num_exact
    self.sum_ned += other.sum_ned
    for length, other_counts in other.length_counts.items():
      counts = self.length_counts.setdefault(length, [0, 0, 0, 0])
      for index, value in enumerate(other_counts):
        counts[index] += value
    self._add_worst(other.worst)
    return self

  def _add_worst(self, errors: Sequence[tuple[int, str, str]]):
    merged = list(self.worst) + [tuple(error) for error in errors]
    merged.sort(key=lambda error: (-error[0], error[1], error[2]))
    self.worst = merged[: self.max_worst]

  def result(self) -> dict[str, Any]:
    """Returns the scores.

    Returns:
      {'cer', 'char_accuracy', 'seq_accuracy', 'mean_ned': float, 'n': int,
       'by_length': {reference length: {'n', 'cer', 'char_accuracy',
       'seq_accuracy'}}}, by_length sorted by length.
    """
    scores = _rates(
        self.n, self.total_distance, self.total_ref_chars, self.num_exact
    )
    scores['mean_ned'] = self.sum_ned / self.n if self.n else float('nan')
    scores['n'] = self.n
    by_length = {}
    for length in sorted(self.length_counts):
      count, distance, ref_chars, exact = self.length_counts[length]
      rates = _rates(count, distance, ref_chars, exact)
      by_length[length] = {'n': count, **rates}
    scores['by_length'] = by_length
    return scores

  def state_dict(self) -> dict[str, Any]:
    """JSON-serialisable state (length keys become strings)."""
    state = dataclasses.asdict(self)
    state['length_counts'] = {
        str(length): list(counts)
        for length, counts in self.length_counts.items()
    }
    state['worst'] = [list(error) for error in self.worst]
    return state

  @classmethod
  def from_state_dict(cls, state: dict[str, Any]) -> 'OcrScores':
    """Inverse of `state_dict`."""
    state = dict(state)
    state['length_counts'] = {
        int(length): list(counts)
        for length, counts in state['length_counts'].items()
    }
    state['worst'] = [tuple(error) for error in state['worst']]
    return cls(**state)
