"""Decoding: CTC collapse on fixed logits, attention greedy and beam search."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ocr_jax.text import charset
from ocr_jax.models import decode
from ocr_jax import models

PAD, EOS, BOS, BLANK = (charset.PAD_ID, charset.EOS_ID, charset.BOS_ID,
                        charset.BLANK_ID)
VOCAB = 15


@pytest.fixture(autouse=True, scope='module')
def fast_compile():
  """Tiny shapes: XLA's optimisations cost more compile time than they save."""
  previous = jax.config.read('jax_disable_most_optimizations')
  jax.config.update('jax_disable_most_optimizations', True)
  yield
  jax.config.update('jax_disable_most_optimizations', previous)


class FixedCTC(nn.Module):
  """A 'CTC model' whose images are its logits: [batch, 1, time, vocab]."""
  kind = 'ctc'

  def __call__(self, images, widths, decoder_inputs=None, train=False):
    time = images.shape[2]
    paddings = jnp.arange(time)[None, :] >= widths[:, None]
    return images[:, 0], paddings.astype(jnp.float32)


class FixedAttention(nn.Module):
  """An 'attention model' whose next-token logits depend on the last token.

  images [batch, 1, vocab, vocab] hold the transition table: row `token` is
  the logits after `token`.
  """
  kind = 'attention'

  def encode(self, images, widths, train=False):
    del widths, train
    table = images[:, 0]
    return table, table, jnp.zeros(table.shape[:2])

  def initial_carry(self, batch_size, time):
    del time  # The fixed table needs no attention state.
    return jnp.zeros((batch_size,))

  def decode_step(self, carry, tokens, memory, keys, paddings):
    del keys, paddings
    return carry, jnp.take_along_axis(memory, tokens[:, None, None],
                                      axis=1)[:, 0]


def one_hot_logits(frames, vocab=VOCAB, confidence=5.0):
  return jax.nn.one_hot(jnp.array(frames), vocab) * confidence


def test_ctc_collapse_merges_repeats_and_drops_blanks():
  a, b, c = 5, 6, 7
  frames = [[a, a, BLANK, a, b, b, BLANK, BLANK, c, c],
            [BLANK] * 10,
            [a, b, a, b, a, b, a, b, a, b],
            [c, BLANK, c, c, a, a, a, a, a, a]]
  logits = one_hot_logits(frames)[:, None]
  widths = jnp.array([10, 10, 10, 4])  # The last one has 6 padded frames.
  ids, confidences = jax.jit(decode.greedy_decode, static_argnums=(0, 4))(
      FixedCTC(), {}, logits, widths, 6)
  np.testing.assert_array_equal(ids, [
      [a, a, b, c, EOS, PAD, PAD],
      [EOS, PAD, PAD, PAD, PAD, PAD, PAD],
      [a, b, a, b, a, b, EOS],  # Truncated to max_length.
      [c, c, EOS, PAD, PAD, PAD, PAD]])
  p = float(jax.nn.softmax(one_hot_logits([a]))[0, a])
  np.testing.assert_allclose(confidences[0], [p] * 4 + [1.0] * 3, rtol=1e-6)
  # Best-path "beam search": the same ids, scored by the path probability.
  beam_ids, scores = decode.beam_search_decode(FixedCTC(), {}, logits,
                                               widths, 6, 4)
  np.testing.assert_array_equal(beam_ids, ids)
  np.testing.assert_allclose(scores, np.log(p) * np.array([10, 10, 10, 4]),
                             rtol=1e-5)


def test_ctc_collapse_keeps_the_kept_frame_confidence():
  ids, probs = decode.ctc_collapse(
      jnp.array([[5, 5, BLANK, 6]]), jnp.array([[0.9, 0.5, 0.7, 0.6]]),
      jnp.zeros((1, 4)), max_length=3)
  np.testing.assert_array_equal(ids, [[5, 6, EOS, PAD]])
  np.testing.assert_allclose(probs, [[0.9, 0.6, 1.0, 1.0]])


def transition_table(rows):
  """[1, 1, vocab, vocab] logits from {token: {next: prob}} (rest ~0)."""
  table = np.full((VOCAB, VOCAB), 1e-6)
  for token, nexts in rows.items():
    for nxt, prob in nexts.items():
      table[token, nxt] = prob
  table /= table.sum(axis=1, keepdims=True)
  return jnp.log(jnp.asarray(table, jnp.float32))[None, None]


