"""Model presets: parameter counts, output shapes, masking, dtypes."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ocr_jax import models
from ocr_jax.models import backend as backend_lib
from ocr_jax.models.attention_decoder import AttentionDecoder
from ocr_jax.models.attention_decoder import LocationFilter
from ocr_jax.models.encoder import BiLSTMEncoder
from ocr_jax.models.resnet import cpu_max_pool_3x3_s2
from ocr_jax.models.resnet import max_pool_3x3_s2

pytestmark = pytest.mark.usefixtures('fast_compile')

VOCAB = 15  # The digit vocabulary: 5 special ids + 10 digits.
# The prototype's reported parameter counts.
REPORTED_PARAMS = {'small': 12.48e6, 'medium': 16.17e6, 'large': 29.07e6,
                   'ctc_small': 12.27e6}


def init_args(batch=2, height=64, width=128, max_length=8):
  return models.dummy_inputs(height, width, max_length, batch)


def abstract_variables(model, *args):
  return jax.eval_shape(functools.partial(model.init, train=False),
                        {'params': jax.random.key(0),
                         'dropout': jax.random.key(1)}, *args)


def count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


@pytest.mark.parametrize('preset', sorted(REPORTED_PARAMS))
def test_parameter_count_matches_prototype(preset):
  model = models.create_model(preset, vocab_size=VOCAB)
  params = abstract_variables(model, *init_args())['params']
  assert count(params) == pytest.approx(REPORTED_PARAMS[preset], rel=0.15)


@pytest.mark.parametrize('preset', sorted(models.PRESETS))
def test_every_preset_builds_with_the_right_output_shapes(preset):
  arch = models.get_architecture(preset)
  model = models.create_model(preset, vocab_size=VOCAB)
  args = init_args(batch=2, width=96, max_length=arch.max_length)
  variables = abstract_variables(model, *args)
  assert set(variables) == {'params', 'batch_stats'}
  logits, paddings = jax.eval_shape(model.apply, variables, *args)
  if models.model_kind(preset) == 'attention':
    assert logits.shape == (2, arch.max_length + 1, VOCAB)
    assert paddings is None
  else:
    frames = 96 // model.encoder.backbone.time_stride
    assert frames == 96 // (4 if 'line' in preset else 8)
    assert logits.shape == (2, frames, VOCAB)
    assert paddings.shape == (2, frames)
  assert logits.dtype == jnp.float32


def test_unknown_preset_lists_the_valid_ones():
  with pytest.raises(ValueError, match='small.*tiny'):
    models.create_model('ctc', vocab_size=VOCAB)
  with pytest.raises(ValueError, match='ctc_small'):
    models.model_kind('huge')
  assert models.model_kind('small') == 'attention'
  assert models.model_kind('ctc_small') == 'ctc'
  assert models.model_kind('text_fast') == 'ctc'


def run(model, images, widths, decoder_inputs, train):
  variables = model.init({'params': jax.random.key(0),
                          'dropout': jax.random.key(1)}, images, widths,
                         decoder_inputs, train=False)
  if not train:
    return variables, model.apply(variables, images, widths, decoder_inputs)
  out, updates = model.apply(variables, images, widths, decoder_inputs,
                             train=True, rngs={'dropout': jax.random.key(2)},
                             mutable=['batch_stats'])
  assert set(updates) == {'batch_stats'}
  return variables, out


@pytest.mark.parametrize('preset', ['tiny', 'tiny_ctc'])
@pytest.mark.parametrize('dtype', [jnp.float32, jnp.bfloat16])
def test_tiny_models_run_on_variable_widths(preset, dtype):
  model = models.create_model(preset, vocab_size=VOCAB, dtype=dtype)
  images = jax.random.normal(jax.random.key(3), (3, 64, 160, 3))
  widths = jnp.array([160, 81, 8], jnp.int32)
  decoder_inputs = jnp.ones((3, 5), jnp.int32)
  variables, (logits, paddings) = jax.jit(
      functools.partial(run, model, train=True))(images, widths,
                                                 decoder_inputs)
  params = jax.tree.leaves(variables['params'])
  assert all(p.dtype == jnp.float32 for p in params)
  assert logits.dtype == jnp.float32
  assert bool(jnp.all(jnp.isfinite(logits)))
  if preset == 'tiny':
    assert logits.shape == (3, 5, VOCAB) and paddings is None
  else:
    assert logits.shape == (3, 20, VOCAB)
    # ceil(width / 8) real frames per image.
    np.testing.assert_array_equal(paddings.sum(axis=1), [0, 20 - 11, 19])


def test_dummy_inputs():
  images, widths, decoder_inputs = models.dummy_inputs(32, 48, 5,
                                                       batch_size=3)
  assert images.shape == (3, 32, 48, 3) and images.dtype == jnp.float32
  assert not images.any()
  np.testing.assert_array_equal(widths, [48, 48, 48])
  assert widths.dtype == jnp.int32
  assert decoder_inputs.shape == (3, 6) and decoder_inputs.dtype == jnp.int32
  assert not decoder_inputs.any()


def test_get_backend():
  assert backend_lib.get_backend().name == jax.default_backend()
  assert backend_lib.get_backend('cuda').name == 'cuda'
  # The same platform gives the same parts, so its models compare equal.
  assert backend_lib.get_backend('tpu') == backend_lib.get_backend('tpu')
  with pytest.raises(ValueError, match='auto, cpu, gpu, cuda, rocm, tpu'):
    backend_lib.get_backend('metal')
  with pytest.raises(ValueError, match='native.*matmul.*cpu'):
    backend_lib.get_backend('cpu').with_conv_impl('shift')


def outputs_and_grads(model, variables, images, widths, decoder_inputs):
  """Training-mode logits and the gradient of a loss w.r.t. the params."""

  def loss(params):
    (logits, _), _ = model.apply(
        {**variables, 'params': params}, images, widths, decoder_inputs,
        train=True, rngs={'dropout': jax.random.key(2)},
        mutable=['batch_stats'])
    return jnp.mean(logits ** 2), logits

  grads, logits = jax.grad(loss, has_aux=True)(variables['params'])
  return logits, grads


@pytest.mark.parametrize('preset', ['tiny', 'tiny_ctc'])
def test_backends_share_parameters_and_outputs(preset):
  """Every backend reads the same checkpoint and computes the same model.

  The CPU tricks (im2col convolutions, the stem pool's gradient, the
  product-form location filter) change only how the model computes.
  """
  images = jax.random.normal(jax.random.key(3), (2, 64, 64, 3))
  widths = jnp.array([64, 40], jnp.int32)
  decoder_inputs = jnp.array([[1, 5, 6, 7], [1, 8, 9, 9]], jnp.int32)
  cpu = models.create_model(preset, vocab_size=VOCAB, backend='cpu')
  rngs = {'params': jax.random.key(0), 'dropout': jax.random.key(1)}
  variables = jax.jit(functools.partial(cpu.init, train=False))(
      rngs, images, widths, decoder_inputs)
  expected_logits, expected_grads = jax.jit(
      functools.partial(outputs_and_grads, cpu))(variables, images, widths,
                                                  decoder_inputs)
  model = models.create_model(preset, vocab_size=VOCAB, backend='tpu')
  # Every accelerator platform builds the same (plain XLA) model.
  assert model == models.create_model(preset, vocab_size=VOCAB,
                                      backend='cuda')
  assert model != cpu
  assert (jax.tree.map(jnp.shape, abstract_variables(
      model, images, widths, decoder_inputs)) ==
          jax.tree.map(jnp.shape, variables))
  logits, grads = jax.jit(functools.partial(outputs_and_grads, model))(
      variables, images, widths, decoder_inputs)
  np.testing.assert_allclose(logits, expected_logits, rtol=1e-4, atol=1e-4)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(
      a, b, rtol=1e-3, atol=1e-5), grads, expected_grads)


def test_backends_share_parameters_in_bfloat16():
  """On CPU the LSTMs stay float32; elsewhere they compute in bfloat16."""
  trees = []
  for platform in ('cpu', 'tpu'):
    model = models.create_model('tiny', vocab_size=VOCAB,
                                dtype=jnp.bfloat16, backend=platform)
    variables = abstract_variables(model, *init_args(max_length=4))
    trees.append(jax.tree.map(lambda x: (x.shape, x.dtype), variables))
  assert trees[0] == trees[1]


@pytest.mark.parametrize('platform', ['tpu', 'cuda'])
def test_accelerator_models_lower_to_native_convolutions(platform):
  """Built for a GPU or TPU on this CPU, a model holds no im2col code.

  Every convolution layer (4-D kernels) and the attention's location filter
  (3-D kernel, inside the decoder's scan) lowers to one stablehlo
  convolution; the CPU backend turns most of them into products.
  """
  args = init_args(batch=2, height=32, width=64, max_length=4)
  counts = {}
  for name in (platform, 'cpu'):
    model = models.create_model('tiny', vocab_size=VOCAB, backend=name)
    variables = abstract_variables(model, *args)
    text = jax.jit(functools.partial(model.apply, train=False)).lower(
        variables, *args).as_text()
    counts[name] = text.count('stablehlo.convolution')
  kernels = [x.ndim for x in jax.tree.leaves(variables['params'])]
  conv_layers, location_filters = kernels.count(4), kernels.count(3)
  assert conv_layers == 13 and location_filters == 1  # 1 + 4 * 3 (tiny).
  assert counts[platform] == conv_layers + location_filters
  assert counts['cpu'] < conv_layers


def test_forced_matmul_gives_the_same_model():
  images = jax.random.normal(jax.random.key(3), (2, 64, 64, 3))
  widths = jnp.array([64, 40], jnp.int32)
  inputs = jnp.ones((2, 4), jnp.int32)
  outputs = []
  for impl in ('native', 'matmul'):
    backend = backend_lib.get_backend('cpu').with_conv_impl(impl)
    model = models.create_model('tiny', vocab_size=VOCAB, backend=backend)
    _, (logits, _) = jax.jit(functools.partial(run, model, train=True))(
        images, widths, inputs)
    outputs.append(logits)
  np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-4, atol=1e-4)


def test_attention_ignores_padded_memory():
  decoder = AttentionDecoder(VOCAB, hidden=16, attention_dim=8)
  memory = jax.random.normal(jax.random.key(0), (2, 6, 12))
  paddings = jnp.array([[0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0]], jnp.float32)
  inputs = jnp.array([[2, 5, 6], [2, 7, 8]], jnp.int32)
  variables = decoder.init(jax.random.key(1), memory, paddings, inputs, False)
  logits = decoder.apply(variables, memory, paddings, inputs, False)
  changed = memory.at[0, 4:].set(100.0)
  np.testing.assert_allclose(
      decoder.apply(variables, changed, paddings, inputs, False), logits,
      rtol=1e-6, atol=1e-6)
  # ...while real steps matter.
  changed = memory.at[0, 1].set(100.0)
  assert not np.allclose(
      decoder.apply(variables, changed, paddings, inputs, False)[0], logits[0])


def test_bilstm_real_steps_ignore_padding():
  encoder = BiLSTMEncoder(hidden=8)
  x = jax.random.normal(jax.random.key(0), (2, 5, 4))
  lengths = jnp.array([3, 5], jnp.int32)
  variables = encoder.init(jax.random.key(1), x, lengths, False)
  out = encoder.apply(variables, x, lengths, False)
  assert out.shape == (2, 5, 16)
  changed = encoder.apply(variables, x.at[0, 3:].set(50.0), lengths, False)
  np.testing.assert_allclose(changed[0, :3], out[0, :3], rtol=1e-6,
                             atol=1e-6)


def test_max_pools_match_flax():
  reference = lambda x: nn.max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))
  for shape in [(2, 7, 9, 3), (2, 8, 8, 2), (1, 1, 5, 2)]:
    # Through a ReLU, as in the stem: ties (zeros) get no gradient either way.
    z = jax.random.normal(jax.random.key(0), shape)
    fns = [lambda z, pool=pool: pool(jax.nn.relu(z))
           for pool in (cpu_max_pool_3x3_s2, max_pool_3x3_s2, reference)]
    (y, vjp), (y_xla, vjp_xla), (y_ref, vjp_ref) = [jax.vjp(fn, z)
                                                    for fn in fns]
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(y_xla, y_ref)
    g = jax.random.normal(jax.random.key(1), y.shape)
    np.testing.assert_array_equal(vjp(g)[0], vjp_ref(g)[0])
    np.testing.assert_array_equal(vjp_xla(g)[0], vjp_ref(g)[0])


@pytest.mark.parametrize('form', ['conv', 'product'])
def test_location_filter_is_flax_conv(form):
  weights = jax.random.uniform(jax.random.key(0), (3, 16))
  conv = nn.Conv(8, (9,), padding='SAME', use_bias=False)
  variables = conv.init(jax.random.key(1), weights[..., None])
  ours = LocationFilter(8, 9, form=form)
  assert (jax.tree.map(jnp.shape, ours.init(jax.random.key(1), weights)) ==
          jax.tree.map(jnp.shape, variables))
  y, vjp = jax.vjp(lambda v: ours.apply(v, weights), variables)
  y_ref, vjp_ref = jax.vjp(lambda v: conv.apply(v, weights[..., None]),
                           variables)
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-6)
  g = jax.random.normal(jax.random.key(2), y.shape)
  np.testing.assert_allclose(vjp(g)[0]['params']['kernel'],
                             vjp_ref(g)[0]['params']['kernel'], rtol=1e-5,
                             atol=1e-5)
