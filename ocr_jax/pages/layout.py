"""Page layout: deskew, line boxes from a probability map, reading order.

Boxes are (x0, y0, x1, y1) floats in pixels, x1 and y1 exclusive.

Line cores. A detector predicts, at 1/`scale` of the page resolution, the
*core* of each text line: the line box shrunk on every side by
`CORE_SHRINK` times the line's height (`core_box`). Cores of neighbouring
lines stay apart even where the lines touch, so thresholding the map and
labelling connected components separates them; each component's core is
measured to a fraction of a cell from its probabilities, column by column
(`component_core`), and grown back by the same amount (`expand_core`, the
exact inverse), as in DBNet, where the shrink and the expansion are offsets
of the polygon.

Pieces of a line broken at word gaps are joined (`merge_fragments`); where
the page has column gutters (`find_gutters`), pieces up to `WIDE_GAP` apart
are joined too when no gutter lies between them (`merge_within_columns`).
Faint lines (page numbers, one-word lines: the map reaches only 0.3-0.8 on
a cell or two) come from a second, lower threshold, only as components that
hold no cell of a found line (`lines_from_map`, `faint_threshold`); their
cell box is too coarse, so `fit_to_ink` replaces it with the ink around it,
as it does for short lines, whose map is as coarse.

Reading order (`reading_order`): columns are found as vertical gutters that
few boxes cross; the boxes that do cross one (headings over two columns,
centred page numbers) cut the page into bands; each band is read column by
column, each column top to bottom.
"""

from collections.abc import Sequence
import dataclasses

import numpy as np
from PIL import Image
from scipy import ndimage

Box = tuple[float, float, float, float]

# Each side of a line box is moved in by this fraction of the line height.
CORE_SHRINK = 0.25
# Pieces of a line are joined across gaps up to this many line heights.
# Fitted on validation pages (seed 3, 10 clean + 10 degraded, 200 dpi, the
# shipped detector): the gaps between pieces of one line reached 1.05
# (27 of 46 pieces within 0.25, 39 within 0.7), those between lines side
# by side across a column gutter were 0.95 and more; 0.7 keeps a quarter
# of a line height clear of the narrowest gutter.
MERGE_GAP = 0.7
# Where column gutters are known, pieces of a line are joined across gaps up
# to this many line heights when no gutter lies between them. On validation
# pages (seed 3, 20 clean + 20 degraded, 200 dpi, map threshold 0.7),
# detection F1 at IoU 0.5 (with `fit_to_ink`): no joining
# 0.961 clean, 0.962 degraded; 0.85: 0.964, 0.968; 1.0: 0.969, 0.965; 1.2:
# 0.960, 0.961 (pieces of different lines start to join).
WIDE_GAP = 1.0
# The lower threshold and the peak a faint component needs (see the module
# docstring), and its most cells; chosen on the same validation pages,
# F1 at IoU 0.5, map threshold 0.7 / 0.8:
# without faint lines 0.969 / 0.973 clean, 0.965 / 0.972 degraded; with
# them (0.3, 0.5) 0.976 / 0.980 and 0.974 / 0.977 (threshold and seed
# 0.2 and 0.3, or 0.3 and 0.7, did no better). Page numbers and one-word
# lines make most of the gain; stamps' arcs, the commonest false find, are
# kept out by the width limit of `fit_to_ink`.
FAINT_THRESHOLD = 0.3
FAINT_SEED = 0.5
MAX_FAINT_CELLS = 30
# Boxes narrower than this many heights are fitted to their ink. On the
# same validation pages (threshold 0.7, before joining within columns and
# faint lines) F1 went from 0.946 clean, 0.944 degraded to 0.957, 0.958
# (narrower than 2 heights) and 0.961, 0.962 (3, the same as 5).
SHORT_LINE = 3.0
# Skews below this (degrees) are not corrected: a rotation costs a resample.
MIN_DESKEW = 0.1


@dataclasses.dataclass(frozen=True)
class DetectedLine:
  """A text line found on a page.

  Attributes:
    box: (x0, y0, x1, y1) in page pixels.
    score: mean core probability of the line, in [0, 1] (faint lines: the
      peak).
    faint: found only by the lower threshold; the box is its map cells'
      box until `fit_to_ink` fits it.
  """
  box: Box
  score: float = 1.0
  faint: bool = False


# --- Deskew -------------------------------------------------------------------


