"""Decoding ids from both model kinds, and THE predict function.

`make_predict_fn(model, kind, max_length, beam_size)` is the one prediction
function: training's evaluation jits it, and the reader and export serialise
it. It picks one of three decoders, pure functions of (model, variables,
images, widths, ...):

  ctc_best_path          CTC: per-frame argmax, repeats collapsed, blanks
                         dropped, packed left (on the device a CTC model
                         decodes best path whatever the beam size; prefix
                         beam search runs on the host, see below).
  attention_greedy       attention: max_length + 1 steps from BOS, PAD after
                         the first EOS.
  attention_beam_search  attention: `beam_size` hypotheses in one pool,
                         alive or finished, ranked by log-probability /
                         length ** length_penalty; beam_size 1 is greedy.

All return ids [batch, max_length + 1] int32 laid out like the attention
targets: the characters, then EOS, then PAD. `ctc_frame_log_probs` gives a
CTC model's per-frame log-probabilities and frame counts instead, for the
host-side CTC prefix beam search and LM fusion of
`ocr_jax.reading.ctc_decoding`. The models are reached only
through `model.apply(..., method=...)`: `encode`, `initial_carry` and
`decode_step` of `AttentionOCR`, and the plain call of `CTCOCR`.
"""

from typing import Callable

import jax
from jax import lax
import jax.numpy as jnp

from ocr_jax.text import charset

_NEG_INF = -1e9
# Ids never emitted as characters by CTC decoding.
_CTC_DROPPED = (charset.PAD_ID, charset.EOS_ID, charset.BOS_ID,
                charset.BLANK_ID)


# --- CTC ----------------------------------------------------------------------


def ctc_collapse(frame_ids: jax.Array, frame_probs: jax.Array,
                 paddings: jax.Array,
                 max_length: int) -> tuple[jax.Array, jax.Array]:
  """Best-path CTC output from per-frame choices.

  Collapses repeated ids, drops blanks (and the other special ids), packs the
  kept ids to the left, truncates to max_length and appends EOS then PAD.

  Args:
    frame_ids: [batch, time] int32, argmax per frame.
    frame_probs: [batch, time] float32, the probability of that argmax.
    paddings: [batch, time], 1.0 at padded frames.
    max_length: the longest output in characters.

  Returns:
    ids [batch, max_length + 1] int32 and confidences [batch, max_length + 1]
    float32: the kept frame's probability per character, 1.0 for EOS/PAD.
  """
  batch, _ = frame_ids.shape
  previous = jnp.pad(frame_ids, ((0, 0), (1, 0)), constant_values=-1)[:, :-1]
  keep = (frame_ids != previous) & (paddings == 0)
  for special in _CTC_DROPPED:
    keep &= frame_ids != special
  slots = max_length + 1
  position = jnp.where(keep, jnp.cumsum(keep, axis=1) - 1, slots)
  position = jnp.where(position < max_length, position, slots)  # Truncate.
  rows = jnp.arange(batch)[:, None]
  ids = jnp.full((batch, slots), charset.PAD_ID, jnp.int32)
  ids = ids.at[rows, position].set(frame_ids.astype(jnp.int32), mode='drop')
  probs = jnp.ones((batch, slots), jnp.float32)
  probs = probs.at[rows, position].set(frame_probs, mode='drop')
  length = jnp.minimum(jnp.sum(keep, axis=1), max_length)
  ids = ids.at[jnp.arange(batch), length].set(charset.EOS_ID)
  return ids, probs


