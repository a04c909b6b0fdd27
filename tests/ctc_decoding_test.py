"""Host CTC decoding: prefix beam search against brute force, best path,
width 1, confidences and LM fusion (numpy only, no model)."""

import collections
import itertools
import math

import numpy as np
import pytest

from ocr_jax.models import decode
from ocr_jax.reading import ctc_decoding
from ocr_jax.text import char_lm
from ocr_jax.text import charset

BLANK = charset.BLANK_ID
# A tiny vocabulary: the 5 special ids, then 'a' and 'b' (ids 5, 6). UNK (4)
# is emitted like a character.
CHARS = 'ab'
VOCAB = charset.NUM_SPECIAL + len(CHARS)
EMITTED = (charset.UNK_ID, 5, 6)
SEPARATORS = (charset.PAD_ID, charset.EOS_ID, charset.BOS_ID, BLANK)


def random_log_probs(rng, frames, vocab=VOCAB, sharpness=1.5):
  logits = rng.normal(size=(frames, vocab)) * sharpness
  return logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)


def brute_force(log_probs):
  """label tuple -> P_ctc, by summing every frame path's probability.

  Independent of the decoder: every path over the whole vocabulary is
  collapsed by the CTC rule (repeats merged, then PAD/EOS/BOS/BLANK
  dropped, each acting as a separator like the blank).
  """
  probs = np.exp(log_probs)
  frames, vocab = probs.shape
  totals = collections.defaultdict(float)
  for path in itertools.product(range(vocab), repeat=frames):
    p = 1.0
    for t, k in enumerate(path):
      p *= probs[t, k]
    label, previous = [], None
    for k in path:
      if k != previous and k not in SEPARATORS:
        label.append(k)
      previous = k
    totals[tuple(label)] += p
  return totals


def lm_text(ids):
  return ''.join(CHARS[i - charset.NUM_SPECIAL] if i >= charset.NUM_SPECIAL
                 else '\ufffd' for i in ids)


def fused_score(label, p_ctc, lm, weight, bonus):
  """log P_ctc + weight * log P_lm (UNK uniform) + bonus * length."""
  lm_total = 0.0
  if lm is not None:
    text = ''
    for i in label:
      char = lm_text([i])
      lm_total += (lm.log_prob(text, char) if char in lm.chars
                   else -math.log(lm.size))
      text += char
    lm_total += lm.log_prob(text, char_lm.END)
  return math.log(p_ctc) + weight * lm_total + bonus * len(label)


@pytest.fixture(scope='module')
def tiny_lm():
  return char_lm.build(['abab', 'aab', 'ba', 'abba', 'b'], order=3,
                       chars=CHARS)


@pytest.mark.parametrize('seed', range(4))
def test_unpruned_beam_is_exact(seed):
  """Without pruning, the beam's texts and scores are the brute force's."""
  rng = np.random.default_rng(seed)
  log_probs = random_log_probs(rng, frames=4)
  totals = brute_force(log_probs)
  assert sum(totals.values()) == pytest.approx(1.0)
  hypotheses = ctc_decoding.prefix_beam_search(
      log_probs, beam_size=1000, min_char_prob=0.0, max_candidates=None)
  # Every label of positive probability is reachable and kept.
  assert {h.ids for h in hypotheses} == set(totals)
  for h in hypotheses:
    assert h.ctc_log_prob == pytest.approx(math.log(totals[h.ids]), abs=1e-9)
  best = max(totals, key=totals.get)
  assert hypotheses[0].ids == best
  assert hypotheses[0].score == pytest.approx(math.log(totals[best]))


@pytest.mark.parametrize('seed', range(4))
def test_pruned_beam_top_and_lower_bound(seed):
  """A narrower beam under-counts (never over-counts) probabilities."""
  rng = np.random.default_rng(seed)
  log_probs = random_log_probs(rng, frames=5, sharpness=3.0)
  totals = brute_force(log_probs)
  hypotheses = ctc_decoding.prefix_beam_search(log_probs, beam_size=3,
                                               min_char_prob=0.0)
  assert len(hypotheses) == 3
  for h in hypotheses:
    assert h.ctc_log_prob <= math.log(totals[h.ids]) + 1e-9
  scores = [h.score for h in hypotheses]
  assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize('seed', range(3))
