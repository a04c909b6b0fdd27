"""Page benchmark (issue #13): ocr_jax against Tesseract on synthetic pages.

  python -m benchmarks.page_benchmark [--model=khmer-text]
      [--detector=RUN_OR_FILE] [--threshold=T] [--pages=20] [--dpi=200]
      [--output=benchmarks/results/page_benchmark.json]

Held-out pages (`khmer_pages.make_page`, test split: corpus lines never
trained on), clean and degraded (skew, scan noise, uneven light, JPEG,
bitonal), A4 at --dpi. For each condition it reports:
  ocr_jax    line detection precision, recall and F1 at IoU 0.5; page CER
             (edit distance over the page's text in reading order, divided
             by its length); the same line model's CER on the true line
             boxes of the same pages (`line_cer`, so page_cer / line_cer is
             what finding and ordering the lines costs); seconds per page
             (median, after one warm-up page that compiles).
  tesseract  `tesseract PAGE stdout -l khm --psm 3`: page CER and seconds
             per page in the same run (skipped, with the reason, when
             Tesseract or its Khmer data is missing).
Both texts are compared the same way: Khmer-normalised, each line's runs of
whitespace made one space, lines joined by a newline. Prints a table and
writes JSON.
"""

import json
import os
import statistics
import tempfile
import time

from absl import app
from absl import flags
import numpy as np
from PIL import Image
from PIL import ImageDraw

from benchmarks import machine
from benchmarks import tesseract
from ocr_jax.data.datasets import khmer_pages
from ocr_jax.pages import detector as detector_lib
from ocr_jax.pages import layout
from ocr_jax.pages import page_reader
from ocr_jax.reading import load
from ocr_jax.text import khmer_normalizer
from ocr_jax.training import metrics

_MODEL = flags.DEFINE_string('model', 'khmer-text', 'Line model: run '
                             'folder, .ocrx file or pretrained name.')
_DETECTOR = flags.DEFINE_string('detector', None, 'Detector run folder or '
                                'weights file (default: the shipped one).')
_THRESHOLD = flags.DEFINE_float(
    'threshold', None, 'Map threshold of the detector (default: the one '
    'stored in its file).')
_PAGES = flags.DEFINE_integer('pages', 20, 'Test pages per condition.')
_DPI = flags.DEFINE_integer('dpi', 200, 'Page resolution.')
_SEED = flags.DEFINE_integer('seed', 1, 'Seed of the test pages.')
_TESSERACT = flags.DEFINE_string('tesseract', 'tesseract', 'Tesseract '
                                 'binary (a missing one skips it).')
_FIGURE = flags.DEFINE_string(
    'figure', os.path.join(os.path.dirname(__file__), '..', 'docs',
                           'page_detected_lines.png'),
    'Draw the first degraded page with its detected lines here.')
_OUTPUT = flags.DEFINE_string(
    'output', os.path.join(os.path.dirname(__file__), 'results',
                           'page_benchmark.json'), 'Write the JSON here.')


def canonical(text: str) -> str:
  """The form both readers' page texts are compared in (docstring)."""
  lines = (' '.join(line.split())
           for line in khmer_normalizer.normalize_khmer(text).splitlines())
  return '\n'.join(line for line in lines if line)


def tesseract_page(image: np.ndarray, binary: str) -> tuple[str, float]:
  """(Tesseract's page text, its seconds) for a page image."""
  with tempfile.NamedTemporaryFile(suffix='.png') as f:
    Image.fromarray(image).save(f.name)
    start = time.perf_counter()
    text = tesseract.read(f.name, psm=3, binary=binary)
    return text, time.perf_counter() - start


def make_pages(seed: int, count: int, split: str, dpi: int,
               degrade: bool) -> list[khmer_pages.PageSample]:
  """Pages 0..count-1 of a split, clean or degraded."""
  return [khmer_pages.make_page(seed, index, split, dpi=dpi, degrade=degrade)
          for index in range(count)]


