"""Tests for ocr_jax.training.losses against hand-computed values."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ocr_jax.training import losses


def test_cross_entropy_uniform_logits_is_log_vocab():
  logits = jnp.zeros((2, 3, 7))
  targets = jnp.array([[0, 1, 2], [3, 4, 5]])
  mask = jnp.array([[1, 1, 0], [1, 0, 0]], dtype=bool)
  loss_sum, weight_sum = losses.masked_cross_entropy(logits, targets, mask)
  assert float(weight_sum) == 3.0
  np.testing.assert_allclose(loss_sum, 3 * math.log(7), rtol=1e-6)


def test_cross_entropy_confident_logit():
  # Logit 10 on the target, 0 on 4 others: CE = log(1 + 4 e^-10).
  logits = jnp.zeros((1, 1, 5)).at[0, 0, 2].set(10.0)
  loss_sum, weight_sum = losses.masked_cross_entropy(
      logits, jnp.array([[2]]), jnp.ones((1, 1))
  )
  assert float(weight_sum) == 1.0
  np.testing.assert_allclose(
      loss_sum, math.log1p(4 * math.exp(-10)), atol=1e-6
  )


def test_cross_entropy_label_smoothing():
  eps, vocab = 0.1, 4
  logits = jnp.array([[[2.0, 0.0, -1.0, 0.5]]])
  scores = np.array([2.0, 0.0, -1.0, 0.5])
  log_p = scores - np.log(np.exp(scores).sum())
  q = np.full(vocab, eps / vocab)
  q[0] += 1 - eps
  expected = -(q * log_p).sum()
  loss_sum, _ = losses.masked_cross_entropy(
      logits, jnp.array([[0]]), jnp.ones((1, 1)), label_smoothing=eps
  )
  np.testing.assert_allclose(loss_sum, expected, rtol=1e-6)


def test_cross_entropy_bfloat16_logits_give_float32():
  logits = jnp.zeros((1, 2, 3), dtype=jnp.bfloat16)
  loss_sum, weight_sum = losses.masked_cross_entropy(
      logits, jnp.zeros((1, 2), jnp.int32), jnp.ones((1, 2))
  )
  assert loss_sum.dtype == jnp.float32
  assert weight_sum.dtype == jnp.float32
  np.testing.assert_allclose(loss_sum, 2 * math.log(3), rtol=1e-6)


def test_focal_gamma_zero_equals_alpha_times_cross_entropy():
  logits = jax.random.normal(jax.random.key(0), (2, 4, 6))
  targets = jax.random.randint(jax.random.key(1), (2, 4), 0, 6)
  mask = jnp.array([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=jnp.float32)
  ce, ce_weight = losses.masked_cross_entropy(logits, targets, mask)
  focal, focal_weight = losses.focal_loss(
      logits, targets, mask, alpha=0.25, gamma=0.0
  )
  np.testing.assert_allclose(focal, 0.25 * ce, rtol=1e-6)
  assert float(focal_weight) == float(ce_weight) == 5.0


def test_focal_value_by_hand():
  # Uniform over 4 classes: p_t = 1/4, CE = log 4, focal = (3/4)^2 log 4.
  loss_sum, _ = losses.focal_loss(
      jnp.zeros((1, 1, 4)), jnp.array([[1]]), jnp.ones((1, 1)), gamma=2.0
  )
  np.testing.assert_allclose(loss_sum, 0.5625 * math.log(4), rtol=1e-6)


def test_focal_gradient_is_finite_when_confident():
  logits = jnp.zeros((1, 1, 3)).at[0, 0, 0].set(100.0)
  grad = jax.grad(
      lambda x: losses.focal_loss(x, jnp.array([[0]]), jnp.ones((1, 1)))[0]
  )(logits)
  assert np.all(np.isfinite(grad))


def test_ctc_single_frame_single_label():
  # T=1, L=1: the only path is the label itself, loss = -log p(label).
  logits = jnp.array([[[0.3, -1.0, 0.7, 0.0, 1.5]]])
  loss = losses.ctc_loss(
      logits, jnp.zeros((1, 1)), jnp.array([[4]]), jnp.array([1])
  )
  expected = -jax.nn.log_softmax(logits[0, 0])[4]
  assert loss.shape == (1,)
  np.testing.assert_allclose(loss[0], expected, rtol=1e-5)


def test_ctc_two_frames_closed_form():
  # T=2, label 'a': paths aa, a_, _a, with blank id 3.
  logits = jnp.array(
      [[[0.1, 0.2, 0.3, 0.4, 0.5], [0.5, -0.2, 0.0, 1.0, 0.3]]]
  )
  p = np.asarray(jax.nn.softmax(logits[0], axis=-1))
  a, blank = 4, 3
  prob = (p[0, a] * p[1, a] + p[0, a] * p[1, blank] +
          p[0, blank] * p[1, a])
  loss = losses.ctc_loss(
      logits, jnp.zeros((1, 2)), jnp.array([[a]]), jnp.array([1])
  )
  np.testing.assert_allclose(loss[0], -math.log(prob), rtol=1e-5)


def test_ctc_padding_beyond_lengths_is_ignored():
  key_logits, key_extra = jax.random.split(jax.random.key(0))
  logits = jax.random.normal(key_logits, (2, 6, 8))
  labels = jnp.array([[5, 6, 0, 0], [7, 0, 0, 0]])
  lengths = jnp.array([2, 1])
  paddings = jnp.array([[0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1]],
                       dtype=jnp.float32)
  reference = losses.ctc_loss(logits, paddings, labels, lengths)

  # Extra padded frames with arbitrary logits, garbage labels past lengths.
  extra = jax.random.normal(key_extra, (2, 3, 8)) * 5
  logits_padded = jnp.concatenate([logits, extra], axis=1)
  paddings_padded = jnp.concatenate([paddings, jnp.ones((2, 3))], axis=1)
  labels_garbage = jnp.array([[5, 6, 9, 1, 2], [7, 2, 1, 6, 6]])
  padded = losses.ctc_loss(
      logits_padded, paddings_padded, labels_garbage, lengths
  )
  np.testing.assert_allclose(padded, reference, rtol=1e-5)

  # The second example alone, cut to its 4 real frames, agrees too.
  alone = losses.ctc_loss(
      logits[1:, :4], jnp.zeros((1, 4)), labels[1:, :1], lengths[1:]
  )
  np.testing.assert_allclose(alone[0], reference[1], rtol=1e-5)


def test_ctc_lengths_matter():
  logits = jax.random.normal(jax.random.key(0), (1, 5, 8))
  labels = jnp.array([[5, 6, 7]])
  short = losses.ctc_loss(logits, jnp.zeros((1, 5)), labels, jnp.array([1]))
  full = losses.ctc_loss(logits, jnp.zeros((1, 5)), labels, jnp.array([3]))
  assert not np.allclose(short, full)


@pytest.mark.parametrize(
    'fn, factor',
    [(losses.masked_cross_entropy, 1.0), (losses.focal_loss, 0.64)],
)
def test_jit(fn, factor):
  # Uniform over 5 classes: CE = log 5, focal factor (4/5)^2.
  logits = jnp.zeros((2, 3, 5))
  out = jax.jit(fn)(logits, jnp.zeros((2, 3), jnp.int32), jnp.ones((2, 3)))
  np.testing.assert_allclose(out[0], 6 * factor * math.log(5), rtol=1e-6)
