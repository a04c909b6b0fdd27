"""Every convolution implementation against lax.conv_general_dilated."""

import flax.linen as nn
import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import pytest

from ocr_jax.models import conv

pytestmark = pytest.mark.usefixtures('fast_compile')

IMPLS = conv.CONV_IMPLS  # 'native', 'matmul' and the per-layer 'cpu' rule.

# (input [h, w, cin], kernel (kh, kw), strides, padding, groups): every kind
# of convolution the presets use, on small shapes; also feature maps one and
# two rows high (taps that only meet padding are skipped by 'matmul').
CASES = [
    ((9, 11, 3), (7, 7), (2, 2), ((3, 3), (3, 3)), 1),  # ResNet stem
    ((6, 7, 4), (3, 3), (1, 1), 'SAME', 1),
    ((6, 7, 4), (3, 3), (2, 1), 'SAME', 1),
    ((6, 7, 4), (3, 3), (2, 2), 'SAME', 1),
    ((1, 7, 4), (3, 3), (1, 1), 'SAME', 1),  # one row high
    ((2, 7, 4), (3, 3), (1, 1), 'SAME', 1),  # two rows: two bands
    ((2, 7, 4), (3, 3), (2, 1), 'SAME', 1),  # two rows to one
    ((6, 7, 4), (1, 1), (2, 1), 'SAME', 1),  # shortcut projections
    ((6, 7, 4), (1, 1), (2, 2), 'SAME', 1),
    ((6, 7, 4), (1, 1), (1, 1), 'SAME', 1),
    ((9, 11, 3), (3, 3), (2, 2), 'SAME', 1),  # EfficientNet stem
    ((6, 7, 4), (3, 3), (1, 1), 'SAME', 4),  # depthwise
    ((6, 7, 4), (5, 5), (2, 2), 'SAME', 4),
    ((6, 7, 4), (5, 5), (2, 1), 'SAME', 4),
    ((6, 7, 4), (3, 3), (2, 2), 'SAME', 4),
    ((2, 7, 4), (5, 5), (1, 1), 'SAME', 4),  # depthwise, two rows
    ((5, 8, 4), (5, 5), (2, 2), 'SAME', 4),  # odd height, even width
    ((1, 7, 4), (1, 3), (1, 1), 'SAME', 1),  # text_fast conv encoder
    ((6, 7, 4), (3, 3), (1, 1), 'VALID', 1),
]


def reference(x, kernel, strides, padding, groups):
  return lax.conv_general_dilated(
      x, kernel, strides, padding, feature_group_count=groups,
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
      precision=lax.Precision.HIGHEST)


def inputs(in_shape, kernel_size, groups, seed=0):
  kx, kk = jax.random.split(jax.random.key(seed))
  x = jax.random.normal(kx, (2, *in_shape))
  kernel = jax.random.normal(
      kk, (*kernel_size, in_shape[-1] // groups, 5 if groups == 1 else
           in_shape[-1]))
  return x, kernel


@pytest.mark.parametrize('case', CASES, ids=str)
def test_forward_and_gradients_match_lax(case):
  in_shape, kernel_size, strides, padding, groups = case
  x, kernel = inputs(in_shape, kernel_size, groups)

  @jax.jit
  def outputs_and_grads(x, kernel, cotangent):
    results = {}
    for impl in IMPLS + ('reference',):
      if impl == 'reference':
        fn = lambda x, k: reference(x, k, strides, padding, groups)
      else:
        fn = lambda x, k, impl=impl: conv.conv2d(x, k, strides, padding,
                                                 groups, impl)
      y, vjp = jax.vjp(fn, x, kernel)
      results[impl] = (y, *vjp(cotangent))
    return results

  y_ref = reference(x, kernel, strides, padding, groups)
  cotangent = jax.random.normal(jax.random.key(1), y_ref.shape)
  results = outputs_and_grads(x, kernel, cotangent)
  expected = results.pop('reference')
  for impl, result in results.items():
    for name, got, want in zip(('y', 'dx', 'dkernel'), result, expected):
      assert got.shape == want.shape and got.dtype == jnp.float32
      np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4,
                                 err_msg=f'{impl} {name}')


