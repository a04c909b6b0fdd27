"""Whole OCR models: CNN + sequence encoder + attention decoder or CTC head.

Both models are called as

  logits, paddings = model.apply(variables, images, widths, decoder_inputs,
                                 train=..., rngs=..., mutable=...)

with images [batch, height, width, 3] float32 and widths [batch] int32 (the
true pixel widths before right-padding). `AttentionOCR` returns teacher-forced
logits [batch, length, vocab] and paddings None; `CTCOCR` ignores
decoder_inputs and returns per-frame logits [batch, time, vocab] with
paddings [batch, time] (1.0 at frames past the true width). Logits are float32
whatever the computation dtype.

The methods `encode`, `initial_carry` and `decode_step` serve the decoders in
`ocr_jax.models.decode` through `model.apply(..., method=...)`.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from ocr_jax.models.attention_decoder import AttentionDecoder
from ocr_jax.models.attention_decoder import Carry

Dtype = Any


def time_paddings(widths: jax.Array, time_stride: int,
                  num_steps: int) -> tuple[jax.Array, jax.Array]:
  """Frames covered by each image's true width.

  Args:
    widths: [batch] int32 pixel widths.
    time_stride: pixels per frame.
    num_steps: frames in the (padded) feature sequence.

  Returns:
    lengths [batch] int32 in [1, num_steps] and paddings [batch, num_steps]
    float32, 1.0 at frames at or beyond the length.
  """
  lengths = jnp.clip(-(-widths.astype(jnp.int32) // time_stride), 1,
                     num_steps)
  paddings = jnp.arange(num_steps)[None, :] >= lengths[:, None]
  return lengths, paddings.astype(jnp.float32)


class OCREncoder(nn.Module):
  """Backbone, height pooling, projection, dropout and sequence encoder.

  Attributes:
    backbone: module mapping (images, train) to [batch, h, t, channels],
      with a `time_stride` property (pixels per frame).
    sequence_encoder: module mapping (x, lengths, train) to
      [batch, t, memory_dim].
    feature: size of the projected feature columns.
    dropout_rate: dropout on the projected features.
    dtype: computation dtype.
  """
  backbone: nn.Module
  sequence_encoder: nn.Module
  feature: int
  dropout_rate: float = 0.1
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, widths: jax.Array,
               train: bool) -> tuple[jax.Array, jax.Array]:
    """Encodes images.

    Args:
      images: [batch, height, width, 3].
      widths: [batch] int32 true pixel widths.
      train: training mode (BatchNorm statistics, dropout).

    Returns:
      memory [batch, time, memory_dim] and paddings [batch, time] float32.
    """
    x = self.backbone(images, train)
    x = jnp.mean(x, axis=1)  # [batch, time, channels]
    x = nn.Dense(self.feature, dtype=self.dtype, name='projection')(x)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    lengths, paddings = time_paddings(widths, self.backbone.time_stride,
                                      x.shape[1])
    return self.sequence_encoder(x, lengths, train), paddings


class AttentionOCR(nn.Module):
  """Encoder + LSTM decoder with additive attention (teacher forcing).

  Attributes:
    encoder: an `OCREncoder`.
    decoder: an `AttentionDecoder`.
  """
  encoder: OCREncoder
  decoder: AttentionDecoder

  kind = 'attention'

  def encode(self, images: jax.Array, widths: jax.Array,
             train: bool = False) -> tuple[jax.Array, ...]:
    """Returns (memory [b, t, d], keys [b, t, attention_dim], paddings)."""
    memory, paddings = self.encoder(images, widths, train)
    return memory, self.decoder.project_keys(memory), paddings

  def initial_carry(self, batch_size: int, time: int) -> Carry:
    """Decoder start state over `time` memory frames."""
    return self.decoder.initial_carry(batch_size, time)

  def decode_step(self, carry: Carry, tokens: jax.Array, memory: jax.Array,
                  keys: jax.Array,
                  paddings: jax.Array) -> tuple[Carry, jax.Array]:
    """One greedy/beam step: tokens [b] -> (carry, logits [b, vocab])."""
    return self.decoder.step(carry, tokens, keys, memory, paddings)

  @nn.compact
  def __call__(self, images: jax.Array, widths: jax.Array,
               decoder_inputs: jax.Array | None = None,
               train: bool = False) -> tuple[jax.Array, None]:
    """Teacher-forced logits [batch, length, vocab] (float32) and None.

    Also sows ('intermediates', 'ctc') = (frame logits [batch, time, vocab],
    paddings [batch, time]) of an auxiliary CTC head on the encoder memory:
    training may add a CTC loss on it (joint CTC-attention), which aligns
    the encoder early and shortens the decoder's language-model plateau.
    """
    if decoder_inputs is None:
      raise ValueError('AttentionOCR needs decoder_inputs (BOS + shifted '
                       'labels); use ocr_jax.models.decode for inference')
    memory, paddings = self.encoder(images, widths, train)
    ctc_logits = nn.Dense(self.decoder.vocab_size, dtype=memory.dtype,
                          name='ctc_head')(memory)
    self.sow('intermediates', 'ctc', (ctc_logits.astype(jnp.float32),
                                      paddings))
    return self.decoder(memory, paddings, decoder_inputs, train), None


class CTCOCR(nn.Module):
  """Encoder + per-frame classifier trained with CTC.

  Attributes:
    encoder: an `OCREncoder`.
    vocab_size: output classes, including the blank.
    dropout_rate: dropout before the classifier.
    dtype: computation dtype.
  """
  encoder: OCREncoder
  vocab_size: int
  dropout_rate: float = 0.1
  dtype: Dtype = jnp.float32

  kind = 'ctc'

  @nn.compact
  def __call__(self, images: jax.Array, widths: jax.Array,
               decoder_inputs: jax.Array | None = None,
               train: bool = False) -> tuple[jax.Array, jax.Array]:
    """Frame logits [batch, time, vocab] (float32) and paddings [b, t]."""
    del decoder_inputs  # CTC needs no teacher forcing.
    memory, paddings = self.encoder(images, widths, train)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(memory)
    logits = nn.Dense(self.vocab_size, dtype=self.dtype, name='head')(x)
    return logits.astype(jnp.float32), paddings
