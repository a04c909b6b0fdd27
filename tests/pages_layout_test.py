"""Tests of ocr_jax.pages.layout: deskew, cores -> boxes, reading order."""

import numpy as np
from PIL import Image
from PIL import ImageDraw
import pytest
from scipy import ndimage

from ocr_jax.pages import layout


def _text_like_page(width=800, height=600, seed=0) -> np.ndarray:
  """Rows of dark 'words' (bars) on white, like lines of print."""
  rng = np.random.default_rng(seed)
  image = Image.new('RGB', (width, height), 'white')
  draw = ImageDraw.Draw(image)
  for top in range(60, height - 60, 30):
    x = 60
    while x < width - 120:
      w = int(rng.integers(20, 90))
      draw.rectangle((x, top, x + w, top + 12), fill='black')
      x += w + int(rng.integers(8, 16))
  return np.asarray(image)


@pytest.mark.parametrize('angle', [-3.0, -1.2, 0.0, 2.0, 4.5])
def test_estimate_skew_finds_the_rotation(angle):
  page = layout.rotate(_text_like_page(), angle)
  assert layout.estimate_skew(page) == pytest.approx(angle, abs=0.15)


def test_blank_page_has_no_skew_and_no_ink():
  blank = np.full((300, 200, 3), 255, np.uint8)
  assert layout.estimate_skew(blank) == 0.0
  assert layout.deskew(blank)[1] == 0.0


def test_unrotate_points_maps_deskewed_back_to_original():
  page = np.full((400, 600, 3), 255, np.uint8)
  page[300:304, 500:504] = 0  # A dot at (502, 302) on the straight page.
  skewed = layout.rotate(page, 3.0)
  ys, xs = np.nonzero(skewed[..., 0] < 128)
  point = layout.unrotate_points(np.array([[502.0, 302.0]]), 3.0, 600, 400)
  assert point[0] == pytest.approx([xs.mean() + 0.5, ys.mean() + 0.5],
                                   abs=1.0)
  # The dot moved up: counter-clockwise on screen, right of the centre.
  assert point[0, 1] < 302 - 5


def test_core_box_and_expand_core_are_inverse():
  box = (10.0, 20.0, 410.0, 60.0)
  core = layout.core_box(box)
  assert core == (20.0, 30.0, 400.0, 50.0)  # Height 40: 10 px each side.
  assert layout.expand_core(core) == pytest.approx(box)


def test_lines_from_map_recovers_boxes_from_a_ground_truth_map():
  boxes = [(40.0, 40.0, 440.0, 80.0), (40.0, 84.0, 300.0, 124.0),
           (480.0, 40.0, 760.0, 72.0)]
  target = layout.core_map(boxes, 200, 800, scale=4)
  assert target.shape == (50, 200)
  # Hand check of the first core: x 50..430, y 50..70 px are 12.5..107.5,
  # 12.5..17.5 cells; the cells whose centre (c + 0.5) is in [start, stop)
  # are 12..106 and 12..16.
  assert target[12:17, 12:107].all()
  assert not target[11, 12:107].any() and not target[17, 12:107].any()
  assert not target[12:17, 11].any() and not target[12:17, 107].any()
  lines = layout.lines_from_map(target, scale=4, page_size=(800, 200))
  found = sorted(line.box for line in lines)
  assert len(found) == 3
  for got, want in zip(found, sorted(boxes)):
    assert got == pytest.approx(want, abs=4.0)
  assert all(line.score == 1.0 for line in lines)


def test_lines_from_map_gives_back_a_box_whose_core_fills_whole_cells():
  # Height 32: the core is moved in by 8 px, to (48, 48, 432, 64): columns
  # 12..107 and rows 12..15 of cells exactly, so the box comes back exact.
  box = (40.0, 40.0, 440.0, 72.0)
  target = layout.core_map([box], 100, 500, scale=4)
  assert target.sum() == 96 * 4 and target[12:16, 12:108].all()
  (line,) = layout.lines_from_map(target, scale=4)
  assert line.box == pytest.approx(box)