@pytest.mark.parametrize('weight,bonus', [(0.7, 0.0), (1.5, 0.8)])
def test_lm_fused_beam_matches_brute_force(tiny_lm, seed, weight, bonus):
  rng = np.random.default_rng(seed)
  log_probs = random_log_probs(rng, frames=4)
  totals = brute_force(log_probs)
  expected = {label: fused_score(label, p, tiny_lm, weight, bonus)
              for label, p in totals.items()}
  hypotheses = ctc_decoding.prefix_beam_search(
      log_probs, beam_size=1000, min_char_prob=0.0, max_candidates=None,
      lm=tiny_lm, vocabulary_chars=CHARS, lm_weight=weight, length_bonus=bonus)
  best = max(expected, key=expected.get)
  assert hypotheses[0].ids == best
  assert hypotheses[0].score == pytest.approx(expected[best])
  for h in hypotheses:
    assert h.score == pytest.approx(expected[h.ids])


def test_lm_weight_zero_equals_no_lm(tiny_lm):
  rng = np.random.default_rng(7)
  log_probs = random_log_probs(rng, frames=12, sharpness=2.0)
  plain = ctc_decoding.prefix_beam_search(log_probs, beam_size=4)
  fused = ctc_decoding.prefix_beam_search(
      log_probs, beam_size=4, lm=tiny_lm, vocabulary_chars=CHARS,
      lm_weight=0.0)
  assert [h.ids for h in fused] == [h.ids for h in plain]
  assert [h.score for h in fused] == [h.score for h in plain]
  assert [h.confidence for h in fused] == [h.confidence for h in plain]
  # The LM is scored all the same, and does change the ranking at weight 1.
  assert all(h.lm_log_prob < 0 for h in fused)


def test_lm_changes_the_ranking(tiny_lm):
  """Frames that hesitate between 'ab' and 'bb': the LM ('ab' common, 'bb'
  never seen) breaks the tie; without it CTC prefers 'bb'."""
  probs = np.full((3, VOCAB), 1e-6)
  probs[0, [5, 6]] = [0.45, 0.55]
  probs[1, BLANK] = 1.0
  probs[2, 6] = 1.0
  log_probs = np.log(probs / probs.sum(-1, keepdims=True))
  plain = ctc_decoding.prefix_beam_search(log_probs, beam_size=4)
  fused = ctc_decoding.prefix_beam_search(
      log_probs, beam_size=4, lm=tiny_lm, vocabulary_chars=CHARS,
      lm_weight=1.0)
  assert lm_text(plain[0].ids) == 'bb'
  assert lm_text(fused[0].ids) == 'ab'


def greedy_text(log_probs):
  return tuple(ctc_decoding.best_path(log_probs)[0])


@pytest.mark.parametrize('seed', range(20))
def test_greedy_agrees_with_width_one(seed):
  """Width 1 gives the best path's text when each frame's top class
  (separators folded into the blank) has probability > 3/4."""
  rng = np.random.default_rng(seed)
  frames = 30
  top = rng.uniform(0.76, 0.99, size=frames)
  # Runs of the same class make repeats and blanks between repeats.
  classes = rng.choice([BLANK, 5, 6, charset.UNK_ID], size=frames,
                       p=[0.4, 0.25, 0.25, 0.1])
  probs = np.empty((frames, VOCAB))
  for t in range(frames):
    rest = rng.dirichlet(np.ones(VOCAB - 1)) * (1 - top[t])
    probs[t] = np.insert(rest, classes[t], top[t])
  log_probs = np.log(probs)
  # The folded top class is still the frame's argmax class.
  folded = ctc_decoding.fold_blank(log_probs)
  assert np.all(np.exp(folded.max(-1)) > 0.75)
  width_one = ctc_decoding.prefix_beam_search(log_probs, beam_size=1,
                                              min_char_prob=0.0)
  assert len(width_one) == 1
  assert width_one[0].ids == greedy_text(log_probs)


def test_width_one_is_not_best_path_below_three_quarters():
  """Why the threshold: blank + repeat together outweigh a new character."""
  probs = np.full((2, VOCAB), 1e-9)
  probs[0, 5] = 1.0
  probs[1, [BLANK, 5, 6]] = [0.3, 0.3, 0.4]
  log_probs = np.log(probs / probs.sum(-1, keepdims=True))
  assert greedy_text(log_probs) == (5, 6)
  assert ctc_decoding.prefix_beam_search(log_probs, beam_size=1)[0].ids == (
      5,)


