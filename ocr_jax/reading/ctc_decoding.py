"""CTC decoding on the host (numpy): best path and prefix beam search.

Both work on one line's per-frame log-probabilities [frames, vocab] (from
`ocr_jax.models.decode.ctc_frame_log_probs`), with ids laid out as in
`ocr_jax.text.charset`: BLANK_ID is the CTC blank, and PAD, EOS and BOS are
never emitted. A frame whose argmax is one of those acts exactly like a
blank in best path (`models.decode.ctc_collapse`); the beam search
therefore folds their probability into the blank's (`fold_blank`), which
sums the probabilities of all frame paths giving the same text. UNK and the
characters are emitted.

  best_path(log_probs)        exact best path: per-frame argmax, repeats
                              collapsed, blanks dropped (the same ids and
                              probabilities as the device's `ctc_best_path`).
  prefix_beam_search(log_probs, beam_size, lm=..., lm_weight=...)
                              CTC prefix beam search with optional shallow
                              fusion of a character LM.

Prefix beam search (Graves 2012, Hannun et al. 2014). Each hypothesis is a
prefix l with log p_b(l) and log p_nb(l): the probability of all frame paths
up to the current frame that collapse to l and end in a blank or in l's last
character. Paths are merged by prefix. At each frame every hypothesis is
extended by the blank and by its last character (staying l) and by every
character c whose frame probability is at least `min_char_prob`, at most
the `max_candidates` most probable (l + c; a repeat of l's last character
only from p_b). Then the `beam_size`
hypotheses of highest score are kept, where

  score(l) = log P_ctc(l) + lm_weight * log P_lm(l) + length_bonus * |l|,

log P_ctc(l) = logaddexp(log p_b, log p_nb) and log P_lm(l) the LM's
log-probability of l's characters, one after the other from the start of
the line; after the last frame log P_lm also includes the end of the line
(`char_lm.END`). With no pruning at all (min_char_prob 0, max_candidates
None and beam_size at least the number of prefixes reachable) log P_ctc(l)
is the exact CTC probability of l, the sum over all its paths; with pruning
it is a lower bound (the paths through pruned prefixes are lost).

Width 1. `prefix_beam_search(..., beam_size=1)` keeps the one prefix of
highest merged score at each frame. That is not the best path in general
(a prefix that stays put by blank and repeat together can outweigh a
single more probable character). It is the best path's text whenever every
frame's most probable class (the blank folded as above) has probability
above 3/4 and no LM is used: by induction, the kept prefix is the best
path's collapse so far, and after a repeat of the last character p_nb is at
least twice p_b, after a blank p_b is at least three times p_nb, which
makes the argmax's candidate the highest (pruning by min_char_prob <= 3/4
never drops that candidate). tests/ctc_decoding_test.py checks this on
random frames (`test_greedy_agrees_with_width_one`). The reader decodes
greedy (beam 1) on the device by best path and calls this module for
beam_size > 1.

Confidences of a decoded text l (`Hypothesis.char_confidences`,
`Hypothesis.confidence`): the best alignment of l to the frames (the
Viterbi path among l's CTC paths) gives each character a run of frames;
the character's confidence is its largest frame probability y_t(c) over
that run, in [0, 1]. The line confidence is exactly the product of the
character confidences (1.0 for an empty line), as for greedy decoding on the
device, where each character's probability is that of its first frame.
"""

from collections.abc import Sequence
import dataclasses
import functools
import math

import numpy as np

from ocr_jax.text import char_lm
from ocr_jax.text import charset

NEG_INF = -math.inf
# Ids that act as blanks: never emitted, folded into the blank.
NOT_EMITTED = (charset.PAD_ID, charset.EOS_ID, charset.BOS_ID)
# Characters below 1 % in a frame almost never end up in the best text
# (the same text as 1e-3 on validation lines of khmer-text, 2.5x faster).
DEFAULT_MIN_CHAR_PROB = 1e-2
DEFAULT_MAX_CANDIDATES = 16