def ink_level(gray: np.ndarray) -> float | None:
  """The grey level below which a pixel is ink: the midpoint of the page's
  5th and 95th percentile (None for a blank or nearly uniform page)."""
  low, high = np.percentile(gray, (5, 95))
  if high - low < 32:
    return None
  return (low + high) / 2


def ink_mask(gray: np.ndarray) -> np.ndarray:
  """Dark pixels: below `ink_level`."""
  level = ink_level(gray)
  if level is None:
    return np.zeros(gray.shape, bool)
  return gray < level


def estimate_skew(image: np.ndarray, *, max_angle: float = 5.0,
                  step: float = 0.1, size: int = 800) -> float:
  """The counter-clockwise rotation of the text lines, in degrees.

  Projection-profile search on a page downscaled to at most `size` pixels:
  the angle whose row profile of ink, sheared by that angle, is the
  sharpest (largest sum of squares).

  Args:
    image: [height, width, 3] (or [height, width]) uint8 page.
    max_angle: search -max_angle..max_angle.
    step: the search step in degrees.
    size: the longer side of the downscaled page.

  Returns:
    The angle (0.0 for a page without ink); `deskew` undoes it.
  """
  gray = Image.fromarray(image).convert('L')
  factor = min(1.0, size / max(gray.size))
  if factor < 1.0:
    gray = gray.resize((max(1, round(gray.size[0] * factor)),
                        max(1, round(gray.size[1] * factor))),
                       Image.Resampling.BOX)
  ys, xs = np.nonzero(ink_mask(np.asarray(gray)))
  if len(ys) < 20:
    return 0.0
  ys = ys.astype(np.float64)
  xs = xs.astype(np.float64) - gray.size[0] / 2
  angles = np.arange(-max_angle, max_angle + step / 2, step)
  scores = []
  for angle in angles:
    # A line rotated counter-clockwise by `angle` rises to the right:
    # y + x * tan(angle) is constant along it.
    rows = np.round(ys + xs * np.tan(np.radians(angle))).astype(np.int64)
    counts = np.bincount(rows - rows.min())
    scores.append(float(np.dot(counts, counts)))
  return float(angles[int(np.argmax(scores))])


def rotate(image: np.ndarray, angle: float) -> np.ndarray:
  """Rotates a page counter-clockwise by `angle` degrees, same size, white."""
  return np.asarray(Image.fromarray(image).rotate(
      angle, resample=Image.Resampling.BILINEAR, fillcolor=(255, 255, 255)))


def deskew(image: np.ndarray, **kwargs) -> tuple[np.ndarray, float]:
  """(straightened page, the skew angle it had); see `estimate_skew`."""
  angle = estimate_skew(image, **kwargs)
  if abs(angle) < MIN_DESKEW:
    return image, 0.0
  return rotate(image, -angle), angle


def unrotate_points(points: np.ndarray, angle: float, width: int,
                    height: int) -> np.ndarray:
  """Maps [n, 2] (x, y) points of the page deskewed by `deskew` (rotated
  by -angle about its centre) back onto the original page."""
  if angle == 0.0:
    return np.asarray(points, np.float64)
  theta = np.radians(angle)
  center = np.array([width / 2, height / 2])
  p = np.asarray(points, np.float64) - center
  # Undo a clockwise (on screen) rotation: rotate counter-clockwise on
  # screen, i.e. with y pointing down.
  cos, sin = np.cos(theta), np.sin(theta)
  x = p[:, 0] * cos + p[:, 1] * sin
  y = -p[:, 0] * sin + p[:, 1] * cos
  return np.stack([x, y], axis=1) + center


# --- Cores and boxes ----------------------------------------------------------


def core_box(box: Box, shrink: float = CORE_SHRINK) -> Box:
  """The core of a line box: each side moved in by shrink x its height.

  A short box keeps at least the middle column (never inverted).
  """
  x0, y0, x1, y1 = box
  d = shrink * (y1 - y0)
  cx = (x0 + x1) / 2
  return (min(x0 + d, cx), y0 + d, max(x1 - d, cx), y1 - d)


def expand_core(core: Box, shrink: float = CORE_SHRINK) -> Box:
  """The inverse of `core_box` (for boxes wider than their height)."""
  x0, y0, x1, y1 = core
  d = shrink / (1 - 2 * shrink) * (y1 - y0)
  return (x0 - d, y0 - d, x1 + d, y1 + d)