def ctc_best_path(model, variables, images: jax.Array, widths: jax.Array,
                  max_length: int) -> tuple[jax.Array, jax.Array]:
  """Best-path CTC decoding.

  Args:
    model: a `CTCOCR` (static under jit).
    variables: {'params', 'batch_stats'}.
    images: [batch, height, width, 3] float32.
    widths: [batch] int32 true pixel widths.
    max_length: the longest output in characters (static under jit).

  Returns:
    ids [batch, max_length + 1] int32 (characters, EOS, then PAD) and
    probabilities [batch, max_length + 1] float32: of the kept frame's
    argmax per character, 1.0 at EOS and PAD.
  """
  logits, paddings = model.apply(variables, images, widths, train=False)
  probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
  return ctc_collapse(jnp.argmax(probs, axis=-1), jnp.max(probs, axis=-1),
                      paddings, max_length)


def ctc_frame_log_probs(model, variables, images: jax.Array,
                        widths: jax.Array) -> tuple[jax.Array, jax.Array]:
  """A CTC model's per-frame log-probabilities, for host-side decoders.

  `ocr_jax.reading.ctc_decoding` runs prefix beam search (and an optional
  character LM) on them.

  Args:
    model: a `CTCOCR` (static under jit).
    variables: {'params', 'batch_stats'}.
    images: [batch, height, width, 3] float32.
    widths: [batch] int32 true pixel widths.

  Returns:
    log_probs [batch, frames, vocab] float32 (log-softmax over the whole
    vocabulary, special ids included) and lengths [batch] int32: the valid
    frames of each line (the first `lengths[i]`; the rest are padding).
  """
  logits, paddings = model.apply(variables, images, widths, train=False)
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  lengths = jnp.sum(paddings == 0, axis=1).astype(jnp.int32)
  return log_probs, lengths


# --- Attention ----------------------------------------------------------------


def _encode(model, variables, images, widths):
  memory, keys, paddings = model.apply(variables, images, widths,
                                       method='encode')
  carry = model.apply(variables, images.shape[0], memory.shape[1],
                      method='initial_carry')
  return carry, (memory, keys, paddings)


# Tokens an attention decoder never emits: it writes characters, then EOS.
_NEVER_EMITTED = (charset.PAD_ID, charset.BOS_ID, charset.BLANK_ID)


def _step(model, variables, carry, tokens, encoded):
  """(carry, log-probs [batch, vocab]) after feeding tokens [batch].

  PAD, BOS and BLANK are excluded (probability renormalised over the
  characters, UNK and EOS), so a weak model cannot end a line with PAD.
  """
  carry, logits = model.apply(variables, carry, tokens, *encoded,
                              method='decode_step')
  logits = logits.astype(jnp.float32).at[:, _NEVER_EMITTED].set(_NEG_INF)
  return carry, jax.nn.log_softmax(logits, axis=-1)


def attention_greedy(model, variables, images: jax.Array, widths: jax.Array,
                     max_length: int) -> tuple[jax.Array, jax.Array]:
  """Greedy decoding of an attention model.

  Args:
    model: an `AttentionOCR` (static under jit).
    variables: {'params', 'batch_stats'}.
    images: [batch, height, width, 3] float32.
    widths: [batch] int32 true pixel widths.
    max_length: the longest output in characters (static under jit).

  Returns:
    ids [batch, max_length + 1] int32 (characters, EOS, then PAD) and
    probabilities [batch, max_length + 1] float32 of each chosen token (EOS
    included), 1.0 at PAD.
  """
  carry, encoded = _encode(model, variables, images, widths)
  batch = images.shape[0]

  def body(state, _):
    carry, tokens, done = state
    carry, log_probs = _step(model, variables, carry, tokens, encoded)
    ids = jnp.argmax(log_probs, axis=-1).astype(jnp.int32)
    probs = jnp.exp(jnp.max(log_probs, axis=-1))
    ids = jnp.where(done, charset.PAD_ID, ids)
    probs = jnp.where(done, 1.0, probs)
    return (carry, ids, done | (ids == charset.EOS_ID)), (ids, probs)

  start = (carry, jnp.full((batch,), charset.BOS_ID, jnp.int32),
           jnp.zeros((batch,), bool))
  _, (ids, probs) = lax.scan(body, start, None, length=max_length + 1)
  return ids.T, probs.T


