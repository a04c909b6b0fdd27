"""Sequence encoders over the backbone's feature columns.

`BiLSTMEncoder` stacks bidirectional LSTMs that respect each example's true
length (the backward direction starts at the last real time step).
`ConvEncoder` is the `text_fast` alternative: 1-D convolutions along time.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from ocr_jax.models.conv import Conv
from ocr_jax.models.resnet import batch_norm

Dtype = Any
ModuleDef = Any


class BiLSTMEncoder(nn.Module):
  """Stacked bidirectional LSTM.

  Attributes:
    hidden: LSTM units per direction.
    num_layers: stacked bidirectional layers.
    dropout_rate: dropout between layers.
    dtype: computation dtype.
  """
  hidden: int
  num_layers: int = 1
  dropout_rate: float = 0.1
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, lengths: jax.Array,
               train: bool) -> jax.Array:
    """Encodes a padded batch of sequences.

    Args:
      x: [batch, time, features].
      lengths: [batch] int32, real time steps per example.
      train: whether dropout is active.

    Returns:
      [batch, time, 2 * hidden]; steps at or beyond `lengths` hold
      unspecified values.
    """
    for i in range(self.num_layers):
      if i:
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
      forward = nn.RNN(nn.OptimizedLSTMCell(self.hidden, dtype=self.dtype))
      backward = nn.RNN(nn.OptimizedLSTMCell(self.hidden, dtype=self.dtype))
      x = nn.Bidirectional(forward, backward, name=f'bilstm{i + 1}')(
          x, seq_lengths=lengths)
    return x


class ConvEncoder(nn.Module):
  """1-D convolutions (kernel 3) along time, with BatchNorm and ReLU.

  Attributes:
    hidden: channels of each layer.
    num_layers: convolution layers.
    dropout_rate: dropout between layers.
    dtype: computation dtype.
    conv: the convolution module (`ocr_jax.models.backend`).
  """
  hidden: int
  num_layers: int = 2
  dropout_rate: float = 0.1
  dtype: Dtype = jnp.float32
  conv: ModuleDef = Conv

  @nn.compact
  def __call__(self, x: jax.Array, lengths: jax.Array,
               train: bool) -> jax.Array:
    """[batch, time, features] -> [batch, time, hidden].

    `lengths` [batch] is accepted for interface parity: padded steps are
    zeroed before each layer so they never leak into real ones.
    """
    mask = (jnp.arange(x.shape[1])[None, :] < lengths[:, None])[..., None]
    x = x[:, None]  # [batch, 1, time, features]
    for i in range(self.num_layers):
      if i:
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
      x = jnp.where(mask[:, None], x, 0).astype(self.dtype)
      x = self.conv(self.hidden, (1, 3), use_bias=False, dtype=self.dtype,
                    name=f'conv{i + 1}')(x)
      x = nn.relu(batch_norm(train, self.dtype, name=f'norm{i + 1}')(x))
    return x[:, 0]
