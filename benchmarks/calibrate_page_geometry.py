"""Line box geometry of the page reader on validation pages (issue #13).

  python -m benchmarks.calibrate_page_geometry [--pages=10] [--dpi=200]
      [--validation_seed=3] [--cer] [--geometry_output=...json]

Renders validation pages (`khmer_pages.make_page`, split 'validation',
never the test split that `page_benchmark` scores), clean and degraded as
`page_benchmark` does, and runs the detector on each page straightened by
its true skew (so that deskewing errors stay out), comparing the lines it
finds with the true straight boxes. For the found boxes matched to a true
box (IoU >= 0.5, `layout.match_pairs`) it reports, in true line heights,
the systematic errors (median, and the 25th and 75th percentiles):

  height     found height / true height
  centre     (found - true) vertical centre
  left/right (found - true) x0 and x1

and detection F1 at IoU 0.5 and 0.7. Two post-processings of the same
probability maps are compared: `bbox`, the bounding box of each thresholded
component grown by `layout.expand_core` (the post-processing before this
calibration, with its merge gap of 0.25), and `layout.lines_from_map` as
the detector runs it now (faint lines, joining within columns), both with
short and faint boxes fitted by `layout.fit_to_ink`. Both crop with the
current `page_reader.CROP_MARGIN`. --threshold overrides the detector
file's map threshold.

With --cer it also reads the pages with each post-processing through
`page_benchmark.score_pages` (deskewing included): page CER, line CER of
the same line model on the true boxes, and their ratio. --pages,
--dpi, --model and --detector are `page_benchmark`'s flags.
Prints a table and writes JSON.
"""

import json
import os

from absl import app
from absl import flags
import numpy as np
from scipy import ndimage

from benchmarks import machine
from benchmarks import page_benchmark
from ocr_jax.pages import detector as detector_lib
from ocr_jax.pages import layout
from ocr_jax.pages import page_reader
from ocr_jax.reading import load

FLAGS = flags.FLAGS
_SEED = flags.DEFINE_integer('validation_seed', 3,
                             'Seed of the validation pages.')
_CER = flags.DEFINE_boolean('cer', True, 'Also read the pages (slower).')
_GEOMETRY_OUTPUT = flags.DEFINE_string(
    'geometry_output', os.path.join(os.path.dirname(__file__), 'results',
                                    'page_geometry.json'),
    'Write the JSON here.')


def bbox_lines(probabilities: np.ndarray, *, scale: int,
               threshold: float, min_score: float, min_cells: int = 3,
               shrink: float = layout.CORE_SHRINK,
               merge_gap: float = 0.25) -> list[layout.DetectedLine]:
  """The post-processing before the calibration: each component's cell
  bounding box, expanded as a core, pieces joined across 0.25 line heights
  (for comparison only)."""
  labels, count = ndimage.label(probabilities > threshold)
  if not count:
    return []
  index = np.arange(1, count + 1)
  sizes = ndimage.sum_labels(np.ones_like(probabilities), labels, index)
  scores = ndimage.mean(probabilities, labels, index)
  lines = []
  for i, found in enumerate(ndimage.find_objects(labels)):
    if found is None or sizes[i] < min_cells or scores[i] < min_score:
      continue
    rows, cols = found
    core = (cols.start * scale, rows.start * scale, cols.stop * scale,
            rows.stop * scale)
    lines.append(layout.DetectedLine(layout.expand_core(core, shrink),
                                     float(scores[i])))
  return layout.merge_fragments(lines, merge_gap)


def current_lines(probabilities, **kwargs) -> list[layout.DetectedLine]:
  """`layout.lines_from_map` as the learned detector runs it (faint lines
  included; `PostprocessedDetector` fits them with `layout.fit_to_ink`)."""
  return layout.lines_from_map(probabilities,
                               faint_threshold=layout.FAINT_THRESHOLD,
                               **kwargs)


POSTPROCESSING = {'bbox': bbox_lines, 'now': current_lines}


class PostprocessedDetector:
  """A learned detector whose map goes through another post-processing."""

  def __init__(self, detector: detector_lib.LearnedDetector, postprocess):
    self.detector = detector
    self.postprocess = postprocess

  def detect(self, image: np.ndarray) -> list[layout.DetectedLine]:
    probs, factor = self.detector.probabilities(image)
    lines = self.postprocess(probs, scale=detector_lib.SCALE,
                             threshold=self.detector.threshold,
                             min_score=self.detector.min_score)
    return layout.fit_to_ink(
        image, detector_lib.to_page(lines, factor, image.shape[:2]))