@dataclasses.dataclass(frozen=True)
class Hypothesis:
  """One decoded text of a line.

  Attributes:
    ids: the emitted ids (characters and UNK), in order.
    score: the ranking score (see the module docstring): ctc_log_prob +
      lm_weight * lm_log_prob + length_bonus * len(ids).
    ctc_log_prob: log P_ctc of the ids (exact without pruning, else a lower
      bound).
    lm_log_prob: log P_lm of the text and the end of line (0.0 without LM).
    log_probs: the line's frames [frames, vocab], blank folded.
    blank: the blank id.
    char_confidences: [len(ids)] float64 in [0, 1], one per id.
    confidence: the product of char_confidences (1.0 when empty).
  """
  ids: tuple[int, ...]
  score: float
  ctc_log_prob: float
  lm_log_prob: float
  log_probs: np.ndarray = dataclasses.field(repr=False, compare=False)
  blank: int = dataclasses.field(default=charset.BLANK_ID, repr=False,
                                 compare=False)

  # Computed on first use: the Viterbi alignment behind them costs more
  # than the whole search, and callers mostly use the best hypothesis only.
  @functools.cached_property
  def char_confidences(self) -> np.ndarray:
    return char_confidences(self.log_probs, self.ids, blank=self.blank)

  @functools.cached_property
  def confidence(self) -> float:
    return float(np.prod(self.char_confidences))


def _logaddexp(a: float, b: float) -> float:
  if a == NEG_INF:
    return b
  if b == NEG_INF:
    return a
  if a > b:
    return a + math.log1p(math.exp(b - a))
  return b + math.log1p(math.exp(a - b))


def fold_blank(log_probs: np.ndarray, blank: int = charset.BLANK_ID,
               not_emitted: Sequence[int] = NOT_EMITTED) -> np.ndarray:
  """Log-probs [frames, vocab] with `not_emitted` folded into the blank.

  Their columns become -inf and the blank's column the log of the summed
  probabilities (float64).
  """
  log_probs = np.array(log_probs, np.float64)
  columns = [blank] + [i for i in not_emitted if i < log_probs.shape[-1]]
  log_probs[:, blank] = np.logaddexp.reduce(log_probs[:, columns], axis=-1)
  log_probs[:, [i for i in columns if i != blank]] = NEG_INF
  return log_probs


def _frames(log_probs, length):
  log_probs = np.asarray(log_probs)
  if log_probs.ndim != 2:
    raise ValueError(f'log_probs must be [frames, vocab], got shape '
                     f'{log_probs.shape}')
  if length is not None:
    log_probs = log_probs[:int(length)]
  return log_probs


def best_path(log_probs: np.ndarray, length: int | None = None, *,
              blank: int = charset.BLANK_ID,
              not_emitted: Sequence[int] = NOT_EMITTED
              ) -> tuple[list[int], list[float]]:
  """Exact CTC best path of one line.

  Args:
    log_probs: [frames, vocab] log-probabilities (or probabilities' logs of
      any normalisation: only the argmax and its exp are used).
    length: the valid frames (None: all).
    blank: the blank id.
    not_emitted: other ids dropped like the blank.

  Returns:
    (ids, probabilities): the per-frame argmax with repeats collapsed and
    blanks (and `not_emitted`) dropped, and for each kept id the
    probability of the first frame of its run, as the device's
    `ocr_jax.models.decode.ctc_collapse` does.
  """
  log_probs = _frames(log_probs, length)
  dropped = {blank, *not_emitted}
  ids, probs, previous = [], [], None
  for frame_id, frame_log_prob in zip(np.argmax(log_probs, axis=-1),
                                      np.max(log_probs, axis=-1)):
    frame_id = int(frame_id)
    if frame_id != previous and frame_id not in dropped:
      ids.append(frame_id)
      probs.append(float(np.exp(frame_log_prob)))
    previous = frame_id
  return ids, probs


