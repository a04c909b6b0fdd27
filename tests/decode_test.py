"""Decoding: CTC best path on fixed logits, attention greedy and beam search,
and the predict function built on them."""

import functools
import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ocr_jax import models
from ocr_jax.models import decode
from ocr_jax.text import charset

PAD, EOS, BOS, BLANK = (charset.PAD_ID, charset.EOS_ID, charset.BOS_ID,
                        charset.BLANK_ID)
VOCAB = 15

pytestmark = pytest.mark.usefixtures('fast_compile')


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
  ids, confidences = jax.jit(decode.ctc_best_path, static_argnums=(0, 4))(
      FixedCTC(), {}, logits, widths, 6)
  np.testing.assert_array_equal(ids, [
      [a, a, b, c, EOS, PAD, PAD],
      [EOS, PAD, PAD, PAD, PAD, PAD, PAD],
      [a, b, a, b, a, b, EOS],  # Truncated to max_length.
      [c, c, EOS, PAD, PAD, PAD, PAD]])
  p = float(jax.nn.softmax(one_hot_logits([a]))[0, a])
  np.testing.assert_allclose(confidences[0], [p] * 4 + [1.0] * 3, rtol=1e-6)
  # The predict function decodes CTC by best path whatever the beam size;
  # the line confidence is the product of the kept frames' probabilities.
  for beam_size in (1, 4):
    predict = decode.make_predict_fn(FixedCTC(), 'ctc', 6, beam_size)
    line_ids, lines, probs = predict({}, logits, widths)
    np.testing.assert_array_equal(line_ids, ids)
    np.testing.assert_allclose(probs, confidences)
    np.testing.assert_allclose(lines, p ** np.array([4, 0, 6, 2]), rtol=1e-5)


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
  ids, probs = decode.attention_greedy(FixedAttention(), {}, table, widths,
                                      4)
  np.testing.assert_array_equal(ids[0], [5, 7, EOS, PAD, PAD])
  np.testing.assert_allclose(probs[0], [0.6, 0.25, 1.0, 1.0, 1.0],
                             rtol=1e-4)
  beam_ids, score = decode.attention_beam_search(FixedAttention(), {}, table,
                                                 widths, 4, beam_size=3)
  np.testing.assert_array_equal(beam_ids[0], [6, EOS, PAD, PAD, PAD])
  np.testing.assert_allclose(score, [np.log(0.4)], rtol=1e-4)


def test_beam_search_length_penalty_prefers_longer_lines():
  # EOS now (0.5) or one more character first (0.45 * 1.0).
  table = transition_table({BOS: {EOS: 0.5, 5: 0.45, 6: 0.05},
                            5: {EOS: 1.0}, 6: {EOS: 1.0}})
  widths = jnp.ones((1,), jnp.int32)
  search = functools.partial(decode.attention_beam_search, FixedAttention(),
                             {}, table, widths, 3, 2)
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
  greedy = jax.jit(decode.attention_greedy, static_argnums=(0, 4))
  ids, probs = greedy(model, variables, images, widths, 6)
  assert ids.shape == probs.shape == (4, 7) and ids.dtype == jnp.int32
  assert len({tuple(row) for row in np.asarray(ids)}) > 1  # Not constant.
  # PAD only after EOS, and only PAD there.
  for row in np.asarray(ids):
    if EOS in row:
      assert np.all(row[list(row).index(EOS) + 1:] == PAD)
  beam = jax.jit(decode.attention_beam_search, static_argnums=(0, 4, 5))
  beam_ids, scores = beam(model, variables, images, widths, 6, 1)
  np.testing.assert_array_equal(beam_ids, ids)
  np.testing.assert_allclose(scores, sequence_log_prob(ids, probs),
                             rtol=1e-5, atol=1e-5)
  # The predict function: greedy's ids and the product of its token
  # probabilities at beam size 1; at beam size 2 the beam's ids and score,
  # with token probabilities that multiply to that score.
  greedy_ids, greedy_lines, greedy_probs = jax.jit(decode.make_predict_fn(
      model, 'attention', 6, 1))(variables, images, widths)
  np.testing.assert_array_equal(greedy_ids, ids)
  np.testing.assert_allclose(greedy_probs, probs, rtol=1e-6)
  np.testing.assert_allclose(np.log(greedy_lines),
                             sequence_log_prob(ids, probs), rtol=1e-5,
                             atol=1e-5)
  beam_ids, beam_lines, beam_probs = jax.jit(decode.make_predict_fn(
      model, 'attention', 6, 2))(variables, images, widths)
  wide_ids, wide_scores = beam(model, variables, images, widths, 6, 2)
  np.testing.assert_array_equal(beam_ids, wide_ids)
  np.testing.assert_allclose(np.log(beam_lines), wide_scores, rtol=1e-5)
  np.testing.assert_allclose(sequence_log_prob(beam_ids, beam_probs),
                             wide_scores, rtol=1e-4, atol=1e-4)