def errors(found: list[layout.Box], truth: list[layout.Box]) -> np.ndarray:
  """[matches, 4]: height ratio, centre, left and right offsets (in true
  heights) of the found boxes matched to true ones."""
  rows = []
  for i, j in layout.match_pairs(found, truth):
    (a0, b0, a1, b1), (t0, u0, t1, u1) = found[i], truth[j]
    height = u1 - u0
    rows.append(((b1 - b0) / height, ((b0 + b1) - (u0 + u1)) / 2 / height,
                 (a0 - t0) / height, (a1 - t1) / height))
  return np.array(rows).reshape(-1, 4)


def f1(found, truth, threshold: float) -> tuple[int, int, int]:
  """(hits, found, true) at an IoU threshold."""
  return layout.match_boxes(found, truth, threshold), len(found), len(truth)


def geometry(detectors: dict, pages) -> dict:
  """The errors and F1 of each detector on the straightened pages."""
  report = {}
  for name, detector in detectors.items():
    rows, counts = [], np.zeros((2, 3), int)
    for page in pages:
      image = page_benchmark.straight_image(page)
      found = [line.box for line in detector.detect(image)]
      truth = [tuple(map(float, b)) for b in page.straight_boxes.tolist()]
      rows.append(errors(found, truth))
      counts += [f1(found, truth, 0.5), f1(found, truth, 0.7)]
    rows = np.concatenate(rows)
    entry = {}
    for k, key in enumerate(('height', 'centre', 'left', 'right')):
      entry[key] = {q: float(np.percentile(rows[:, k], p)) for q, p in
                    (('p25', 25), ('median', 50), ('p75', 75))}
      entry[key]['mean'] = float(rows[:, k].mean())
    for (hits, found, true), iou in zip(counts, (0.5, 0.7)):
      precision, recall = hits / max(found, 1), hits / max(true, 1)
      entry[f'f1_iou{iou}'] = 2 * precision * recall / max(
          precision + recall, 1e-9)
    entry['matches'] = len(rows)
    report[name] = entry
  return report


def main(argv):
  del argv
  kwargs = {} if FLAGS.threshold is None else {'threshold': FLAGS.threshold}
  learned = detector_lib.load_detector(FLAGS.detector, **kwargs)
  detectors = {name: PostprocessedDetector(learned, post)
               for name, post in POSTPROCESSING.items()}
  line_reader = load.load_reader(FLAGS.model) if _CER.value else None
  pages_flag = FLAGS.pages
  dpi = FLAGS.dpi
  report = {'split': 'validation', 'seed': _SEED.value,
            'pages_per_condition': pages_flag, 'dpi': dpi,
            'detector': FLAGS.detector or 'shipped',
            'threshold': learned.threshold,
            'crop_margin': list(page_reader.CROP_MARGIN),
            'machine': machine.machine_info()}
  for condition, degrade in (('clean', False), ('degraded', True)):
    pages = page_benchmark.make_pages(_SEED.value, pages_flag, 'validation',
                                      dpi, degrade)
    report[condition] = geometry(detectors, pages)
    if line_reader is not None:
      for name, detector in detectors.items():
        scores = page_benchmark.score_pages(
            page_reader.PageReader(line_reader, detector), line_reader,
            pages)['ocr_jax']
        report[condition][name].update(
            {k: scores[k] for k in ('f1', 'page_cer', 'line_cer',
                                    'page_over_line_cer')})
  print(f'{"condition":9} {"post":5} {"height":>6} {"centre":>7} '
        f'{"left":>6} {"right":>6} {"F1@.5":>6} {"F1@.7":>6} '
        f'{"pageF1":>6} {"pageCER":>7} {"lineCER":>7} {"ratio":>5}')
  for condition in ('clean', 'degraded'):
    for name in POSTPROCESSING:
      e = report[condition][name]
      print(f'{condition:9} {name:5} {e["height"]["median"]:6.3f} '
            f'{e["centre"]["median"]:7.3f} {e["left"]["median"]:6.3f} '
            f'{e["right"]["median"]:6.3f} {e["f1_iou0.5"]:6.3f} '
            f'{e["f1_iou0.7"]:6.3f} {e.get("f1", np.nan):6.3f} '
            f'{e.get("page_cer", np.nan):7.4f} '
            f'{e.get("line_cer", np.nan):7.4f} '
            f'{e.get("page_over_line_cer", np.nan):5.2f}')
  if _GEOMETRY_OUTPUT.value:
    os.makedirs(os.path.dirname(os.path.abspath(_GEOMETRY_OUTPUT.value)),
                exist_ok=True)
    with open(_GEOMETRY_OUTPUT.value, 'w', encoding='utf-8') as f:
      json.dump(report, f, indent=1)


if __name__ == '__main__':
  app.run(main)
