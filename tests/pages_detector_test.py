"""Tests of ocr_jax.pages.detector: shapes, loss, learning a toy map."""

import jax
import numpy as np
import pytest

from ocr_jax.pages import detector
from ocr_jax.pages import layout

pytestmark = pytest.mark.usefixtures('fast_compile')


def _toy_pages(count, rng, size=64):
  """Pages with 1-3 dark bars (lines) and their core maps."""
  images = np.full((count, size, size, 3), 255, np.uint8)
  targets = np.zeros((count, size // 4, size // 4), np.float32)
  for k in range(count):
    boxes = []
    for row in range(int(rng.integers(1, 4))):
      y0 = 4 + 20 * row + int(rng.integers(0, 4))
      x0 = int(rng.integers(2, 16))
      x1 = int(rng.integers(40, 62))
      boxes.append((x0, y0, x1, y0 + 12))
      images[k, y0 + 2:y0 + 10, x0:x1] = 30
    targets[k] = layout.core_map(boxes, size, size, scale=4)
  return images, targets


def test_output_is_a_quarter_of_the_page():
  model = detector.TinyLineDetectorNet(backend='cpu')
  state = detector.create_state(model, jax.random.key(0), (48, 80), 1e-3)
  logits = model.apply({'params': state.params,
                        'batch_stats': state.batch_stats},
                       np.zeros((2, 48, 80, 3), np.float32))
  assert logits.shape == (2, 12, 20)


def test_loss_values():
  target = np.zeros((1, 2, 2), np.float32)
  target[0, 0, 0] = 1.0
  sure = np.where(target > 0, 20.0, -20.0).astype(np.float32)
  assert float(detector.loss_fn(sure, target)) == pytest.approx(0.0,
                                                                abs=1e-3)
  # Logits 0: BCE log 2; dice (2 * 0.5 + 1) / (2 + 1 + 1) = 0.5.
  assert float(detector.loss_fn(np.zeros_like(target), target)) == (
      pytest.approx(np.log(2) + 0.5, abs=1e-5))


def test_learns_a_toy_map_and_detects_its_lines():
  rng = np.random.default_rng(0)
  images, targets = _toy_pages(16, rng)
  model = detector.TinyLineDetectorNet(backend='cpu')
  state = detector.create_state(model, jax.random.key(0), (64, 64), 1e-2)
  step = jax.jit(detector.train_step)
  batch = detector.standardize_page(images)
  losses = []
  for _ in range(80):
    state, loss = step(state, batch, targets)
    losses.append(float(loss))
  assert losses[-1] < 0.35 * losses[0]
  found = detector.LearnedDetector(
      model, {'params': state.params, 'batch_stats': state.batch_stats},
      max_side=64)
  test_images, test_targets = _toy_pages(4, np.random.default_rng(1))
  for image, target in zip(test_images, test_targets):
    want = layout.lines_from_map(target, scale=4)
    got = found.detect(image)
    assert len(got) == len(want)


def test_saved_file_gives_the_same_map(tmp_path):
  model = detector.TinyLineDetectorNet()
  variables = model.init(jax.random.key(3), np.zeros((1, 64, 64, 3)))
  variables = jax.tree.map(  # Non-trivial statistics, so all must travel.
      lambda x: x + 0.1 * np.arange(x.size).reshape(x.shape) / x.size,
      variables)
  path = str(tmp_path / 'detector.msgpack')
  detector.save_weights(path, variables, widths=model.widths, max_side=96,
                        threshold=0.6)
  loaded = detector.LearnedDetector.from_file(path)
  assert loaded.max_side == 96
  assert loaded.threshold == 0.6
  assert loaded.model.widths == model.widths
  page = np.random.default_rng(0).integers(0, 256, (80, 120, 3), np.uint8)
  expected, _ = detector.LearnedDetector(model, variables,
                                         max_side=96).probabilities(page)
  got, _ = loaded.probabilities(page)
  np.testing.assert_array_equal(got, expected)


def test_a_file_that_is_not_a_detector_is_refused(tmp_path):
  path = tmp_path / 'not.msgpack'
  path.write_bytes(b'\x00\x01garbage')
  with pytest.raises(ValueError, match='not a line detector file'):
    detector.LearnedDetector.from_file(str(path))
