"""Scores a model over a whole split and presents sample transcriptions.

Prediction runs on device (a jitted function of a batch); decoding ids to
text and scoring edit distances runs on the host, over every unmasked
example of the split.
"""

from typing import Callable, Iterable

import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

from ocr_jax.text import charset
from ocr_jax.data import input_pipeline
from ocr_jax.training import metrics
from ocr_jax.data import render
from ocr_jax.training import sharding


def to_uint8_image(image: np.ndarray) -> np.ndarray:
  """Undoes the pipeline's mean/std normalisation: [H, W, 3] -> uint8."""
  pixels = (image * np.asarray(input_pipeline.IMAGENET_STD)
            + np.asarray(input_pipeline.IMAGENET_MEAN))
  return np.clip(pixels * 255.0, 0, 255).astype(np.uint8)


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
    (scores dict of metrics.OcrScores.result(), list of sample dicts).
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
          'image': to_uint8_image(batch['image'][index]
                                  [:, :int(batch['width'][index])]),
          'reference': vocab.decode(batch['labels'][index]),
          'prediction': vocab.decode(ids[index]),
          'confidence': float(confidences[index]),
      })
  return scores.result(), samples


def format_samples(samples) -> str:
  """Markdown table of sample transcriptions for TensorBoard."""
  rows = ['| reference | prediction | confidence | ok |', '|---|---|---|---|']
  for sample in samples:
    ok = 'yes' if sample['reference'] == sample['prediction'] else 'NO'
    rows.append(f"| {sample['reference']} | {sample['prediction']} | "
                f"{sample['confidence']:.3f} | {ok} |")
  return '\n'.join(rows)


def label_font(size: int) -> ImageFont.FreeTypeFont:
  """A Khmer font shaped by raqm (KhmerOS when installed)."""
  fonts = render.find_khmer_fonts(['Khmer OS']) or render.find_khmer_fonts()
  if not fonts:
    return ImageFont.load_default(size)
  render.check_raqm()
  return ImageFont.truetype(fonts[0].path, size,
                            layout_engine=ImageFont.Layout.RAQM)


def save_samples_png(samples, path: str, text_height: int = 28) -> None:
  """Writes a column of sample images, each with its reference/prediction.

  Text is drawn with Pillow's raqm layout and a Khmer font so that it is
  shaped correctly (matplotlib cannot shape Khmer).
  """
  if not samples:
    return
  font = label_font(text_height - 8)
  width = max(max(s['image'].shape[1] for s in samples), 360)
  rows = []
  for sample in samples:
    image = Image.fromarray(sample['image'])
    row = Image.new('RGB', (width, image.height + 2 * text_height), 'white')
    row.paste(image, (0, 0))
    draw = ImageDraw.Draw(row)
    ok = sample['reference'] == sample['prediction']
    draw.text((4, image.height), 'ref:  ' + sample['reference'], fill='black',
              font=font)
    draw.text((4, image.height + text_height),
              f"pred: {sample['prediction']}  ({sample['confidence']:.2f})",
              fill=(0, 128, 0) if ok else (200, 0, 0), font=font)
    rows.append(row)
  sheet = Image.new('RGB', (width, sum(r.height + 6 for r in rows)), 'gray')
  top = 0
  for row in rows:
    sheet.paste(row, (0, top))
    top += row.height + 6
  sheet.save(path)