def test_beam_search_escapes_the_greedy_trap():
  # Greedy takes 5 (0.6) and then faces four equally likely tokens; the
  # beam finds 6 (0.4) followed by a certain EOS.
  table = transition_table({BOS: {5: 0.6, 6: 0.4},
                            5: {7: 0.25, 8: 0.25, 9: 0.25, 10: 0.25},
                            6: {EOS: 1.0}, 7: {EOS: 1.0}, 8: {EOS: 1.0},
                            9: {EOS: 1.0}, 10: {EOS: 1.0}})
  widths = jnp.ones((1,), jnp.int32)
  ids, probs = decode.greedy_decode(FixedAttention(), {}, table, widths, 4)
  np.testing.assert_array_equal(ids[0], [5, 7, EOS, PAD, PAD])
  np.testing.assert_allclose(probs[0], [0.6, 0.25, 1.0, 1.0, 1.0],
                             rtol=1e-4)
  beam_ids, score = decode.beam_search_decode(FixedAttention(), {}, table,
                                              widths, 4, beam_size=3)
  np.testing.assert_array_equal(beam_ids[0], [6, EOS, PAD, PAD, PAD])
  np.testing.assert_allclose(score, [np.log(0.4)], rtol=1e-4)


def test_beam_search_length_penalty_prefers_longer_lines():
  # EOS now (0.5) or one more character first (0.45 * 1.0).
  table = transition_table({BOS: {EOS: 0.5, 5: 0.45, 6: 0.05},
                            5: {EOS: 1.0}, 6: {EOS: 1.0}})
  widths = jnp.ones((1,), jnp.int32)
  search = functools.partial(decode.beam_search_decode, FixedAttention(), {},
                             table, widths, 3, 2)
  np.testing.assert_array_equal(search(length_penalty=0.0)[0][0],
                                [EOS, PAD, PAD, PAD])
  np.testing.assert_array_equal(search(length_penalty=1.0)[0][0],
                                [5, EOS, PAD, PAD])


@pytest.fixture(scope='module')
def tiny_attention():
  """The tiny preset with weights scaled up so that outputs vary."""
  model = models.create_model('tiny', vocab_size=VOCAB)
  images = jax.random.normal(jax.random.key(0), (4, 32, 64, 3))
  widths = jnp.array([64, 50, 33, 64], jnp.int32)
  variables = jax.jit(model.init)({'params': jax.random.key(1)}, images,
                                  widths, jnp.zeros((4, 7), jnp.int32))
  leaves, treedef = jax.tree.flatten(variables['params'])
  keys = jax.random.split(jax.random.key(2), len(leaves))
  params = jax.tree.unflatten(treedef, [
      jax.random.normal(k, p.shape) * 0.5 for k, p in zip(keys, leaves)])
  return model, {**variables, 'params': params}, images, widths


def sequence_log_prob(ids, probs):
  return jnp.sum(jnp.where(ids == PAD, 0.0, jnp.log(probs)), axis=-1)


def test_beam_size_one_is_greedy(tiny_attention):
  model, variables, images, widths = tiny_attention
  greedy = jax.jit(decode.greedy_decode, static_argnums=(0, 4))
  ids, probs = greedy(model, variables, images, widths, 6)
  assert ids.shape == probs.shape == (4, 7) and ids.dtype == jnp.int32
  assert len({tuple(row) for row in np.asarray(ids)}) > 1  # Not constant.
  # PAD only after EOS, and only PAD there.
  for row in np.asarray(ids):
    if EOS in row:
      assert np.all(row[list(row).index(EOS) + 1:] == PAD)
  beam = jax.jit(decode.beam_search_decode, static_argnums=(0, 4, 5))
  beam_ids, scores = beam(model, variables, images, widths, 6, 1)
  np.testing.assert_array_equal(beam_ids, ids)
  np.testing.assert_allclose(scores, sequence_log_prob(ids, probs),
                             rtol=1e-4, atol=1e-4)
  wide_ids, wide_scores = beam(model, variables, images, widths, 6, 4)
  assert wide_ids.shape == (4, 7)
  # Scores are the log-probabilities of the returned sequences, ranked with
  # length normalisation: compare the normalised scores.
  def normalised(ids, scores):
    lengths = jnp.sum(ids != PAD, axis=-1)
    return scores / lengths ** 0.6
  assert np.all(normalised(wide_ids, wide_scores) >=
                normalised(ids, scores) - 1e-5)