def core_map(boxes: Sequence[Box], height: int, width: int, *,
             scale: int = 4, shrink: float = CORE_SHRINK) -> np.ndarray:
  """The target map of line cores: [ceil(h/scale), ceil(w/scale)] float32.

  A map cell is 1 when its centre lies inside a core.
  """
  rows, cols = -(-height // scale), -(-width // scale)
  target = np.zeros((rows, cols), np.float32)
  for box in boxes:
    x0, y0, x1, y1 = (v / scale for v in core_box(box, shrink))
    c0, c1 = int(np.ceil(x0 - 0.5)), int(np.ceil(x1 - 0.5))
    r0, r1 = int(np.ceil(y0 - 0.5)), int(np.ceil(y1 - 0.5))
    # Thin cores still get one row (and column) of cells.
    r1, c1 = max(r1, r0 + 1), max(c1, c0 + 1)
    target[max(r0, 0):max(min(r1, rows), 0),
           max(c0, 0):max(min(c1, cols), 0)] = 1.0
  return target


def component_core(probabilities: np.ndarray, labels: np.ndarray,
                   label: int, found: tuple[slice, slice],
                   scale: int) -> Box:
  """The core box of one labelled component of a map, in page pixels.

  Cell (r, c) covers page pixels [r * scale, (r + 1) * scale): the target
  cell is 1 when its centre, (r + 0.5) * scale, lies in the core
  (`core_map`). So, for a map that matches its target, the cells of a
  column sum to the core's height in cells (on average over where the
  core falls on the grid) and their probability-weighted centre is the
  core's centre. Each column of the component gives that height and centre
  from its probabilities (its own cells and the one cell above and below
  that no other component holds, where a core edge lies); the core takes
  the medians over the columns. The bounding box of the cells instead
  takes the extremes: one stray cell above or below anywhere along the
  line adds a whole cell to the core, which `expand_core` doubles.

  Horizontally the core spans the component's columns.

  Args:
    probabilities: [rows, cols] core probabilities.
    labels: [rows, cols] component labels (`ndimage.label`).
    label: the component.
    found: its (rows, cols) slices (`ndimage.find_objects`).
    scale: page pixels per map cell.

  Returns:
    (x0, y0, x1, y1) of the core in page pixels.
  """
  rows, cols = found
  top = max(rows.start - 1, 0)
  bottom = min(rows.stop + 1, probabilities.shape[0])
  window = labels[top:bottom, cols]
  own = window == label
  mass = np.where(own | (window == 0),
                  probabilities[top:bottom, cols], 0.0).astype(np.float64)
  # Cells outside the component count only in the column's own run of
  # rows: a neighbour's below-threshold edge further off is not this core.
  # (A component is connected, so each of its columns holds some of it.)
  first = np.argmax(own, axis=0)
  last = own.shape[0] - 1 - np.argmax(own[::-1], axis=0)
  r = np.arange(own.shape[0])[:, None]
  mass *= (r >= first - 1) & (r <= last + 1)
  heights = mass.sum(axis=0)
  centres = (mass * (r + top + 0.5)).sum(axis=0) / np.maximum(heights, 1e-9)
  height = float(np.median(heights)) * scale
  centre = float(np.median(centres)) * scale
  return (cols.start * scale, centre - height / 2, cols.stop * scale,
          centre + height / 2)


def lines_from_map(probabilities: np.ndarray, *, scale: int = 4,
                   threshold: float = 0.3, min_score: float = 0.5,
                   min_cells: int = 3, shrink: float = CORE_SHRINK,
                   page_size: tuple[int, int] | None = None,
                   merge_gap: float = MERGE_GAP,
                   wide_gap: float | None = WIDE_GAP,
                   faint_threshold: float | None = None,
                   faint_seed: float = FAINT_SEED,
                   max_faint_cells: int = MAX_FAINT_CELLS
                   ) -> list[DetectedLine]:
  """Line boxes from a core probability map (DBNet-like post-processing).

  Args:
    probabilities: [rows, cols] core probabilities at 1/scale resolution.
    scale: page pixels per map cell.
    threshold: cells above it are core.
    min_score: drop components whose mean probability is lower.
    min_cells: drop components of fewer cells (specks).
    shrink: the shrink the cores were made with (`core_box`).
    page_size: (width, height) to clip the boxes to, if given.
    merge_gap: pieces of one line are joined (`merge_fragments`) across
      horizontal gaps up to this many line heights.
    wide_gap: and up to this many when no column gutter lies between them
      (`merge_within_columns`); None: not.
    faint_threshold: if given, components of cells above it that hold no
      cell of a line found above (a rejected speck does not count), of at
      most `max_faint_cells` cells and a peak of at least `faint_seed`,
      come back as faint lines (`DetectedLine.faint`): the box of their
      cells, to be fitted with `fit_to_ink`.
    faint_seed: see faint_threshold.
    max_faint_cells: see faint_threshold.

  Returns:
    The lines, in no particular order (faint ones last).
  """
  probabilities = np.asarray(probabilities, np.float32)
  labels, count = ndimage.label(probabilities > threshold)
  lines = []
  accepted = np.zeros(count + 1, bool)
  if count:
    index = np.arange(1, count + 1)
    sizes = ndimage.sum_labels(np.ones_like(probabilities), labels, index)
    scores = ndimage.mean(probabilities, labels, index)
    for i, found in enumerate(ndimage.find_objects(labels)):
      if found is None or sizes[i] < min_cells or scores[i] < min_score:
        continue
      accepted[i + 1] = True
      core = component_core(probabilities, labels, i + 1, found, scale)
      lines.append(DetectedLine(_clip(expand_core(core, shrink), page_size),
                                float(scores[i])))
  lines = merge_fragments(lines, merge_gap)
  if wide_gap is not None:
    lines = merge_within_columns(lines, wide_gap)
  if faint_threshold is not None:
    lines += _faint_lines(probabilities, accepted[labels], faint_threshold,
                          faint_seed, max_faint_cells, scale, page_size)
  return lines


def _clip(box: Box, page_size: tuple[int, int] | None) -> Box:
  if page_size is None:
    return box
  x0, y0, x1, y1 = box
  return (max(x0, 0.0), max(y0, 0.0), min(x1, float(page_size[0])),
          min(y1, float(page_size[1])))


def _faint_lines(probabilities, taken, threshold, seed, max_cells, scale,
                 page_size) -> list[DetectedLine]:
  """Faint lines (`lines_from_map`): `taken` marks the found lines' cells."""
  labels, count = ndimage.label(probabilities > threshold)
  if not count:
    return []
  index = np.arange(1, count + 1)
  sizes = ndimage.sum_labels(np.ones_like(probabilities), labels, index)
  peaks = ndimage.maximum(probabilities, labels, index)
  hit = ndimage.maximum(taken, labels, index)
  lines = []
  for i, found in enumerate(ndimage.find_objects(labels)):
    if (found is None or hit[i] or peaks[i] < seed
        or sizes[i] > max_cells):
      continue
    rows, cols = found
    box = (cols.start * scale, rows.start * scale, cols.stop * scale,
           rows.stop * scale)
    lines.append(DetectedLine(_clip(tuple(map(float, box)), page_size),
                              float(peaks[i]), faint=True))
  return lines


def _overlaps(a: Box, b: Box) -> bool:
  return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(
      a[1], b[1])


def fit_to_ink(image: np.ndarray, lines: Sequence[DetectedLine], *,
               short: float = SHORT_LINE, grow: tuple[float, float] = (
                   0.5, 0.1), min_pixels: int = 2) -> list[DetectedLine]:
  """Fits short and faint lines' boxes to the ink around them.

  The map's cells are a quarter of the scaled page's pixels, and a short
  line's core is a cell or two, so its box is coarse (and a faint line's
  is only its cells' box). A line narrower than `short` x its height takes
  the bounding box of the ink (`ink_level`: rows and columns
  with at least `min_pixels` dark pixels) within its box grown by `grow`
  (left and right, top and bottom) x its height; one with no ink there is
  dropped. A faint line is first centred in a box one line tall (the
  median height of the others) and kept, once fitted, only when at most
  one line height wide and clear of every other line.

  Args:
    image: [height, width, 3] uint8 page the boxes are on.
    lines: the page's lines.
    short: see above.
    grow: see above.
    min_pixels: see above.

  Returns:
    The lines, fitted, in input order less the dropped ones.
  """
  fitted = [line for line in lines if not line.faint]
  if len(fitted) == len(lines) and not any(
      line.box[2] - line.box[0] < short * (line.box[3] - line.box[1])
      for line in lines):
    return list(lines)
  image = np.asarray(image)

  def gray(rows, cols):  # Only where needed: a whole page costs 0.1 s.
    part = image[rows, cols].astype(np.float32)
    return part.mean(axis=2) if part.ndim == 3 else part

  dark = ink_level(gray(slice(None, None, 4), slice(None, None, 4)))
  if dark is None:  # No ink.
    return fitted
  line_height = float(np.median([b.box[3] - b.box[1] for b in fitted])
                      ) if fitted else None

  def fit(box, height):
    x0, y0, x1, y1 = box
    c0 = max(int(np.floor(x0 - grow[0] * height)), 0)
    c1 = min(int(np.ceil(x1 + grow[0] * height)), image.shape[1])
    r0 = max(int(np.floor(y0 - grow[1] * height)), 0)
    r1 = min(int(np.ceil(y1 + grow[1] * height)), image.shape[0])
    ink = gray(slice(r0, r1), slice(c0, c1)) < dark
    cols = np.nonzero(ink.sum(axis=0) >= min_pixels)[0]
    rows = np.nonzero(ink.sum(axis=1) >= min_pixels)[0]
    if not len(cols) or not len(rows):
      return None
    return (float(c0 + cols[0]), float(r0 + rows[0]),
            float(c0 + cols[-1] + 1), float(r0 + rows[-1] + 1))

  out = []
  for line in lines:
    x0, y0, x1, y1 = line.box
    if not line.faint:
      if x1 - x0 >= short * (y1 - y0):
        out.append(line)
      elif (box := fit(line.box, y1 - y0)) is not None:
        out.append(DetectedLine(box, line.score))
      continue
    if line_height is None:
      continue
    centre = (y0 + y1) / 2
    box = fit((x0, centre - line_height / 2, x1, centre + line_height / 2),
              line_height)
    if box is None or box[2] - box[0] > line_height or any(
        _overlaps(box, other.box) for other in out + fitted):
      continue
    out.append(DetectedLine(box, line.score))
  return out


def merge_fragments(lines: Sequence[DetectedLine],
                    max_gap: float = MERGE_GAP,
                    min_overlap: float = 0.6,
                    gutters: Sequence[float] = ()) -> list[DetectedLine]:
  """Joins pieces of one text line: boxes side by side on the same row.

  A map can break a line at wide word gaps. Two boxes are pieces of one
  line when their vertical overlap is at least `min_overlap` of the lower
  box's height and the horizontal gap between them is at most `max_gap` x
  that height (a column gutter is wider), and no x of `gutters` lies in
  the gap. Joined boxes take the union box and the width-weighted mean
  score; joining repeats until nothing joins.
  """
  lines = list(lines)
  merged = True
  while merged:
    merged = False
    for i in range(len(lines)):
      for j in range(i + 1, len(lines)):
        a, b = lines[i].box, lines[j].box
        height = min(a[3] - a[1], b[3] - b[1])
        overlap = min(a[3], b[3]) - max(a[1], b[1])
        left, right = min(a[2], b[2]), max(a[0], b[0])
        if height > 0 and overlap >= min_overlap * height and (
            right - left <= max_gap * height) and not any(
                left <= g <= right for g in gutters):
          wa, wb = a[2] - a[0], b[2] - b[0]
          score = (lines[i].score * wa + lines[j].score * wb) / max(
              wa + wb, 1e-9)
          lines[i] = DetectedLine(
              (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]),
               max(a[3], b[3])), float(score))
          del lines[j]
          merged = True
          break
      if merged:
        break
  return lines