def _gather_beams(tree, indices: jax.Array):
  """Picks beams: leaves [batch, beams, ...], indices [batch, beams]."""
  def gather(x):
    idx = indices.reshape(*indices.shape, *([1] * (x.ndim - 2)))
    return jnp.take_along_axis(x, idx, axis=1)
  return jax.tree.map(gather, tree)


def _gather_flat_beams(tree, indices: jax.Array):
  """Picks beams: leaves [batch * beams, ...], indices [batch, beams]."""
  batch, beams = indices.shape
  unflatten = lambda x: x.reshape(batch, beams, *x.shape[1:])
  flatten = lambda x: x.reshape(batch * beams, *x.shape[2:])
  gathered = _gather_beams(jax.tree.map(unflatten, tree), indices)
  return jax.tree.map(flatten, gathered)


def _beam_candidates(log_probs, scores, lengths, finished, t, length_penalty):
  """Raw and normalised scores of every (beam, token) extension.

  Args:
    log_probs: [batch, beams, vocab] of the next token.
    scores: [batch, beams] raw log-probabilities so far.
    lengths: [batch, beams] tokens emitted so far (EOS included).
    finished: [batch, beams] bool.
    t: the step (tokens emitted so far by alive beams).
    length_penalty: exponent of the length normalisation.

  Returns:
    raw, normalised: [batch, beams * vocab]. A finished beam has a single
    candidate (PAD, unchanged score).
  """
  vocab = log_probs.shape[-1]
  pad_only = jnp.full((vocab,), _NEG_INF).at[charset.PAD_ID].set(0.0)
  step = jnp.where(finished[..., None], pad_only, log_probs)
  raw = scores[..., None] + step
  new_length = jnp.where(finished, lengths, t + 1).astype(jnp.float32)
  norm = raw / (new_length[..., None] ** length_penalty)
  return raw.reshape(raw.shape[0], -1), norm.reshape(norm.shape[0], -1)


def attention_beam_search(model, variables, images: jax.Array,
                          widths: jax.Array, max_length: int, beam_size: int,
                          length_penalty: float = 0.6
                          ) -> tuple[jax.Array, jax.Array]:
  """Beam-search decoding of an attention model.

  Args:
    model: an `AttentionOCR` (static under jit).
    variables: {'params', 'batch_stats'}.
    images: [batch, height, width, 3] float32.
    widths: [batch] int32 true pixel widths.
    max_length: the longest output in characters (static under jit).
    beam_size: hypotheses kept per image (static under jit).
    length_penalty: hypotheses are ranked by log-probability divided by
      length ** length_penalty (0 ranks by log-probability).

  Returns:
    ids [batch, max_length + 1] int32 (characters, EOS, then PAD) and scores
    [batch] float32: the log-probability of the returned sequence, so
    exp(scores) is its probability.
  """
  batch, beams = images.shape[0], beam_size
  repeat = lambda x: jnp.repeat(x, beams, axis=0)
  carry, encoded = _encode(model, variables, images, widths)
  carry, encoded = jax.tree.map(repeat, (carry, encoded))
  slots = max_length + 1
  # Only beam 0 is alive at the start, so the first step does not pick
  # the same extension from identical beams.
  init = (carry,
          jnp.full((batch, beams, slots), charset.PAD_ID, jnp.int32),
          jnp.tile(jnp.where(jnp.arange(beams) == 0, 0.0, _NEG_INF),
                   (batch, 1)),
          jnp.zeros((batch, beams), jnp.int32),
          jnp.zeros((batch, beams), bool))

  def body(state, t):
    carry, seqs, scores, lengths, finished = state
    previous = jnp.where(t == 0, charset.BOS_ID,
                         seqs[:, :, jnp.maximum(t - 1, 0)]).reshape(-1)
    carry, log_probs = _step(model, variables, carry, previous, encoded)
    raw, norm = _beam_candidates(log_probs.reshape(batch, beams, -1), scores,
                                 lengths, finished, t, length_penalty)
    _, best = lax.top_k(norm, beams)
    vocab = log_probs.shape[-1]
    origin, token = best // vocab, (best % vocab).astype(jnp.int32)
    carry = _gather_flat_beams(carry, origin)
    seqs, lengths, finished = _gather_beams((seqs, lengths, finished),
                                            origin)
    seqs = seqs.at[:, :, t].set(jnp.where(finished, charset.PAD_ID, token))
    lengths = jnp.where(finished, lengths, t + 1)
    finished = finished | (token == charset.EOS_ID)
    scores = jnp.take_along_axis(raw, best, axis=1)
    return (carry, seqs, scores, lengths, finished), None

  (_, seqs, scores, lengths, _), _ = lax.scan(body, init, jnp.arange(slots))
  norm = scores / lengths.astype(jnp.float32) ** length_penalty
  top = jnp.argmax(norm, axis=1)[:, None]
  seqs, scores = _gather_beams((seqs, scores), top)
  return seqs[:, 0], scores[:, 0]


