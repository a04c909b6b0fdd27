"""Scores a model over a whole split and keeps sample transcriptions.

Prediction runs on device (a jitted function of a batch); decoding ids to
text and scoring edit distances runs on the host, over every unmasked
example of the split. `sample_sheet` presents the samples.
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
    (scores dict of metrics.OcrScores.result(), list of sample dicts with
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
  return scores.result(), samples