def merge_within_columns(lines: Sequence[DetectedLine],
                         max_gap: float = WIDE_GAP,
                         min_overlap: float = 0.6) -> list[DetectedLine]:
  """`merge_fragments` up to `max_gap` line heights, but never across a
  column gutter (`find_gutters` of the lines): a gap between words can be
  as wide as a gutter (in line heights) but it is not where a gutter is.
  A page without gutters is left as it is."""
  gutters = find_gutters([line.box for line in lines])
  if not gutters:
    return list(lines)
  return merge_fragments(lines, max_gap, min_overlap, gutters)


def box_iou(a: Box, b: Box) -> float:
  """Intersection over union of two (x0, y0, x1, y1) boxes."""
  x0, y0 = max(a[0], b[0]), max(a[1], b[1])
  x1, y1 = min(a[2], b[2]), min(a[3], b[3])
  inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
  union = ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
           - inter)
  return inter / union if union > 0 else 0.0


def match_pairs(found: Sequence[Box], truth: Sequence[Box],
                threshold: float = 0.5) -> list[tuple[int, int]]:
  """(found index, true index) pairs: each found box in turn takes the
  unused true box of highest IoU, if that IoU is at least threshold."""
  used, pairs = set(), []
  for i, box in enumerate(found):
    scores = [(box_iou(box, t), j) for j, t in enumerate(truth)
              if j not in used]
    if scores and max(scores)[0] >= threshold:
      used.add(max(scores)[1])
      pairs.append((i, max(scores)[1]))
  return pairs