def test_lines_from_map_drops_specks_and_weak_components():
  probs = np.zeros((20, 40), np.float32)
  probs[2:5, 2:30] = 0.9   # A line.
  probs[10, 10] = 0.95     # A speck of one cell.
  probs[14:17, 2:30] = 0.35  # Above threshold 0.3, mean below 0.5.
  lines = layout.lines_from_map(probs, scale=4)
  assert len(lines) == 1
  assert lines[0].score == pytest.approx(0.9)
  x0, y0, x1, y1 = lines[0].box
  # Each column holds 3 x 0.9 = 2.7 cells of core, centred on row 3.5:
  # a core of 10.8 px about y = 14, grown by 10.8 / 2 on each side.
  assert (y0, y1) == pytest.approx((14 - 10.8, 14 + 10.8))
  assert (x0, x1) == pytest.approx((8 - 5.4, 120 + 5.4))


def test_component_core_takes_sub_cell_edges_and_ignores_stray_cells():
  # A core seen at sub-cell precision over columns 2..11: rows 2 and 3
  # wholly core, row 4 half (0.5) and row 1 a quarter (0.25), so 2.75 cells
  # of core per column, centred at the probability-weighted mean of the
  # row centres (r + 0.5).
  probs = np.zeros((10, 14), np.float32)
  probs[1, 2:12] = 0.25
  probs[2:4, 2:12] = 1.0
  probs[4, 2:12] = 0.5
  probs[5, 6] = 0.9  # One stray cell below the line: the median ignores it.
  labels, _ = ndimage.label(probs > 0.3)
  found = ndimage.find_objects(labels)[0]
  x0, y0, x1, y1 = layout.component_core(probs, labels, 1, found, 4)
  centre = (1.5 * 0.25 + 2.5 + 3.5 + 4.5 * 0.5) / 2.75 * 4
  assert (x0, x1) == (8, 48)
  assert (y0 + y1) / 2 == pytest.approx(centre)
  assert y1 - y0 == pytest.approx(2.75 * 4)
  # The whole line: the core of 11 px grown by 11 / 2 px on every side
  # (`expand_core` with CORE_SHRINK 0.25), where the cells' bounding box
  # (rows 2..5) would have made the core 16 px and the box 32 px tall.
  (line,) = layout.lines_from_map(probs, scale=4, threshold=0.3)
  assert line.box == pytest.approx((8 - 5.5, centre - 11, 48 + 5.5,
                                    centre + 11))


def test_component_core_leaves_a_neighbours_cells_out():
  probs = np.zeros((8, 6), np.float32)
  probs[1:3, :] = 1.0   # Line A: rows 1-2.
  probs[3, :] = 0.2     # Below threshold, between A and B: shared edge.
  probs[4:6, :] = 0.8   # Line B: rows 4-5.
  labels, count = ndimage.label(probs > 0.5)
  assert count == 2
  a, b = ndimage.find_objects(labels)
  # A: rows 0..3 count (row 0 empty, row 3 gives 0.2): 2.2 cells.
  core = layout.component_core(probs, labels, 1, a, 4)
  assert core[3] - core[1] == pytest.approx(2.2 * 4)
  assert (core[1] + core[3]) / 2 == pytest.approx(
      (1.5 + 2.5 + 3.5 * 0.2) / 2.2 * 4)
  # B: rows 3..6: 0.2 + 0.8 + 0.8 = 1.8 cells.
  core = layout.component_core(probs, labels, 2, b, 4)
  assert core[3] - core[1] == pytest.approx(1.8 * 4)
  assert (core[1] + core[3]) / 2 == pytest.approx(
      (3.5 * 0.2 + 4.5 * 0.8 + 5.5 * 0.8) / 1.8 * 4)


def test_match_pairs_pairs_each_found_box_with_its_line():
  truth = [(0, 0, 100, 20), (0, 30, 100, 50)]
  found = [(0, 31, 100, 50), (0, 60, 9, 70), (0, 1, 100, 20)]
  assert layout.match_pairs(found, truth) == [(0, 1), (2, 0)]


def _column(x0, x1, top, count, height=30, gap=10):
  return [(x0, top + k * (height + gap), x1, top + k * (height + gap) + height)
          for k in range(count)]


