"""OCR model presets and the one function that builds them.

  model = create_model('small', vocab_size=15)  # backend='auto'
  images, widths, decoder_inputs = dummy_inputs(64, 128, 8)
  variables = model.init({'params': k1, 'dropout': k2}, images, widths,
                         decoder_inputs, train=False)
  logits, paddings = model.apply(variables, images, widths, decoder_inputs,
                                 train=True, rngs={'dropout': k3},
                                 mutable=['batch_stats'])[0]

See `ocr_jax.models.ocr` for the call contract. `backend` names the platform
the model will run on ('auto': this process's); `ocr_jax.models.backend`
says what it changes (how the model computes, never its parameters).

The presets follow the prototype's table. Parameter counts for the 15-id
digit vocabulary, float32 (tests/models_test.py checks the first four
against the prototype's reported figures):

  small 12.03 M   medium 15.87 M   large 28.59 M   ctc_small 11.71 M

The `line_*` presets read printed text lines (48 px high, one frame per
4 px). For the 235-id 'khmer' vocabulary: line_ctc 5.61 M parameters, a
training step (bfloat16, batch 32 of 48 x 768) 1.77 s on 2 CPU cores;
line_ctc_small 1.31 M, 0.89 s (benchmarks/model_step_benchmark.py).

The prototype's `text_*` presets list multi-head attention ("heads"); these
models use a single additive (Bahdanau) attention of the same size instead,
so `attention_heads` is recorded in the `Architecture` but not used.
"""

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from ocr_jax.models.attention_decoder import AttentionDecoder
from ocr_jax.models.backend import Backend
from ocr_jax.models.backend import get_backend
from ocr_jax.models.efficientnet import EfficientNet
from ocr_jax.models.encoder import BiLSTMEncoder
from ocr_jax.models.encoder import ConvEncoder
from ocr_jax.models.ocr import AttentionOCR
from ocr_jax.models.ocr import CTCOCR
from ocr_jax.models.ocr import OCREncoder
from ocr_jax.models.resnet import DEFAULT_STAGE_STRIDES
from ocr_jax.models.resnet import ResNet

Dtype = Any


@dataclasses.dataclass(frozen=True)
class Architecture:
  """Architecture of one preset.

  Attributes:
    kind: 'attention' or 'ctc'.
    backbone: 'resnet18' or 'efficientnet_b0'.
    feature: size of the projected feature columns.
    encoder: 'bilstm' or 'conv' (1-D convolutions along time).
    encoder_hidden: units per direction (bilstm) or channels (conv).
    encoder_layers: stacked encoder layers.
    decoder_hidden: decoder LSTM units (attention only).
    decoder_layers: decoder LSTM layers (attention only).
    attention_dim: additive attention size (attention only).
    attention_heads: the prototype's head count; not used (see module doc).
    max_length: longest label in characters; decoders run max_length + 1
      steps (the characters, then EOS).
    resnet_widths: channels of the four ResNet stages.
    resnet_blocks: basic blocks per ResNet stage.
    stage_strides: (height, width) strides per backbone stage; None keeps the
      backbone's default.
  """
  kind: str
  backbone: str = 'resnet18'
  feature: int = 256
  encoder: str = 'bilstm'
  encoder_hidden: int = 128
  encoder_layers: int = 1
  decoder_hidden: int = 128
  decoder_layers: int = 1
  attention_dim: int = 128
  attention_heads: int = 1
  max_length: int = 8
  resnet_widths: tuple[int, ...] = (64, 128, 256, 512)
  resnet_blocks: tuple[int, ...] = (2, 2, 2, 2)
  stage_strides: tuple[tuple[int, int], ...] | None = None


def _attention(**kwargs) -> Architecture:
  return Architecture(kind='attention', **kwargs)


def _ctc(**kwargs) -> Architecture:
  return Architecture(kind='ctc', **kwargs)