# --- The predict function -----------------------------------------------------


def token_probabilities(model, kind: str, variables, images: jax.Array,
                        widths: jax.Array, ids: jax.Array) -> jax.Array:
  """Per-token probabilities of given ids (teacher-forced rescoring).

  Attention models: the decoder's probability of each id given the previous
  ones, over the tokens it can emit as in decoding (PAD positions 1.0). CTC
  models have none: NaN.
  """
  if kind != 'attention':
    return jnp.full(ids.shape, jnp.nan, jnp.float32)
  bos = jnp.full((ids.shape[0], 1), charset.BOS_ID, ids.dtype)
  decoder_inputs = jnp.concatenate([bos, ids[:, :-1]], axis=1)
  logits, _ = model.apply(variables, images, widths, decoder_inputs,
                          train=False)
  logits = logits.astype(jnp.float32).at[..., _NEVER_EMITTED].set(_NEG_INF)
  probs = jax.nn.softmax(logits, axis=-1)
  chosen = jnp.take_along_axis(probs, ids[..., None], axis=-1)[..., 0]
  return jnp.where(ids == charset.PAD_ID, 1.0, chosen)


def make_predict_fn(model, kind: str, max_length: int,
                    beam_size: int) -> Callable:
  """(variables, images, widths) -> (ids, line confidences, token probs).

  Args:
    model: the flax model.
    kind: 'attention' or 'ctc'.
    max_length: the longest label.
    beam_size: 1 for greedy decoding, else beam search (attention models;
      here CTC models decode best path whatever the beam size: their beam
      search runs on the host, on `ctc_frame_log_probs`).

  Returns:
    A pure function of (variables {'params', 'batch_stats'}, images
    [batch, height, width, 3] float32, widths [batch] int32) returning ids
    [batch, max_length + 1] int32, line confidences [batch] float32 (greedy:
    the product of the token probabilities, EOS included; beam search: exp
    of the beam's log-probability) and per-token probabilities
    [batch, max_length + 1] float32 (beam search: by rescoring the ids).
  """
  if kind not in ('attention', 'ctc'):
    raise ValueError(f"unknown model kind {kind!r}; 'attention' or 'ctc'")

  def predict(variables, images, widths):
    if kind == 'ctc' or beam_size == 1:
      decoder = ctc_best_path if kind == 'ctc' else attention_greedy
      ids, probs = decoder(model, variables, images, widths, max_length)
      line = jnp.prod(probs, axis=-1)
    else:
      ids, scores = attention_beam_search(model, variables, images, widths,
                                          max_length, beam_size)
      line = jnp.exp(scores)
      probs = token_probabilities(model, kind, variables, images, widths,
                                  ids)
    return (ids.astype(jnp.int32), line.astype(jnp.float32),
            probs.astype(jnp.float32))

  return predict