def viterbi_alignment(log_probs: np.ndarray, ids: Sequence[int], *,
                      blank: int = charset.BLANK_ID) -> np.ndarray:
  """The most probable CTC path of `ids`: the label position of each frame.

  Args:
    log_probs: [frames, vocab] (blank already folded, see `fold_blank`).
    ids: the text's ids.
    blank: the blank id.

  Returns:
    [frames] int: i >= 0 when the frame emits ids[i], -1 for a blank frame.

  Raises:
    ValueError: no path of the frames gives `ids` (too few frames).
  """
  frames = log_probs.shape[0]
  states = [blank]
  for i in ids:
    states += [i, blank]
  states = np.asarray(states)
  n = len(states)
  emit = log_probs[:, states]  # [frames, n]
  # A state may be reached from itself, the one before, and (a character
  # unlike the one two before) from two before.
  skip = np.zeros(n, bool)
  skip[3::2] = states[3::2] != states[1:-2:2]
  score = np.full(n, NEG_INF)
  score[:2] = emit[0, :2] if frames else NEG_INF
  back = np.zeros((frames, n), np.int64)
  back[0] = np.arange(n)
  for t in range(1, frames):
    stay = score
    step = np.concatenate([[NEG_INF], score[:-1]])
    jump = np.where(skip, np.concatenate([[NEG_INF, NEG_INF], score[:-2]]),
                    NEG_INF)
    options = np.stack([stay, step, jump])
    choice = np.argmax(options, axis=0)
    score = options[choice, np.arange(n)] + emit[t]
    back[t] = np.arange(n) - choice
  if frames == 0:
    if ids:
      raise ValueError('no frame to align a non-empty text to')
    return np.zeros(0, np.int64)
  ends = [n - 1] + ([n - 2] if n > 1 else [])
  state = max(ends, key=lambda s: score[s])
  if score[state] == NEG_INF:
    raise ValueError(f'{len(ids)} ids cannot be aligned to {frames} frames')
  path = np.zeros(frames, np.int64)
  for t in range(frames - 1, -1, -1):
    path[t] = state
    state = back[t, state]
  return np.where(path % 2 == 1, path // 2, -1)


def char_confidences(log_probs: np.ndarray, ids: Sequence[int], *,
                     blank: int = charset.BLANK_ID) -> np.ndarray:
  """Each id's largest frame probability over its Viterbi run, [len(ids)].

  Args:
    log_probs: [frames, vocab] (blank already folded, see `fold_blank`).
    ids: the text's ids.
    blank: the blank id.
  """
  if not ids:
    return np.zeros(0)
  alignment = viterbi_alignment(log_probs, ids, blank=blank)
  frame_probs = np.exp(log_probs[np.arange(len(alignment)),
                                 np.asarray(ids)[np.maximum(alignment, 0)]])
  best = np.zeros(len(ids))
  emitting = alignment >= 0
  np.maximum.at(best, alignment[emitting], frame_probs[emitting])
  return np.clip(best, 0.0, 1.0)


class _LMColumns:
  """Maps model ids to an LM's symbols and caches its scores per prefix."""

  def __init__(self, lm: char_lm.CharLM, vocabulary_chars: str):
    self.lm = lm
    self.chars = vocabulary_chars
    # An id the LM cannot predict (UNK, a character it lacks) gets the
    # uniform probability over the LM's symbols.
    self.unknown = -math.log(lm.size)
    self.end = lm.index(char_lm.END)

  def char(self, token: int) -> str:
    i = token - charset.NUM_SPECIAL
    return self.chars[i] if 0 <= i < len(self.chars) else '\ufffd'

  def log_prob(self, text: str, token: int) -> float:
    i = self.lm.index(self.char(token))
    if i is None or i == self.end:
      return self.unknown
    return float(self.lm.log_probs(text)[i])

  def log_probs(self, text: str, tokens: Sequence[int]) -> list[float]:
    """`log_prob(text, t)` for each of `tokens`, with one LM lookup."""
    row = self.lm.log_probs(text)
    out = []
    for token in tokens:
      i = self.lm.index(self.char(token))
      out.append(self.unknown if i is None or i == self.end
                 else float(row[i]))
    return out

  def end_log_prob(self, text: str) -> float:
    return float(self.lm.log_probs(text)[self.end])


def prefix_beam_search(log_probs: np.ndarray, length: int | None = None, *,
                       beam_size: int = 8, lm: char_lm.CharLM | None = None,
                       vocabulary_chars: str | None = None,
                       lm_weight: float = 0.0, length_bonus: float = 0.0,
                       min_char_prob: float = DEFAULT_MIN_CHAR_PROB,
                       max_candidates: int | None = DEFAULT_MAX_CANDIDATES,
                       blank: int = charset.BLANK_ID,
                       not_emitted: Sequence[int] = NOT_EMITTED
                       ) -> list[Hypothesis]:
  """CTC prefix beam search over one line (see the module docstring).

  Args:
    log_probs: [frames, vocab] per-frame log-probabilities (log-softmax).
    length: the valid frames (None: all).
    beam_size: hypotheses kept after each frame (>= 1).
    lm: a character LM fused into the score (None: no LM).
    vocabulary_chars: the model vocabulary's characters (id NUM_SPECIAL + i
      is vocabulary_chars[i]); needed with an LM.
    lm_weight: the LM's weight (alpha); 0 ranks as without LM.
    length_bonus: added per emitted character (beta).
    min_char_prob: a frame extends prefixes only by characters at least this
      probable (0: by every character).
    max_candidates: and only by its this many most probable characters
      (None: no limit); bounds the work on flat, uncertain frames.
    blank: the blank id.
    not_emitted: ids folded into the blank.

  Returns:
    Up to beam_size hypotheses, best score first.
  """
  if beam_size < 1:
    raise ValueError(f'beam_size must be >= 1, got {beam_size}')
  if lm is not None and vocabulary_chars is None:
    raise ValueError('an LM needs vocabulary_chars to map ids to characters')
  log_probs = fold_blank(_frames(log_probs, length), blank, not_emitted)
  columns = _LMColumns(lm, vocabulary_chars) if lm is not None else None
  emitted = np.ones(log_probs.shape[1], bool)
  emitted[[blank, *[i for i in not_emitted if i < len(emitted)]]] = False
  threshold = math.log(min_char_prob) if min_char_prob > 0 else NEG_INF
  # prefix -> [log p_b, log p_nb]; prefix -> (text, LM log-prob so far).
  beams = {(): [0.0, NEG_INF]}
  lm_scores = {(): ('', 0.0)}

  def lm_extend(prefix, tokens):
    new = [c for c in tokens if prefix + (c,) not in lm_scores]
    if not new:
      return
    text, score = lm_scores[prefix]
    if columns is None:
      for c in new:
        lm_scores[prefix + (c,)] = (text, score)
      return
    for c, lp in zip(new, columns.log_probs(text, new)):
      lm_scores[prefix + (c,)] = (text + columns.char(c), score + lp)

  def rank(item):
    prefix, (p_b, p_nb) = item
    return (_logaddexp(p_b, p_nb) + lm_weight * lm_scores[prefix][1] +
            length_bonus * len(prefix))

  for frame in log_probs:
    blank_lp = float(frame[blank])
    candidates = np.nonzero(emitted & (frame >= threshold))[0]
    if max_candidates is not None and len(candidates) > max_candidates:
      top = np.argpartition(-frame[candidates], max_candidates - 1)
      candidates = np.sort(candidates[top[:max_candidates]])
    candidates = candidates.tolist()
    if not candidates:
      # No prefix is extended, so the beam keeps the same prefixes and
      # nothing is pruned: update them in place, without ranking.
      for prefix, entry in beams.items():
        p_b, p_nb = entry
        entry[0] = _logaddexp(p_b, p_nb) + blank_lp
        entry[1] = p_nb + float(frame[prefix[-1]]) if prefix else NEG_INF
      continue
    nxt = {}
    for prefix, (p_b, p_nb) in beams.items():
      total = _logaddexp(p_b, p_nb)
      entry = nxt.setdefault(prefix, [NEG_INF, NEG_INF])
      entry[0] = _logaddexp(entry[0], total + blank_lp)
      last = prefix[-1] if prefix else None
      if last is not None:
        entry[1] = _logaddexp(entry[1], p_nb + float(frame[last]))
      lm_extend(prefix, candidates)
      for c in candidates:
        extended = prefix + (c,)
        entry = nxt.setdefault(extended, [NEG_INF, NEG_INF])
        source = p_b if c == last else total
        entry[1] = _logaddexp(entry[1], source + float(frame[c]))
    # Impossible prefixes (a repeat with no blank before it) are dropped;
    # sorting by (score, prefix) keeps ties deterministic.
    ranked = sorted(nxt.items(), key=lambda item: (-rank(item), item[0]))
    ranked = [item for item in ranked
              if max(item[1]) > NEG_INF] or ranked[:1]
    beams = dict(ranked[:beam_size])

  results = []
  for prefix, (p_b, p_nb) in beams.items():
    ctc = _logaddexp(p_b, p_nb)
    text, lm_score = lm_scores[prefix]
    if columns is not None:
      lm_score += columns.end_log_prob(text)
    results.append(Hypothesis(
        ids=prefix,
        score=ctc + lm_weight * lm_score + length_bonus * len(prefix),
        ctc_log_prob=ctc, lm_log_prob=lm_score if columns is not None else 0.0,
        log_probs=log_probs, blank=blank))
  results.sort(key=lambda h: (-h.score, h.ids))
  return results


def decode_batch(log_probs: np.ndarray, lengths: np.ndarray, **kwargs
                 ) -> list[list[Hypothesis]]:
  """`prefix_beam_search` of each line of a batch.

  Args:
    log_probs: [batch, frames, vocab].
    lengths: [batch] valid frames per line.
    **kwargs: as `prefix_beam_search`.
  """
  return [prefix_beam_search(line, int(length), **kwargs)
          for line, length in zip(np.asarray(log_probs), np.asarray(lengths))]