_TINY = dict(feature=32, encoder_hidden=32, decoder_hidden=32,
             attention_dim=32, resnet_widths=(8, 16, 16, 32),
             resnet_blocks=(1, 1, 1, 1))

# Text lines: the stem and pool divide the width by 4 and no stage divides
# it again, so a frame covers 4 px: dense Khmer lines (130 characters in
# about 1,500 px) need a frame per character plus blanks between repeats.
# The height (48 px input, 12 after the pool) halves in every stage.
_LINE_STRIDES = ((2, 1), (2, 1), (2, 1), (2, 1))

PRESETS: dict[str, Architecture] = {
    'small': _attention(feature=256, encoder_hidden=128, decoder_hidden=128,
                        attention_dim=128),
    'medium': _attention(feature=512, encoder_hidden=256, encoder_layers=2,
                         decoder_hidden=256, attention_dim=256),
    'large': _attention(backbone='efficientnet_b0', feature=512,
                        encoder_hidden=512, encoder_layers=3,
                        decoder_hidden=512, decoder_layers=2,
                        attention_dim=512),
    'ctc_small': _ctc(feature=256, encoder_hidden=128),
    'ctc_medium': _ctc(feature=512, encoder_hidden=256, encoder_layers=2),
    'text_small': _attention(feature=512, encoder_hidden=256,
                             encoder_layers=2, decoder_hidden=256,
                             attention_dim=256, attention_heads=4,
                             max_length=30),
    'text_medium': _attention(feature=512, encoder_hidden=512,
                              encoder_layers=3, decoder_hidden=512,
                              decoder_layers=2, attention_dim=512,
                              attention_heads=8, max_length=50),
    'text_large': _attention(backbone='efficientnet_b0', feature=768,
                             encoder_hidden=768, encoder_layers=4,
                             decoder_hidden=768, decoder_layers=3,
                             attention_dim=768, attention_heads=12,
                             max_length=100),
    'text_fast': _ctc(feature=256, encoder='conv', encoder_hidden=256,
                      encoder_layers=2, max_length=30),
    'tiny': _attention(**_TINY),
    'tiny_ctc': _ctc(**_TINY),
    # Printed text lines: 4 px per frame (see _LINE_STRIDES).
    'line_ctc': _ctc(feature=256, encoder_hidden=256, encoder_layers=2,
                     max_length=192, resnet_widths=(32, 64, 128, 256),
                     resnet_blocks=(2, 2, 2, 2), stage_strides=_LINE_STRIDES),
    'line_ctc_small': _ctc(feature=192, encoder_hidden=128, encoder_layers=2,
                           max_length=192, resnet_widths=(32, 64, 96, 128),
                           resnet_blocks=(1, 1, 1, 1),
                           stage_strides=_LINE_STRIDES),
    'tiny_line_ctc': _ctc(**_TINY, max_length=192,
                          stage_strides=_LINE_STRIDES),
}

MODELS = {'attention': AttentionOCR, 'ctc': CTCOCR}


def get_architecture(preset: str) -> Architecture:
  """The architecture of a preset; ValueError naming the valid presets."""
  if preset not in PRESETS:
    raise ValueError(f'unknown model preset {preset!r}; valid presets: '
                     f'{", ".join(sorted(PRESETS))}')
  return PRESETS[preset]


def model_kind(preset: str) -> str:
  """'attention' or 'ctc'."""
  return get_architecture(preset).kind


def dummy_inputs(image_height: int, image_width: int, max_label_length: int,
                 batch_size: int = 1) -> tuple[jax.Array, ...]:
  """Inputs for `model.init` (and for tracing a model at these shapes).

  Args:
    image_height: image rows.
    image_width: image columns.
    max_label_length: longest label; decoder inputs hold one more token
      (BOS, then the label).
    batch_size: examples.

  Returns:
    images [batch, height, width, 3] float32 zeros, widths [batch] int32
    (all image_width) and decoder_inputs [batch, max_label_length + 1]
    int32 zeros.
  """
  images = jnp.zeros((batch_size, image_height, image_width, 3), jnp.float32)
  widths = jnp.full((batch_size,), image_width, jnp.int32)
  decoder_inputs = jnp.zeros((batch_size, max_label_length + 1), jnp.int32)
  return images, widths, decoder_inputs


