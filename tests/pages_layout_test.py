"""Tests of ocr_jax.pages.layout: deskew, cores -> boxes, reading order."""

import numpy as np
from PIL import Image
from PIL import ImageDraw
import pytest

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


def test_lines_from_map_drops_specks_and_weak_components():
  probs = np.zeros((20, 40), np.float32)
  probs[2:5, 2:30] = 0.9   # A line.
  probs[10, 10] = 0.95     # A speck of one cell.
  probs[14:17, 2:30] = 0.35  # Above threshold 0.3, mean below 0.5.
  lines = layout.lines_from_map(probs, scale=4)
  assert len(lines) == 1
  assert lines[0].score == pytest.approx(0.9)
  x0, y0, x1, y1 = lines[0].box
  assert (y0, y1) == pytest.approx((8 - 6, 20 + 6))  # Core height 12.


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
            line((405, 99, 500, 139), 0.9)]   # Gap 5 px < 0.25 x 39.
  column = [line((560, 100, 900, 140), 0.8)]  # Gutter 60 px: kept apart.
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