@pytest.mark.parametrize('impl', IMPLS)
def test_bfloat16_accumulates_in_float32(impl):
  x, kernel = inputs((6, 7, 16), (3, 3), 1)
  y = conv.conv2d(x, kernel, (2, 1), 'SAME', impl=impl, dtype=jnp.bfloat16)
  assert y.dtype == jnp.bfloat16
  rounded = lambda a: a.astype(jnp.bfloat16).astype(jnp.float32)
  y_ref = reference(rounded(x), rounded(kernel), (2, 1), 'SAME', 1)
  np.testing.assert_allclose(y.astype(jnp.float32), y_ref, rtol=2e-2,
                             atol=5e-2)
  # Gradients come back in the operands' dtype (float32 parameters).
  loss = lambda x, k: jnp.sum(conv.conv2d(
      x, k, (2, 1), 'SAME', impl=impl, dtype=jnp.bfloat16).astype(
          jnp.float32) ** 2)
  gx, gk = jax.grad(loss, argnums=(0, 1))(x, kernel)
  assert gx.dtype == jnp.float32 and gk.dtype == jnp.float32
  gk_ref = jax.grad(lambda k: jnp.sum(
      reference(x, k, (2, 1), 'SAME', 1) ** 2))(kernel)
  np.testing.assert_allclose(gk, gk_ref, rtol=5e-2,
                             atol=5e-2 * float(jnp.abs(gk_ref).max()))


@pytest.mark.parametrize('impl', IMPLS)
def test_module_has_flax_conv_parameters(impl):
  x = jnp.ones((1, 6, 8, 3))
  ours = conv.Conv(4, (3, 3), (2, 1), use_bias=True, impl=impl)
  theirs = nn.Conv(4, (3, 3), (2, 1), use_bias=True)
  key = jax.random.key(0)
  shapes = lambda m: jax.tree.map(jnp.shape, m.init(key, x))
  assert shapes(ours) == shapes(theirs)
  variables = theirs.init(key, x)
  np.testing.assert_allclose(ours.apply(variables, x),
                             theirs.apply(variables, x), rtol=1e-5,
                             atol=1e-5)


# (input shape, kernel shape, strides, groups) -> what XLA:CPU runs faster.
CPU_RULE_CASES = [
    ((32, 64, 128, 3), (7, 7, 3, 64), (2, 2), 1, 'native'),  # 3-channel stem
    ((32, 16, 32, 64), (3, 3, 64, 64), (1, 1), 1, 'native'),
    ((32, 16, 32, 64), (3, 3, 64, 128), (2, 1), 1, 'matmul'),  # strided
    ((32, 16, 32, 64), (1, 1, 64, 128), (1, 1), 1, 'matmul'),  # 1x1
    ((32, 4, 32, 256), (3, 3, 256, 256), (1, 1), 1, 'matmul'),  # 256 in
    ((32, 1, 32, 128), (3, 3, 128, 128), (1, 1), 1, 'matmul'),  # one row
    ((32, 8, 16, 96), (5, 5, 1, 96), (2, 2), 96, 'matmul'),  # depthwise
    ((32, 8, 16, 96), (3, 3, 48, 96), (1, 1), 2, 'native'),  # grouped
]


@pytest.mark.parametrize('case', CPU_RULE_CASES, ids=str)
def test_cpu_rule_picks_per_layer(case):
  in_shape, kernel_shape, strides, groups, expected = case
  pads = conv.explicit_padding('SAME', in_shape[1:3], kernel_shape[:2],
                               strides)
  assert conv.resolve_conv_impl('cpu', in_shape, kernel_shape, strides, pads,
                                groups) == expected
  # Forced implementations are taken as they are.
  assert conv.resolve_conv_impl('native', in_shape, kernel_shape, strides,
                                pads, groups) == 'native'


def test_unknown_impl_raises():
  x, kernel = inputs((6, 7, 4), (3, 3), 1)
  for impl in ('auto', 'shift', 'winograd'):
    with pytest.raises(ValueError, match='native.*matmul.*cpu'):
      conv.conv2d(x, kernel, impl=impl)
