"""Scores a model over a whole split and keeps sample transcriptions.

Prediction runs on device (a jitted function of a batch); decoding ids to
text and scoring edit distances runs on the host, over every unmasked
example of the split. Each process scores its own rows; the counts are then
summed over all processes (`sum_over_processes`), so every process returns
the same scores and takes the same early-stopping and plateau decisions.
`sample_sheet` presents the samples (each process keeps its own).
"""

from typing import Callable, Iterable

import numpy as np

from ocr_jax.data import preprocess
from ocr_jax.text import charset
from ocr_jax.training import metrics
from ocr_jax.training import sharding


def evaluate(predict_fn: Callable, dataset: Iterable[dict],
             vocab: charset.Vocabulary, num_samples: int = 16):
  """Runs `predict_fn` over `dataset` and scores every real example.

  Args:
    predict_fn: batch -> (ids [batch, steps], confidences [batch]).
    dataset: iterable of numpy batches with 'image', 'width', 'labels' and
      the boolean '_mask' marking real (not padding) rows.
    vocab: decodes ids to text.
    num_samples: how many (image, reference, prediction) samples to keep.

  Returns:
    (scores dict of metrics.OcrScores.result() over all processes, the
    same on each; list of this process's sample dicts with
    'image' (uint8 [height, width, 3], cropped to its width), 'reference',
    'prediction' and 'confidence').
  """
  scores = metrics.OcrScores()
  samples = []
  for batch in dataset:
    ids, confidences = predict_fn(batch)
    ids = sharding.local_rows(ids)
    confidences = sharding.local_rows(confidences)
    mask = np.asarray(batch['_mask'], bool)
    references = [vocab.decode(row) for row in batch['labels'][mask]]
    predictions = [vocab.decode(row) for row in ids[mask]]
    scores.update(references, predictions)
    for index in np.flatnonzero(mask)[:max(num_samples - len(samples), 0)]:
      samples.append({
          'image': preprocess.to_uint8(batch['image'][index]
                                       [:, :int(batch['width'][index])]),
          'reference': vocab.decode(batch['labels'][index]),
          'prediction': vocab.decode(ids[index]),
          'confidence': float(confidences[index]),
      })
  return sum_over_processes(scores).result(), samples


def sum_over_processes(scores: metrics.OcrScores) -> metrics.OcrScores:
  """The scores of every process merged, in process order (a collective).

  One process: `scores` itself. Several: the same totals on each process.
  """
  states = sharding.allgather_json(scores.state_dict())
  if len(states) == 1:
    return scores
  total = metrics.OcrScores(normalize=scores.normalize,
                            max_worst=scores.max_worst)
  for state in states:
    total.merge(metrics.OcrScores.from_state_dict(state))
  return total