def _backbone(arch: Architecture, dtype: Dtype,
              backend: Backend) -> nn.Module:
  if arch.backbone == 'resnet18':
    return ResNet(stage_sizes=arch.resnet_blocks, widths=arch.resnet_widths,
                  stage_strides=arch.stage_strides or DEFAULT_STAGE_STRIDES,
                  stem_features=arch.resnet_widths[0], conv=backend.conv,
                  max_pool=backend.max_pool, dtype=dtype)
  if arch.backbone == 'efficientnet_b0':
    kwargs = {'stage_strides': arch.stage_strides} if arch.stage_strides else {}
    return EfficientNet(conv=backend.conv, dtype=dtype, **kwargs)
  raise ValueError(f'unknown backbone {arch.backbone!r}')


def _sequence_encoder(arch: Architecture, dtype: Dtype, backend: Backend,
                      dropout_rate: float) -> nn.Module:
  if arch.encoder == 'bilstm':
    return BiLSTMEncoder(arch.encoder_hidden, arch.encoder_layers,
                         dropout_rate, backend.recurrent_dtype or dtype)
  if arch.encoder == 'conv':
    return ConvEncoder(arch.encoder_hidden, arch.encoder_layers, dropout_rate,
                       dtype, backend.conv)
  raise ValueError(f'unknown encoder {arch.encoder!r}')


def build_model(arch: Architecture, *, vocab_size: int,
                dtype: Dtype = jnp.float32, backend: str | Backend = 'auto',
                dropout_rate: float = 0.1) -> nn.Module:
  """The model described by `arch` (see `create_model`)."""
  if not isinstance(backend, Backend):
    backend = get_backend(backend)
  encoder = OCREncoder(
      backbone=_backbone(arch, dtype, backend),
      sequence_encoder=_sequence_encoder(arch, dtype, backend, dropout_rate),
      feature=arch.feature, dropout_rate=dropout_rate, dtype=dtype)
  if arch.kind == 'attention':
    decoder = AttentionDecoder(vocab_size, arch.decoder_hidden,
                               arch.decoder_layers, arch.attention_dim,
                               dropout_rate, backend.recurrent_dtype or dtype,
                               backend.location_filter)
    return MODELS['attention'](encoder=encoder, decoder=decoder)
  return MODELS[arch.kind](encoder=encoder, vocab_size=vocab_size,
                           dropout_rate=dropout_rate, dtype=dtype)


def create_model(preset: str, *, vocab_size: int, dtype: Dtype = jnp.float32,
                 backend: str | Backend = 'auto',
                 dropout_rate: float = 0.1) -> nn.Module:
  """Builds a preset for a platform.

  Args:
    preset: a key of PRESETS.
    vocab_size: output classes (special tokens included).
    dtype: computation dtype of the CNN, projections and CTC head (and of
      the LSTMs unless the backend keeps them in float32, as on CPU);
      parameters stay float32 and logits are returned as float32.
    backend: the platform the model runs on: 'auto' (this process's
      `jax.default_backend()`), 'cpu', 'gpu', 'cuda', 'rocm' or 'tpu', or a
      `Backend` (see `ocr_jax.models.backend`). It changes only how the
      model computes; every backend has the same parameters.
    dropout_rate: dropout rate everywhere.

  Returns:
    An `AttentionOCR` or `CTCOCR`.
  """
  return build_model(get_architecture(preset), vocab_size=vocab_size,
                     dtype=dtype, backend=backend, dropout_rate=dropout_rate)