def test_reading_order_two_columns_with_heading_and_page_number():
  heading = (100.0, 20.0, 900.0, 70.0)
  left = _column(100.0, 480.0, 100.0, 6)
  right = _column(520.0, 900.0, 100.0, 6)
  # A short last line of a paragraph, and an indented one.
  right[5] = (520.0, right[5][1], 700.0, right[5][3])
  left[2] = (140.0, left[2][1], 480.0, left[2][3])
  footer = (470.0, 400.0, 530.0, 430.0)
  boxes = left + right + [heading, footer]
  rng = np.random.default_rng(0)
  shuffled = rng.permutation(len(boxes))
  order = layout.reading_order([boxes[i] for i in shuffled])
  got = [boxes[shuffled[i]] for i in order]
  assert got == [heading] + left + right + [footer]


def test_reading_order_two_bands_of_columns():
  top_left, top_right = (_column(0.0, 400.0, 0.0, 4),
                         _column(450.0, 850.0, 0.0, 4))
  rule = (0.0, 170.0, 850.0, 200.0)  # A full-width line between the bands.
  low_left, low_right = (_column(0.0, 400.0, 220.0, 3),
                         _column(450.0, 850.0, 220.0, 3))
  boxes = top_right + low_left + [rule] + top_left + low_right
  order = layout.reading_order(boxes)
  assert [boxes[i] for i in order] == (top_left + top_right + [rule] +
                                       low_left + low_right)


def test_reading_order_single_column_and_side_by_side_pieces():
  boxes = [(0.0, 50.0, 300.0, 80.0), (320.0, 52.0, 500.0, 81.0),
           (0.0, 0.0, 500.0, 30.0), (0.0, 100.0, 500.0, 130.0)]
  assert layout.reading_order(boxes) == [2, 0, 1, 3]
  assert layout.reading_order([]) == []


def test_box_iou_hand_computed():
  # Overlap 5x10 = 50; union 100 + 100 - 50 = 150.
  assert layout.box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(
      50 / 150)
  assert layout.box_iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0
  assert layout.box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0


def test_match_boxes_is_one_to_one():
  truth = [(0, 0, 100, 20), (0, 30, 100, 50)]
  # Two finds on the first line: only one may count; the IoU of a box
  # half as tall is 0.5, just at the threshold.
  found = [(0, 0, 100, 20), (0, 0, 100, 10), (0, 31, 100, 50), (0, 60, 9, 70)]
  assert layout.match_boxes(found, truth) == 2
  assert layout.match_boxes(found[1:2], truth) == 1
  assert layout.match_boxes(found[1:2], truth, threshold=0.51) == 0


def test_merge_fragments_joins_pieces_of_a_row_only():
  line = layout.DetectedLine
  pieces = [line((0, 100, 200, 140), 0.9), line((190, 102, 400, 141), 0.6),
            line((405, 99, 500, 139), 0.9)]   # Gap 5 px < 0.7 x 39.
  column = [line((560, 100, 900, 140), 0.8)]  # Gutter 60 px > 0.7 x 40.
  below = [line((0, 150, 500, 190), 0.7)]     # Next row: 10 px overlap.
  merged = layout.merge_fragments(pieces + column + below)
  boxes = sorted(m.box for m in merged)
  assert boxes == [(0, 99, 500, 141), (0, 150, 500, 190),
                   (560, 100, 900, 140)]
  row = next(m for m in merged if m.box == (0, 99, 500, 141))
  # Width-weighted means, pair by pair: the first two (widths 200, 210),
  # then their union (400 wide) with the third (95).
  first = (0.9 * 200 + 0.6 * 210) / 410
  assert row.score == pytest.approx((first * 400 + 0.9 * 95) / 495)