def test_best_path_matches_device_collapse():
  rng = np.random.default_rng(3)
  batch, frames, max_length = 4, 16, 10
  log_probs = random_log_probs(rng, batch * frames).reshape(batch, frames, -1)
  lengths = np.array([16, 9, 1, 0])
  paddings = (np.arange(frames)[None] >= lengths[:, None]).astype(np.float32)
  ids, probs = decode.ctc_collapse(log_probs.argmax(-1),
                                   np.exp(log_probs.max(-1)), paddings,
                                   max_length)
  for row in range(batch):
    host_ids, host_probs = ctc_decoding.best_path(log_probs[row],
                                                  lengths[row])
    n = len(host_ids)
    assert list(np.asarray(ids[row, :n])) == host_ids
    assert int(ids[row, n]) == charset.EOS_ID
    np.testing.assert_allclose(np.asarray(probs[row, :n]), host_probs,
                               rtol=1e-6)


def test_confidences_hand_computed():
  """'ab' over 4 frames: a .6, a .9, blank, b .7."""
  probs = np.full((4, VOCAB), 0.0)
  probs[0, [5, BLANK]] = [0.6, 0.4]
  probs[1, [5, BLANK]] = [0.9, 0.1]
  probs[2, [BLANK, 6]] = [0.8, 0.2]
  probs[3, [6, BLANK]] = [0.7, 0.3]
  with np.errstate(divide='ignore'):
    log_probs = np.log(probs)
  best = ctc_decoding.prefix_beam_search(log_probs, beam_size=4)[0]
  assert best.ids == (5, 6)
  np.testing.assert_allclose(best.char_confidences, [0.9, 0.7])
  assert best.confidence == pytest.approx(0.63)
  np.testing.assert_array_equal(
      ctc_decoding.viterbi_alignment(ctc_decoding.fold_blank(log_probs),
                                     best.ids), [0, 0, -1, 1])


@pytest.mark.parametrize('seed', range(5))
def test_confidences_in_range_and_multiply(seed, tiny_lm):
  rng = np.random.default_rng(seed)
  log_probs = random_log_probs(rng, frames=25, sharpness=2.5)
  for h in ctc_decoding.prefix_beam_search(
      log_probs, beam_size=5, lm=tiny_lm, vocabulary_chars=CHARS,
      lm_weight=0.5):
    assert len(h.char_confidences) == len(h.ids)
    assert np.all((h.char_confidences >= 0) & (h.char_confidences <= 1))
    assert 0.0 <= h.confidence <= 1.0
    assert h.confidence == pytest.approx(np.prod(h.char_confidences),
                                         rel=1e-12)
    # Each character's confidence is one of its own frame probabilities.
    probs = np.exp(ctc_decoding.fold_blank(log_probs))
    for i, c in zip(h.ids, h.char_confidences):
      assert np.isclose(probs[:, i], c).any()


def test_repeated_characters_need_a_blank_between():
  """'aa' needs a blank frame; with frames a a it is read 'a'."""
  probs = np.full((3, VOCAB), 1e-6)
  probs[0, 5] = probs[2, 5] = 1.0
  probs[1, BLANK] = 1.0
  log_probs = np.log(probs / probs.sum(-1, keepdims=True))
  assert ctc_decoding.prefix_beam_search(log_probs)[0].ids == (5, 5)
  assert ctc_decoding.prefix_beam_search(log_probs[[0, 2]])[0].ids == (5,)
  empty = ctc_decoding.prefix_beam_search(log_probs, length=0)
  assert empty[0].ids == () and empty[0].confidence == 1.0


def test_decode_batch_respects_lengths():
  rng = np.random.default_rng(0)
  log_probs = random_log_probs(rng, 2 * 6, sharpness=4.0).reshape(2, 6, -1)
  results = ctc_decoding.decode_batch(log_probs, [6, 3], beam_size=2)
  assert results[1][0].ids == ctc_decoding.prefix_beam_search(
      log_probs[1, :3], beam_size=2)[0].ids
  assert results[0][0].ids == ctc_decoding.prefix_beam_search(
      log_probs[0], beam_size=2)[0].ids


def test_candidates_are_capped_on_flat_frames():
  """A flat frame extends by its max_candidates most probable characters."""
  probs = np.full((1, VOCAB), 0.1)
  probs[0, 6] = 0.3
  probs[0, charset.UNK_ID] = 0.2
  log_probs = np.log(probs / probs.sum())
  capped = ctc_decoding.prefix_beam_search(log_probs, beam_size=10,
                                           max_candidates=2)
  assert sorted(h.ids for h in capped) == [(), (charset.UNK_ID,), (6,)]
  every = ctc_decoding.prefix_beam_search(log_probs, beam_size=10,
                                          max_candidates=None)
  assert sorted(h.ids for h in every) == [(), (charset.UNK_ID,), (5,), (6,)]
