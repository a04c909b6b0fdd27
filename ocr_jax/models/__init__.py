"""OCR model presets and the one function that builds them.

  model = create_model('small', vocab_size=15)
  variables = model.init({'params': k1, 'dropout': k2}, images, widths,
                         decoder_inputs, train=False)
  logits, paddings = model.apply(variables, images, widths, decoder_inputs,
                                 train=True, rngs={'dropout': k3},
                                 mutable=['batch_stats'])[0]

See `ocr_jax.models.ocr` for the call contract. The presets follow the
prototype's table (docs: SEED_FACTS.md). Parameter counts for the 15-id
digit vocabulary, float32 (tests/models_test.py checks the first four
against the prototype's reported figures):

  small 12.03 M   medium 15.87 M   large 28.59 M   ctc_small 11.71 M

The prototype's `text_*` presets list multi-head attention ("heads"); these
models use a single additive (Bahdanau) attention of the same size instead,
so `attention_heads` is recorded in the spec but not used.
"""

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from ocr_jax.models.attention_decoder import AttentionDecoder
from ocr_jax.models.conv import CONV_IMPLS
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
class ModelSpec:
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


def _attention(**kwargs) -> ModelSpec:
  return ModelSpec(kind='attention', **kwargs)


def _ctc(**kwargs) -> ModelSpec:
  return ModelSpec(kind='ctc', **kwargs)


_TINY = dict(feature=32, encoder_hidden=32, decoder_hidden=32,
             attention_dim=32, resnet_widths=(8, 16, 16, 32),
             resnet_blocks=(1, 1, 1, 1))

PRESETS: dict[str, ModelSpec] = {
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
}

MODELS = {'attention': AttentionOCR, 'ctc': CTCOCR}

# The LSTMs (BiLSTM encoder, attention decoder) compute in float32 whatever
# the model dtype: their per-step products are small and latency-bound, and
# on XLA:CPU bfloat16 only adds conversions to every step (a bfloat16
# `small` step is ~8% faster with float32 LSTMs).
RECURRENT_DTYPE = jnp.float32


def get_spec(preset: str) -> ModelSpec:
  """The spec of a preset; ValueError naming the valid presets if unknown."""
  if preset not in PRESETS:
    raise ValueError(f'unknown model preset {preset!r}; valid presets: '
                     f'{", ".join(sorted(PRESETS))}')
  return PRESETS[preset]


def model_kind(preset: str) -> str:
  """'attention' or 'ctc'."""
  return get_spec(preset).kind


def _backbone(spec: ModelSpec, dtype: Dtype, conv_impl: str) -> nn.Module:
  if spec.backbone == 'resnet18':
    return ResNet(stage_sizes=spec.resnet_blocks, widths=spec.resnet_widths,
                  stage_strides=spec.stage_strides or DEFAULT_STAGE_STRIDES,
                  stem_features=spec.resnet_widths[0], dtype=dtype,
                  conv_impl=conv_impl)
  if spec.backbone == 'efficientnet_b0':
    kwargs = {'stage_strides': spec.stage_strides} if spec.stage_strides else {}
    return EfficientNet(dtype=dtype, conv_impl=conv_impl, **kwargs)
  raise ValueError(f'unknown backbone {spec.backbone!r}')


def _sequence_encoder(spec: ModelSpec, dtype: Dtype, conv_impl: str,
                      dropout_rate: float) -> nn.Module:
  if spec.encoder == 'bilstm':
    return BiLSTMEncoder(spec.encoder_hidden, spec.encoder_layers,
                         dropout_rate, RECURRENT_DTYPE)
  if spec.encoder == 'conv':
    return ConvEncoder(spec.encoder_hidden, spec.encoder_layers, dropout_rate,
                       dtype, conv_impl)
  raise ValueError(f'unknown encoder {spec.encoder!r}')


def build_model(spec: ModelSpec, *, vocab_size: int,
                dtype: Dtype = jnp.float32, conv_impl: str = 'auto',
                dropout_rate: float = 0.1) -> nn.Module:
  """The model described by `spec` (see `create_model`)."""
  if conv_impl not in CONV_IMPLS:
    raise ValueError(f'conv_impl {conv_impl!r} is not one of {CONV_IMPLS}')
  encoder = OCREncoder(
      backbone=_backbone(spec, dtype, conv_impl),
      sequence_encoder=_sequence_encoder(spec, dtype, conv_impl,
                                         dropout_rate),
      feature=spec.feature, dropout_rate=dropout_rate, dtype=dtype)
  if spec.kind == 'attention':
    decoder = AttentionDecoder(vocab_size, spec.decoder_hidden,
                               spec.decoder_layers, spec.attention_dim,
                               dropout_rate, RECURRENT_DTYPE)
    return MODELS['attention'](encoder=encoder, decoder=decoder)
  return MODELS[spec.kind](encoder=encoder, vocab_size=vocab_size,
                           dropout_rate=dropout_rate, dtype=dtype)


def create_model(preset: str, *, vocab_size: int, dtype: Dtype = jnp.float32,
                 conv_impl: str = 'auto',
                 dropout_rate: float = 0.1) -> nn.Module:
  """Builds a preset.

  Args:
    preset: a key of PRESETS.
    vocab_size: output classes (special tokens included).
    dtype: computation dtype of the CNN, projections and CTC head (the LSTMs
      stay float32, see RECURRENT_DTYPE); parameters stay float32 and
      logits are returned as float32.
    conv_impl: convolution implementation, see `ocr_jax.models.conv`.
    dropout_rate: dropout rate everywhere.

  Returns:
    An `AttentionOCR` or `CTCOCR`.
  """
  return build_model(get_spec(preset), vocab_size=vocab_size, dtype=dtype,
                     conv_impl=conv_impl, dropout_rate=dropout_rate)
