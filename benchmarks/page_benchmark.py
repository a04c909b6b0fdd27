"""Page benchmark (issue #13): ocr_jax against Tesseract on synthetic pages.

  python -m benchmarks.page_benchmark --model=MODEL --detector=RUN \\
      [--pages=50] [--dpi=200] [--degrade] [--output=FILE.json]

On held-out pages (`khmer_pages.make_page`, test split) it reports, for
ocr_jax and for `tesseract PAGE stdout -l khm` (skipped with a message when
Tesseract or its Khmer data is missing):
  line detection precision and recall at IoU 0.5 (ocr_jax only: Tesseract
    is run for text),
  page CER: edit distance over the page's text in reading order, divided by
    its length,
  seconds per page.
Prints the results and writes them as JSON. `--model=khmer-digits` with
an untrained detector is a smoke check of the plumbing only.
"""

import json
import tempfile
import time

from absl import app
from absl import flags
import numpy as np
from PIL import Image

from benchmarks import tesseract
from ocr_jax.data.datasets import khmer_pages
from ocr_jax.pages import detector as detector_lib
from ocr_jax.pages import page_reader
from ocr_jax.reading import load
from ocr_jax.training import metrics

_MODEL = flags.DEFINE_string('model', None, 'Line model.')
_DETECTOR = flags.DEFINE_string('detector', None, 'Detector run folder.')
_PAGES = flags.DEFINE_integer('pages', 20, 'Test pages.')
_DPI = flags.DEFINE_integer('dpi', 200, 'Page resolution.')
_DEGRADE = flags.DEFINE_bool('degrade', False, 'Degraded pages.')
_OUTPUT = flags.DEFINE_string('output', None, 'Write the JSON here.')


def iou(a, b) -> float:
  x0, y0 = max(a[0], b[0]), max(a[1], b[1])
  x1, y1 = min(a[2], b[2]), min(a[3], b[3])
  inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
  union = ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
           - inter)
  return inter / union if union > 0 else 0.0


def match(found, truth, threshold: float = 0.5) -> int:
  """Greedy one-to-one matches with IoU >= threshold."""
  used, hits = set(), 0
  for box in found:
    scores = [(iou(box, t), j) for j, t in enumerate(truth) if j not in used]
    if scores and max(scores)[0] >= threshold:
      used.add(max(scores)[1])
      hits += 1
  return hits


def cer(prediction: str, truth: str) -> float:
  return metrics.edit_distance(prediction, truth) / max(len(truth), 1)


def tesseract_text(image: np.ndarray) -> str | None:
  """Tesseract's page text (--psm 3), or None without Tesseract's khm."""
  if tesseract.missing():
    return None
  with tempfile.NamedTemporaryFile(suffix='.png') as f:
    Image.fromarray(image).save(f.name)
    return tesseract.read(f.name, psm=3)


def main(argv):
  del argv
  reader = page_reader.PageReader(
      load.load_reader(_MODEL.value),
      detector_lib.LearnedDetector.from_run_folder(_DETECTOR.value))
  ours = {'hits': 0, 'found': 0, 'truth': 0, 'errors': 0.0, 'chars': 0,
          'seconds': 0.0}
  theirs = {'errors': 0.0, 'chars': 0, 'seconds': 0.0, 'pages': 0}
  for index in range(_PAGES.value):
    page = khmer_pages.make_page(1, index, 'test', dpi=_DPI.value,
                                 degrade=_DEGRADE.value)
    truth_text = '\n'.join(page.texts)
    start = time.perf_counter()
    result = reader.read_page(page.image)
    ours['seconds'] += time.perf_counter() - start
    boxes = [line.box for line in result.lines]
    ours['hits'] += match(boxes, page.boxes.tolist())
    ours['found'] += len(boxes)
    ours['truth'] += len(page.boxes)
    ours['errors'] += metrics.edit_distance(result.text, truth_text)
    ours['chars'] += len(truth_text)
    start = time.perf_counter()
    text = tesseract_text(page.image)
    if text is not None:
      theirs['seconds'] += time.perf_counter() - start
      theirs['errors'] += metrics.edit_distance(
          ' '.join(text.split()), ' '.join(truth_text.split()))
      theirs['chars'] += len(' '.join(truth_text.split()))
      theirs['pages'] += 1
  pages = _PAGES.value
  report = {'pages': pages, 'dpi': _DPI.value, 'degrade': _DEGRADE.value,
            'model': _MODEL.value, 'detector': _DETECTOR.value,
            'ocr_jax': {
                'precision': ours['hits'] / max(ours['found'], 1),
                'recall': ours['hits'] / max(ours['truth'], 1),
                'page_cer': ours['errors'] / max(ours['chars'], 1),
                'seconds_per_page': ours['seconds'] / max(pages, 1)}}
  if theirs['pages']:
    report['tesseract'] = {
        'page_cer': theirs['errors'] / max(theirs['chars'], 1),
        'seconds_per_page': theirs['seconds'] / theirs['pages']}
  else:
    print('tesseract (with -l khm) not found: skipped')
  print(json.dumps(report, indent=1))
  if _OUTPUT.value:
    with open(_OUTPUT.value, 'w', encoding='utf-8') as f:
      json.dump(report, f, indent=1)


if __name__ == '__main__':
  flags.mark_flags_as_required(['model', 'detector'])
  app.run(main)
