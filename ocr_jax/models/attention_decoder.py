"""LSTM decoder with additive (Bahdanau) attention.

One `DecoderCell` step: embed the previous token, attend over the encoder
memory with the top LSTM layer's previous state as the query, feed
[embedding; context] through the LSTM stack, and predict the next token from
[output; context]. `AttentionDecoder` runs the cell over a whole
teacher-forced sequence with `nn.scan`; the decoding functions in
`ocr_jax.models.decode` call the same cell one step at a time. The
attention keys are projected once per sequence, outside the scan.
"""

from typing import Any

import flax.linen as nn
import jax
from jax import lax
import jax.numpy as jnp

Dtype = Any
ModuleDef = Any
# (LSTM (c, h) per layer, previous attention weights [batch, time]).
Carry = tuple[tuple[tuple[jax.Array, jax.Array], ...], jax.Array]
# Width of the 1-D filter over the previous attention weights.
_LOCATION_KERNEL = 9

_MASKED = -1e9

LOCATION_FILTER_FORMS = ('conv', 'product')


class LocationFilter(nn.Module):
  """1-D 'SAME' convolution of the attention weights, without bias.

  Holds `nn.Conv(features, (kernel,), use_bias=False)`'s parameter ('kernel'
  [kernel, 1, features]) and initialiser in both forms, so checkpoints move
  between them:

    'conv'     `lax.conv_general_dilated`, as `nn.Conv` computes it; for GPU
               and TPU.
    'product'  the kernel-width windows of the padded weights times the
               kernel, one matrix product. XLA:CPU's convolution for this
               one-channel filter (and above all its kernel gradient, once
               per decoder step) cost more than the rest of the attention.

  Attributes:
    features: output channels.
    kernel: filter width (odd).
    dtype: computation dtype.
    form: 'conv' or 'product' (see above; `ocr_jax.models.backend` picks).
  """
  features: int
  kernel: int
  dtype: Dtype = jnp.float32
  form: str = 'conv'

  @nn.compact
  def __call__(self, weights: jax.Array) -> jax.Array:
    """[batch, time] -> [batch, time, features]."""
    if self.form not in LOCATION_FILTER_FORMS:
      raise ValueError(f'LocationFilter form {self.form!r} is not one of '
                       f'{LOCATION_FILTER_FORMS}')
    kernel = self.param('kernel', nn.initializers.lecun_normal(),
                        (self.kernel, 1, self.features))
    kernel = kernel.astype(self.dtype)
    before = (self.kernel - 1) // 2
    pads = (before, self.kernel - 1 - before)
    if self.form == 'conv':
      return lax.conv_general_dilated(
          weights[..., None].astype(self.dtype), kernel, (1,), (pads,),
          dimension_numbers=('NWC', 'WIO', 'NWC'))
    time = weights.shape[1]
    padded = jnp.pad(weights, ((0, 0), pads))
    windows = jnp.stack([padded[:, i:i + time] for i in range(self.kernel)],
                        axis=-1)
    return windows.astype(self.dtype) @ kernel[:, 0]