def match_boxes(found: Sequence[Box], truth: Sequence[Box],
                threshold: float = 0.5) -> int:
  """Found boxes matched one-to-one (greedily, `match_pairs`) to a true box
  of IoU >= threshold: the true positives of detection precision and
  recall."""
  return len(match_pairs(found, truth, threshold))


# --- Reading order ------------------------------------------------------------


def find_gutters(boxes: Sequence[Box], *, min_width: float | None = None,
                 max_crossing: float = 0.15) -> list[float]:
  """x positions of column gutters, left to right.

  A gutter is an interior x range, at least `min_width` wide (default: the
  median box height), crossed by at most `max_crossing` of the boxes, with
  at least max(2, 20%) of the other boxes wholly on each side.
  """
  if len(boxes) < 4:
    return []
  b = np.asarray(boxes, np.float64)
  if min_width is None:
    min_width = float(np.median(b[:, 3] - b[:, 1]))
  left, right = b[:, 0].min(), b[:, 2].max()
  xs = np.arange(np.floor(left), np.ceil(right))
  coverage = ((b[:, 0][None] <= xs[:, None]) &
              (xs[:, None] < b[:, 2][None])).sum(axis=1)
  low = coverage <= int(max_crossing * len(b))
  gutters = []
  start = None
  for i, is_low in enumerate(np.append(low, False)):
    if is_low and start is None:
      start = i
    elif not is_low and start is not None:
      x0, x1 = xs[start], xs[i - 1] + 1
      start = None
      if x1 - x0 < min_width:
        continue
      middle = (x0 + x1) / 2
      crossing = (b[:, 0] < middle) & (b[:, 2] > middle)
      need = max(2, 0.2 * (len(b) - crossing.sum()))
      if (b[:, 2] <= middle).sum() >= need and (
          b[:, 0] >= middle).sum() >= need:
        gutters.append(float(middle))
  return gutters