def test_lines_from_map_finds_a_faint_component_only_with_the_lower_threshold():
  probs = np.zeros((30, 60), np.float32)
  probs[2:5, 2:50] = 0.9     # A strong line.
  probs[5, 20:24] = 0.4      # Its faint edge, joined to it above 0.3.
  probs[20, 30] = 0.6        # A faint page number: one cell over 0.5 ...
  probs[20, 29] = 0.35       # ... and one over 0.3 beside it.
  probs[25, 5] = 0.45        # Over 0.3 but its peak is under 0.5.
  probs[10:12, 40:56] = 0.55  # 32 cells: more than MAX_FAINT_CELLS (30).
  (strong,) = layout.lines_from_map(probs, scale=4, threshold=0.7)
  assert not strong.faint
  lines = layout.lines_from_map(probs, scale=4, threshold=0.7,
                                faint_threshold=0.3)
  assert len(lines) == 2 and lines[0] == strong
  # The faint one: the box of its cells, rows 20..20, columns 29..30, in
  # pixels, and its peak as score.
  assert lines[1].faint and lines[1].box == (116.0, 80.0, 124.0, 84.0)
  assert lines[1].score == pytest.approx(0.6)
  more = layout.lines_from_map(probs, scale=4, threshold=0.7,
                               faint_threshold=0.3, max_faint_cells=32)
  assert len(more) == 3 and more[1].box == (160.0, 40.0, 224.0, 48.0)


def _ink_page():
  """A white 200 x 400 page: a long line of ink, a short word, a digit."""
  page = np.full((200, 400, 3), 255, np.uint8)
  page[20:40, 10:390] = 0    # A line 380 x 20.
  page[60:80, 30:70] = 0     # A short line 40 x 20.
  page[150:170, 200:212] = 0  # A page number 12 x 20.
  return page


def test_fit_to_ink_fits_short_and_faint_boxes_and_keeps_long_ones():
  line = layout.DetectedLine
  long_line = line((5.0, 16.0, 395.0, 44.0), 0.9)   # Wider than 3 heights.
  short = line((20.0, 56.0, 80.0, 84.0), 0.8)       # 60 < 3 x 28: fitted.
  # A faint box of map cells left of the digit and thinner than a line:
  # centred in a box of the median height (28) it spans y 146..174, grown
  # by 0.5 x 28 left and right it reaches x 184..222, so the whole digit.
  faint = line((192.0, 156.0, 208.0, 164.0), 0.6, faint=True)
  fitted = layout.fit_to_ink(_ink_page(), [long_line, short, faint])
  assert [f.box for f in fitted] == [
      long_line.box, (30.0, 60.0, 70.0, 80.0), (200.0, 150.0, 212.0, 170.0)]
  assert not fitted[2].faint and fitted[2].score == 0.6


def test_fit_to_ink_drops_faint_boxes_on_lines_wide_or_without_ink():
  line = layout.DetectedLine
  long_line = line((5.0, 16.0, 395.0, 44.0), 0.9)
  on_line = line((100.0, 24.0, 108.0, 32.0), 0.6, faint=True)  # Overlaps.
  blank = line((300.0, 120.0, 308.0, 128.0), 0.6, faint=True)  # No ink.
  page = _ink_page()
  page[100:110, 100:200] = 0  # A rule 100 px wide: wider than a line (28).
  rule = line((140.0, 100.0, 150.0, 108.0), 0.6, faint=True)
  assert layout.fit_to_ink(page, [long_line, on_line, blank, rule]) == [
      long_line]


def test_merge_within_columns_joins_wide_word_gaps_but_not_columns():
  line = layout.DetectedLine
  left = [line(b) for b in _column(100.0, 480.0, 100.0, 5)]
  right = [line(b) for b in _column(540.0, 900.0, 100.0, 5)]
  # The third left line in two pieces 27 px apart: 0.9 line heights (30),
  # wider than MERGE_GAP (0.7) but within WIDE_GAP (1.0); the gutter
  # (480..540) is 2 heights wide.
  y0, y1 = left[2].box[1], left[2].box[3]
  pieces = [line((100.0, y0, 250.0, y1)), line((277.0, y0, 480.0, y1))]
  lines = left[:2] + pieces + left[3:] + right
  assert len(layout.merge_fragments(lines)) == 11
  merged = layout.merge_within_columns(lines)
  assert sorted(m.box for m in merged) == sorted(
      m.box for m in left + right)
  # With a gutter at 520 a gap of 60 px would not join even at 3 heights.
  assert len(layout.merge_within_columns(left + right, max_gap=3.0)) == 10