class AdditiveAttention(nn.Module):
  """score(q, k_t) = v . tanh(W_k k_t + W_q q + U (F * a_prev)_t + b).

  Additive (Bahdanau) attention made location-aware (Chorowski et al.,
  2015): a 1-D convolution F of the previous step's weights a_prev feeds the
  score, so the model learns early that reading moves left to right. Without
  it the decoder sat for thousands of steps on a language-model plateau
  (loss ~2.0 on digits) before the alignment emerged.

  Attributes:
    attention_dim: size of the projected keys and query.
    dtype: computation dtype.
    location_filter: the `LocationFilter` form (`ocr_jax.models.backend`).
  """
  attention_dim: int
  dtype: Dtype = jnp.float32
  location_filter: ModuleDef = LocationFilter

  def setup(self):
    self.key_proj = nn.Dense(self.attention_dim, use_bias=False,
                             dtype=self.dtype)
    self.query_proj = nn.Dense(self.attention_dim, dtype=self.dtype)
    self.energy = nn.Dense(1, use_bias=False, dtype=self.dtype)
    self.location = self.location_filter(self.attention_dim,
                                         _LOCATION_KERNEL, dtype=self.dtype)

  def project_keys(self, memory: jax.Array) -> jax.Array:
    """[batch, time, memory_dim] -> [batch, time, attention_dim]."""
    return self.key_proj(memory)

  def __call__(self, query: jax.Array, keys: jax.Array, values: jax.Array,
               paddings: jax.Array,
               previous_weights: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Attends over the memory.

    Args:
      query: [batch, query_dim].
      keys: [batch, time, attention_dim] from `project_keys`.
      values: [batch, time, memory_dim].
      paddings: [batch, time], 1.0 at padded time steps.
      previous_weights: [batch, time], the previous step's weights.

    Returns:
      context [batch, memory_dim] and weights [batch, time] (float32).
    """
    location = self.location(previous_weights)
    hidden = jnp.tanh(keys + location + self.query_proj(query)[:, None, :])
    scores = self.energy(hidden)[..., 0].astype(jnp.float32)
    scores = jnp.where(paddings > 0, _MASKED, scores)
    weights = jax.nn.softmax(scores, axis=-1)
    context = jnp.einsum('bt,btd->bd', weights.astype(values.dtype), values)
    return context, weights


class DecoderCell(nn.Module):
  """One decoder step.

  Attributes:
    vocab_size: output classes (also the embedding table size).
    hidden: LSTM units and embedding size.
    num_layers: stacked LSTM layers.
    attention_dim: additive attention size.
    dropout_rate: dropout between LSTM layers and before the output layer.
    dtype: computation dtype.
    location_filter: the `LocationFilter` form (`ocr_jax.models.backend`).
  """
  vocab_size: int
  hidden: int
  num_layers: int = 1
  attention_dim: int = 128
  dropout_rate: float = 0.1
  dtype: Dtype = jnp.float32
  location_filter: ModuleDef = LocationFilter

  def setup(self):
    self.embed = nn.Embed(self.vocab_size, self.hidden, dtype=self.dtype)
    self.attention = AdditiveAttention(self.attention_dim, dtype=self.dtype,
                                       location_filter=self.location_filter)
    self.cells = [
        nn.OptimizedLSTMCell(self.hidden, dtype=self.dtype, name=f'lstm{i}')
        for i in range(self.num_layers)
    ]
    self.dropout = nn.Dropout(self.dropout_rate)
    self.output = nn.Dense(self.vocab_size, dtype=self.dtype)

  def initial_carry(self, batch_size: int, time: int) -> Carry:
    """Zero (c, h) per layer, each [batch, hidden], and attention weights
    [batch, time] all on the first frame, where reading starts."""
    zeros = jnp.zeros((batch_size, self.hidden), self.dtype)
    weights = jax.nn.one_hot(jnp.zeros((batch_size,), jnp.int32), time,
                             dtype=jnp.float32)
    return tuple((zeros, zeros) for _ in range(self.num_layers)), weights

  def __call__(self, carry: Carry, tokens: jax.Array, keys: jax.Array,
               values: jax.Array, paddings: jax.Array,
               train: bool = False) -> tuple[Carry, jax.Array]:
    """Advances one step.

    Args:
      carry: (c, h) per layer, each [batch, hidden].
      tokens: [batch] int32, the previous tokens.
      keys: [batch, time, attention_dim], projected memory.
      values: [batch, time, memory_dim], the memory.
      paddings: [batch, time], 1.0 at padded time steps.
      train: whether dropout is active.

    Returns:
      The new carry and logits [batch, vocab_size] (float32).
    """
    lstm_carry, previous_weights = carry
    context, weights = self.attention(lstm_carry[-1][1], keys, values,
                                      paddings, previous_weights)
    x = jnp.concatenate([self.embed(tokens), context.astype(self.dtype)], -1)
    new_carry = []
    for i, cell in enumerate(self.cells):
      if i:
        x = self.dropout(x, deterministic=not train)
      layer_carry, x = cell(lstm_carry[i], x)
      new_carry.append(tuple(c.astype(self.dtype) for c in layer_carry))
    x = jnp.concatenate([x, context.astype(self.dtype)], -1)
    x = self.dropout(x, deterministic=not train)
    logits = self.output(x).astype(jnp.float32)
    return (tuple(new_carry), weights), logits


class AttentionDecoder(nn.Module):
  """Teacher-forced decoder; also exposes single steps for reader_lib.

  Attributes:
    vocab_size: output classes.
    hidden: LSTM units.
    num_layers: stacked LSTM layers.
    attention_dim: additive attention size.
    dropout_rate: dropout rate.
    dtype: computation dtype.
    location_filter: the `LocationFilter` form (`ocr_jax.models.backend`).
  """
  vocab_size: int
  hidden: int
  num_layers: int = 1
  attention_dim: int = 128
  dropout_rate: float = 0.1
  dtype: Dtype = jnp.float32
  location_filter: ModuleDef = LocationFilter

  def setup(self):
    self.cell = DecoderCell(self.vocab_size, self.hidden, self.num_layers,
                            self.attention_dim, self.dropout_rate, self.dtype,
                            self.location_filter)

  def project_keys(self, memory: jax.Array) -> jax.Array:
    """[batch, time, memory_dim] -> [batch, time, attention_dim]."""
    return self.cell.attention.project_keys(memory)

  def initial_carry(self, batch_size: int, time: int) -> Carry:
    """Start state for `batch_size` sequences over `time` memory frames."""
    return self.cell.initial_carry(batch_size, time)

  def step(self, carry: Carry, tokens: jax.Array, keys: jax.Array,
           memory: jax.Array, paddings: jax.Array) -> tuple[Carry, jax.Array]:
    """One inference step; see `DecoderCell.__call__`."""
    return self.cell(carry, tokens, keys, memory, paddings, train=False)

  def __call__(self, memory: jax.Array, paddings: jax.Array,
               decoder_inputs: jax.Array, train: bool) -> jax.Array:
    """Teacher-forced logits.

    Args:
      memory: [batch, time, memory_dim], the encoder outputs.
      paddings: [batch, time], 1.0 at padded time steps.
      decoder_inputs: [batch, length] int32, BOS then the label shifted
        right.
      train: whether dropout is active.

    Returns:
      [batch, length, vocab_size] float32 logits.
    """
    keys = self.project_keys(memory)

    def body(cell, carry, tokens, keys, memory, paddings):
      return cell(carry, tokens, keys, memory, paddings, train)

    scan = nn.scan(body, variable_broadcast='params',
                   split_rngs={'params': False, 'dropout': True},
                   in_axes=(1, nn.broadcast, nn.broadcast, nn.broadcast),
                   out_axes=1)
    carry = self.initial_carry(decoder_inputs.shape[0], memory.shape[1])
    _, logits = scan(self.cell, carry, decoder_inputs, keys, memory,
                     paddings)
    return logits