# Tokens an attention decoder can emit in a 6-token vocabulary: EOS, UNK and
# one character (PAD, BOS and BLANK are never emitted).
SMALL_VOCAB = 6
EMITTED = (EOS, charset.UNK_ID, 5)


def all_sequences(table, max_length):
  """{ids tuple: log-probability} of every line the decoder can emit.

  A line is up to max_length + 1 emitted tokens: it ends at its first EOS,
  or after max_length + 1 tokens without one (then it has no EOS).
  """
  log_probs = np.asarray(jax.nn.log_softmax(
      jnp.asarray(table)[:, list(EMITTED)], axis=-1))
  column = {token: i for i, token in enumerate(EMITTED)}
  lines = {}
  for length in range(1, max_length + 2):
    for tokens in itertools.product(EMITTED, repeat=length):
      if EOS in tokens[:-1] or (length <= max_length and tokens[-1] != EOS):
        continue
      previous = (BOS,) + tokens[:-1]
      lines[tokens] = sum(log_probs[p, column[t]]
                          for p, t in zip(previous, tokens))
  return lines


def padded(tokens, max_length):
  return list(tokens) + [PAD] * (max_length + 1 - len(tokens))


@pytest.mark.parametrize('seed', range(4))
def test_beam_search_is_greedy_at_width_one_and_exact_when_wide(seed):
  max_length = 3
  table = jax.random.normal(jax.random.key(seed),
                            (1, 1, SMALL_VOCAB, SMALL_VOCAB)) * 2.0
  widths = jnp.ones((1,), jnp.int32)
  lines = all_sequences(table[0, 0], max_length)
  assert len(lines) == 1 + 2 + 4 + 8 + 16  # 2 ** k lines end at EOS k.
  best = max(lines, key=lines.get)
  model = FixedAttention()
  greedy_ids, greedy_probs = decode.attention_greedy(model, {}, table, widths,
                                                     max_length)
  greedy_score = float(sequence_log_prob(greedy_ids, greedy_probs)[0])
  greedy_tokens = tuple(t for t in np.asarray(greedy_ids[0]) if t != PAD)
  # Greedy's probabilities are those of the line it emits.
  np.testing.assert_allclose(greedy_score, lines[greedy_tokens], rtol=1e-5)
  search = functools.partial(decode.attention_beam_search, model, {}, table,
                             widths, max_length, length_penalty=0.0)
  # Width 1: exactly greedy's ids and score.
  ids, score = search(beam_size=1)
  np.testing.assert_array_equal(ids, greedy_ids)
  np.testing.assert_allclose(score[0], greedy_score, rtol=1e-5)
  # Wide enough to keep every line: the most probable line of all, whose
  # score is at least greedy's.
  ids, score = search(beam_size=len(lines))
  np.testing.assert_array_equal(ids[0], padded(best, max_length))
  np.testing.assert_allclose(score[0], lines[best], rtol=1e-5)
  assert float(score[0]) >= greedy_score - 1e-6
