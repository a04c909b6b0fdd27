"""Training losses: masked cross-entropy, focal loss and CTC.

Pure functions of arrays, safe under `jax.jit`. All arithmetic runs in float32
whatever the dtype of the logits, so bfloat16 models get float32 losses.

The sequence losses return `(loss_sum, weight_sum)` rather than a mean: the
caller divides once, after summing over devices or microbatches, so every
target position weighs the same however the batch was split.
"""

import jax
import jax.numpy as jnp
import optax

from ocr_jax.text import charset


def _log_probs(logits: jax.Array) -> jax.Array:
  """Float32 log-softmax over the last axis."""
  return jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)


def masked_cross_entropy(
    logits: jax.Array,
    targets: jax.Array,
    mask: jax.Array,
    label_smoothing: float = 0.0,
) -> tuple[jax.Array, jax.Array]:
  """Summed token cross-entropy over the masked positions.

  With smoothing `eps` the target distribution is `(1 - eps) * one_hot +
  eps / vocab` (as `optax.smooth_labels`), so the true class gets
  `1 - eps + eps / vocab`.

  Args:
    logits: [batch, length, vocab] unnormalised scores, any float dtype.
    targets: [batch, length] integer class ids.
    mask: [batch, length] bool or float; 1 where the position counts.
    label_smoothing: smoothing epsilon in [0, 1).

  Returns:
    (loss_sum, weight_sum): float32 scalars; the mean loss is their ratio.
  """
  log_probs = _log_probs(logits)
  target_log_prob = jnp.take_along_axis(
      log_probs, targets[..., None].astype(jnp.int32), axis=-1
  )[..., 0]
  loss = -target_log_prob
  if label_smoothing:
    # -(sum_k q_k log p_k) with q = (1 - eps) one_hot + eps / vocab.
    uniform = -jnp.mean(log_probs, axis=-1)
    loss = (1.0 - label_smoothing) * loss + label_smoothing * uniform
  weights = mask.astype(jnp.float32)
  return jnp.sum(loss * weights), jnp.sum(weights)


def focal_loss(
    logits: jax.Array,
    targets: jax.Array,
    mask: jax.Array,
    alpha: float = 1.0,
    gamma: float = 2.0,
) -> tuple[jax.Array, jax.Array]:
  """Summed focal loss `alpha * (1 - p_t)**gamma * CE` over masked positions.

  Args:
    logits: [batch, length, vocab] unnormalised scores, any float dtype.
    targets: [batch, length] integer class ids.
    mask: [batch, length] bool or float; 1 where the position counts.
    alpha: constant weight of every term.
    gamma: focusing exponent; 0 gives `alpha` times the cross-entropy.

  Returns:
    (loss_sum, weight_sum): float32 scalars; the mean loss is their ratio.
  """
  log_probs = _log_probs(logits)
  target_log_prob = jnp.take_along_axis(
      log_probs, targets[..., None].astype(jnp.int32), axis=-1
  )[..., 0]
  p_t = jnp.exp(target_log_prob)
  # Clip so that p_t rounding to 1.0 cannot give 0 ** gamma gradients of NaN.
  modulator = jnp.power(jnp.clip(1.0 - p_t, 0.0, 1.0), gamma)
  loss = -alpha * modulator * target_log_prob
  weights = mask.astype(jnp.float32)
  return jnp.sum(loss * weights), jnp.sum(weights)


def ctc_loss(
    logits: jax.Array,
    logit_paddings: jax.Array,
    labels: jax.Array,
    label_lengths: jax.Array,
    blank_id: int = charset.BLANK_ID,
) -> jax.Array:
  """Per-example CTC negative log-likelihood.

  Label paddings are derived from `label_lengths`, so ids past the length
  (PAD, EOS or anything else) are ignored.

  Args:
    logits: [batch, time, vocab] unnormalised scores, any float dtype.
    logit_paddings: [batch, time] 1.0 at padded frames, 0.0 at real ones.
    labels: [batch, max_label_length] integer ids (never `blank_id` within
      the length).
    label_lengths: [batch] number of real labels per example.
    blank_id: id of the CTC blank (charset.BLANK_ID = 3).

  Returns:
    [batch] float32 losses (-log p(label | input)); about 1e5 when the label
    cannot be aligned, e.g. it needs more frames than there are.
  """
  max_len = labels.shape[1]
  positions = jnp.arange(max_len)[None, :]
  label_paddings = (positions >= label_lengths[:, None]).astype(jnp.float32)
  return optax.ctc_loss(
      logits.astype(jnp.float32),
      logit_paddings.astype(jnp.float32),
      labels.astype(jnp.int32),
      label_paddings,
      blank_id=blank_id,
  )