def _top_to_bottom(boxes: np.ndarray, indices: list[int]) -> list[int]:
  """Indices by line: by vertical centre, lines side by side left first."""
  order = sorted(indices, key=lambda i: (boxes[i, 1] + boxes[i, 3]) / 2)
  rows = []
  for i in order:
    center = (boxes[i, 1] + boxes[i, 3]) / 2
    if rows:
      last = rows[-1][-1]
      half = (boxes[last, 3] - boxes[last, 1]) / 2
      if abs(center - (boxes[last, 1] + boxes[last, 3]) / 2) < half:
        rows[-1].append(i)
        continue
    rows.append([i])
  return [i for row in rows for i in sorted(row, key=lambda i: boxes[i, 0])]


def reading_order(boxes: Sequence[Box]) -> list[int]:
  """The indices of `boxes` in reading order (see the module docstring)."""
  if not len(boxes):
    return []
  b = np.asarray(boxes, np.float64)
  gutters = find_gutters(boxes)
  if not gutters:
    return _top_to_bottom(b, list(range(len(b))))
  crossing = [i for i in range(len(b))
              if any(b[i, 0] < g < b[i, 2] for g in gutters)]
  spanning = _top_to_bottom(b, crossing)
  edges = [-np.inf] + gutters + [np.inf]
  order = []
  top = -np.inf
  for cut in spanning + [None]:
    bottom = np.inf if cut is None else (b[cut, 1] + b[cut, 3]) / 2
    band = [i for i in range(len(b)) if i not in crossing
            and top <= (b[i, 1] + b[i, 3]) / 2 < bottom]
    for left, right in zip(edges[:-1], edges[1:]):
      column = [i for i in band if left <= (b[i, 0] + b[i, 2]) / 2 < right]
      order.extend(_top_to_bottom(b, column))
    if cut is not None:
      order.append(cut)
    top = bottom
  return order