def score_pages(reader: page_reader.PageReader, line_reader, pages,
                tesseract_binary: str | None = None) -> dict:
  """Scores of ocr_jax (and Tesseract, given its binary) on some pages.

  The pages are read after one warm-up read of the first (which compiles
  the shapes); see the module docstring for the figures.
  """
  reader.read_page(pages[0].image)  # Warm-up: compiles the shapes.
  counts = {'hits': 0, 'found': 0, 'truth': 0, 'page_errors': 0,
            'line_errors': 0, 'chars': 0}
  seconds, tesseract_seconds, tesseract_errors = [], [], 0
  for page in pages:
    truth = canonical('\n'.join(page.texts))
    start = time.perf_counter()
    result = reader.read_page(page.image)
    seconds.append(time.perf_counter() - start)
    boxes = [line.box for line in result.lines]
    counts['hits'] += layout.match_boxes(boxes, page.boxes.tolist())
    counts['found'] += len(boxes)
    counts['truth'] += len(page.boxes)
    counts['page_errors'] += metrics.edit_distance(canonical(result.text),
                                                   truth)
    counts['chars'] += len(truth)
    # The same line model on the true boxes: no detection, true order.
    on_truth = page_reader.PageReader(
        line_reader, page_reader.BoxDetector(page.straight_boxes.tolist()),
        deskew=False).read_page(straight_image(page))
    counts['line_errors'] += metrics.edit_distance(canonical(on_truth.text),
                                                   truth)
    if tesseract_binary:
      text, took = tesseract_page(page.image, tesseract_binary)
      tesseract_seconds.append(took)
      tesseract_errors += metrics.edit_distance(canonical(text), truth)
  precision = counts['hits'] / max(counts['found'], 1)
  recall = counts['hits'] / max(counts['truth'], 1)
  page_cer = counts['page_errors'] / max(counts['chars'], 1)
  line_cer = counts['line_errors'] / max(counts['chars'], 1)
  report = {'ocr_jax': {
      'precision': precision, 'recall': recall,
      'f1': 2 * precision * recall / max(precision + recall, 1e-9),
      'page_cer': page_cer, 'line_cer': line_cer,
      'page_over_line_cer': page_cer / max(line_cer, 1e-9),
      'seconds_per_page': statistics.median(seconds)}}
  if tesseract_binary:
    report['tesseract'] = {
        'page_cer': tesseract_errors / max(counts['chars'], 1),
        'seconds_per_page': statistics.median(tesseract_seconds)}
  return report


def run_condition(reader, line_reader, degrade: bool, skip_tesseract):
  """Scores of ocr_jax (and Tesseract) on the test pages of one condition."""
  pages = make_pages(_SEED.value, _PAGES.value, 'test', _DPI.value, degrade)
  if degrade and _FIGURE.value:
    draw_detections(pages[0], reader.read_page(pages[0].image),
                    _FIGURE.value)
  return score_pages(reader, line_reader, pages,
                     None if skip_tesseract else _TESSERACT.value)


def draw_detections(page, result, path: str) -> None:
  """The page (halved) with true boxes in thin red, found lines in blue."""
  image = Image.fromarray(page.image).convert('RGB')
  draw = ImageDraw.Draw(image)
  for box in page.boxes.tolist():
    draw.rectangle(box, outline=(220, 0, 0), width=1)
  for line in result.lines:
    draw.polygon([tuple(p) for p in line.polygon], outline=(0, 70, 255),
                 width=3)
  image = image.resize((image.width // 2, image.height // 2),
                       Image.Resampling.LANCZOS)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  image.save(path, optimize=True)


def straight_image(page) -> np.ndarray:
  """The page without its skew (the true boxes are for the straight page)."""
  if not page.angle:
    return page.image
  image = Image.fromarray(page.image).rotate(
      -page.angle, resample=Image.Resampling.BILINEAR, fillcolor=(255,) * 3)
  return np.asarray(image)


def main(argv):
  del argv
  line_reader = load.load_reader(_MODEL.value)
  kwargs = {} if _THRESHOLD.value is None else {'threshold': _THRESHOLD.value}
  detector = detector_lib.load_detector(_DETECTOR.value, **kwargs)
  reader = page_reader.PageReader(line_reader, detector)
  skip = tesseract.missing(_TESSERACT.value)
  if skip:
    print(f'tesseract skipped: {skip}')
  report = {'pages_per_condition': _PAGES.value, 'dpi': _DPI.value,
            'model': _MODEL.value, 'detector': _DETECTOR.value or 'shipped',
            'threshold': detector.threshold,
            'faint_threshold': detector.faint_threshold,
            'machine': machine.machine_info(), 'tesseract_skipped': skip}
  for name, degrade in (('clean', False), ('degraded', True)):
    report[name] = run_condition(reader, line_reader, degrade, skip)
  print(f'{"condition":10} {"F1":>6} {"page CER":>9} {"line CER":>9} '
        f'{"s/page":>7} {"tess CER":>9} {"tess s":>7}')
  for name in ('clean', 'degraded'):
    ours, theirs = report[name]['ocr_jax'], report[name].get('tesseract', {})
    print(f'{name:10} {ours["f1"]:6.3f} {ours["page_cer"]:9.4f} '
          f'{ours["line_cer"]:9.4f} {ours["seconds_per_page"]:7.2f} '
          f'{theirs.get("page_cer", float("nan")):9.4f} '
          f'{theirs.get("seconds_per_page", float("nan")):7.2f}')
  if _OUTPUT.value:
    os.makedirs(os.path.dirname(os.path.abspath(_OUTPUT.value)),
                exist_ok=True)
    with open(_OUTPUT.value, 'w', encoding='utf-8') as f:
      json.dump(report, f, indent=1, ensure_ascii=False)


if __name__ == '__main__':
  app.run(main)
