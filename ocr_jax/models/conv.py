"""2-D convolution whose implementation is chosen per backend and shape.

`Conv` is a drop-in for `flax.linen.Conv` on NHWC inputs: the same parameter
names and shapes ('kernel' [kh, kw, cin / groups, cout], optional 'bias'
[cout]), so checkpoints move freely between implementations. Only the way the
convolution is computed changes:

  'native'  `lax.conv_general_dilated` (XLA's own convolution).
  'matmul'  im2col: the kernel-tap windows of the padded input are strided
            slices, concatenated on the channel axis and multiplied by the
            kernel reshaped to [taps * cin, cout] in one matrix multiply.
            Kernel taps that only ever read zero padding (a 3x3 kernel on a
            feature map one row high) are left out, which is exact.
            Depthwise convolutions become a sum of shifted elementwise
            products instead.
  'shift'   one matrix multiply x @ kernel[cin, taps * cout], then the sum of
            the taps' shifted windows of the product. Kept for benchmarks; its
            gradient is slow on XLA:CPU.
  'auto'    'native' on GPU/TPU; on CPU the rule in `cpu_conv_impl`, chosen
            from benchmarks/conv_benchmark.py on a 2-core AVX-512 machine.

With a bfloat16 computation dtype every implementation multiplies bfloat16
operands and accumulates in float32 (`preferred_element_type`), in the
forward and in both backward products; the result is then cast to bfloat16.
On AVX-512-BF16 CPUs this runs about twice as fast as float32, while a
bfloat16-output product runs slower than float32.
"""

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
from jax import lax
import jax.numpy as jnp

Dtype = Any
Pads = tuple[tuple[int, int], tuple[int, int]]

CONV_IMPLS = ('auto', 'native', 'matmul', 'shift')
_DIMENSION_NUMBERS = ('NHWC', 'HWIO', 'NHWC')


def cpu_conv_impl(in_shape: Sequence[int], kernel_shape: Sequence[int],
                  strides: Sequence[int], groups: int = 1) -> str:
  """The fastest implementation on XLA:CPU for a convolution shape.

  Measured by benchmarks/conv_benchmark.py (forward plus gradients, every
  convolution of the `small` preset at batch 32 on 64x128 images, float32
  and bfloat16; figures in benchmarks/results/conv.json).

  Args:
    in_shape: [batch, height, width, in_channels].
    kernel_shape: [kh, kw, in_channels / groups, out_channels].
    strides: (sh, sw).
    groups: feature_group_count.

  Returns:
    'native' or 'matmul'.
  """
  del strides
  if groups != 1:
    return 'native'
  return 'matmul' if in_shape[-1] >= 128 else 'native'


def resolve_conv_impl(conv_impl: str, in_shape: Sequence[int],
                      kernel_shape: Sequence[int], strides: Sequence[int],
                      groups: int = 1) -> str:
  """Maps 'auto' to a concrete implementation for the default backend."""
  if conv_impl not in CONV_IMPLS:
    raise ValueError(f'conv_impl {conv_impl!r} is not one of {CONV_IMPLS}')
  if conv_impl != 'auto':
    return conv_impl
  if jax.default_backend() != 'cpu':
    return 'native'
  return cpu_conv_impl(in_shape, kernel_shape, strides, groups)


def explicit_padding(padding: str | Sequence[tuple[int, int]],
                     in_shape: Sequence[int], kernel_size: Sequence[int],
                     strides: Sequence[int]) -> Pads:
  """Turns 'SAME' / 'VALID' / explicit pairs into ((top, bottom), (l, r))."""
  if isinstance(padding, str):
    pads = lax.padtype_to_pads(in_shape, kernel_size, strides, padding)
  else:
    pads = padding
  return tuple((int(lo), int(hi)) for lo, hi in pads)


# ---------------------------------------------------------------------------
# Mixed-precision matrix multiply.


@functools.cache
def _mixed_dot(compute_dtype: Dtype):
  """a [..., k] (compute_dtype) @ b [k, n] (any float) -> [..., n] float32.

  b is cast to compute_dtype inside, so its gradient comes back in b's own
  dtype (float32 for parameters). A custom gradient keeps both backward
  products in compute_dtype with float32 accumulation; JAX's own transpose of
  a mixed product would multiply in float32.
  """
  def contract_last(a, b):
    return lax.dot_general(a, b, (((a.ndim - 1,), (0,)), ((), ())),
                           preferred_element_type=jnp.float32)

  @jax.custom_vjp
  def dot(a, b):
    return contract_last(a, b.astype(compute_dtype))

  def dot_fwd(a, b):
    return dot(a, b), (a, b)

  def dot_bwd(residuals, g):
    a, b = residuals
    b_c, g_c = b.astype(compute_dtype), g.astype(compute_dtype)
    batch = tuple(range(a.ndim - 1))
    # da [..., k] = g [..., n] . b [k, n]^T;  db [k, n] = a^T . g.
    da = lax.dot_general(g_c, b_c, (((g.ndim - 1,), (1,)), ((), ())),
                         preferred_element_type=jnp.float32)
    db = lax.dot_general(a, g_c, ((batch, batch), ((), ())),
                         preferred_element_type=jnp.float32)
    return da.astype(a.dtype), db.astype(b.dtype)

  dot.defvjp(dot_fwd, dot_bwd)
  return dot


def matmul(a: jax.Array, b: jax.Array, dtype: Dtype) -> jax.Array:
  """a [..., k] @ b [k, n] computed in `dtype`, returned in `dtype`.

  float32 is a plain product; a narrower dtype multiplies in that dtype and
  accumulates in float32 (also in the gradient products).
  """
  return _dot_f32(a, b, dtype).astype(dtype)


def _dot_f32(a: jax.Array, b: jax.Array, dtype: Dtype) -> jax.Array:
  """Like `matmul`, but returns the float32 accumulator."""
  if jnp.dtype(dtype) == jnp.float32:
    return lax.dot_general(a, b, (((a.ndim - 1,), (0,)), ((), ())))
  return _mixed_dot(jnp.dtype(dtype))(a.astype(dtype), b)


# ---------------------------------------------------------------------------
# Implementations; all take x [B, H, W, Cin], kernel [kh, kw, Cin / g, Cout].


def _native_conv(x, kernel, strides, pads, groups, dtype):
  """XLA convolution; narrow dtypes accumulate in float32."""
  preferred = None if jnp.dtype(dtype) == jnp.float32 else jnp.float32
  y = lax.conv_general_dilated(
      x.astype(dtype), kernel.astype(dtype), tuple(strides), pads,
      dimension_numbers=_DIMENSION_NUMBERS, feature_group_count=groups,
      preferred_element_type=preferred)
  return y.astype(dtype)


def _live_taps(size: int, kernel: int, stride: int, pad_lo: int,
               out_size: int) -> tuple[int, int]:
  """[first, last + 1) kernel taps that read real input for some output."""
  live = [
      k for k in range(kernel)
      if any(0 <= o * stride + k - pad_lo < size for o in range(out_size))
  ]
  return live[0], live[-1] + 1


def _tap_windows(x, kernel_shape, strides, pads):
  """Strided windows of the padded input, one per live kernel tap.

  Args:
    x: [B, H, W, C].
    kernel_shape: (kh, kw, ...).
    strides: (sh, sw).
    pads: ((top, bottom), (left, right)).

  Returns:
    (windows, rows, cols): windows is a list of [B, Ho, Wo, C] arrays in
    row-major tap order over the live taps rows x cols, where rows and cols
    are (start, stop) ranges of kernel taps.
  """
  b, h, w, c = x.shape
  (kh, kw), (sh, sw) = kernel_shape[:2], strides
  ho = (h + sum(pads[0]) - kh) // sh + 1
  wo = (w + sum(pads[1]) - kw) // sw + 1
  rows = _live_taps(h, kh, sh, pads[0][0], ho)
  cols = _live_taps(w, kw, sw, pads[1][0], wo)
  xp = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
  windows = [
      lax.slice(xp, (0, i, j, 0),
                (b, i + (ho - 1) * sh + 1, j + (wo - 1) * sw + 1, c),
                (1, sh, sw, 1))
      for i in range(*rows) for j in range(*cols)
  ]
  return windows, rows, cols


def _im2col_conv(x, kernel, strides, pads, groups, dtype):
  """Convolution as one [B*Ho*Wo, taps*Cin] x [taps*Cin, Cout] product."""
  if groups != 1:
    if groups == x.shape[-1] and kernel.shape[2] == 1:
      return _depthwise_shift_conv(x, kernel, strides, pads, dtype)
    return _native_conv(x, kernel, strides, pads, groups, dtype)
  windows, rows, cols = _tap_windows(x.astype(dtype), kernel.shape, strides,
                                     pads)
  patches = windows[0] if len(windows) == 1 else jnp.concatenate(windows, -1)
  live = kernel[rows[0]:rows[1], cols[0]:cols[1]]
  return matmul(patches, live.reshape(-1, kernel.shape[-1]), dtype)


def _depthwise_shift_conv(x, kernel, strides, pads, dtype):
  """Depthwise convolution as a sum of shifted elementwise products."""
  windows, rows, cols = _tap_windows(x.astype(dtype), kernel.shape, strides,
                                     pads)
  live = kernel[rows[0]:rows[1], cols[0]:cols[1], 0, :].astype(dtype)
  taps = [(i, j) for i in range(live.shape[0]) for j in range(live.shape[1])]
  acc = sum(win.astype(jnp.float32) * live[i, j].astype(jnp.float32)
            for win, (i, j) in zip(windows, taps))
  return acc.astype(dtype)


def _shift_conv(x, kernel, strides, pads, groups, dtype):
  """Convolution as x @ kernel[Cin, taps*Cout], then summed shifted windows."""
  if groups != 1:
    return _im2col_conv(x, kernel, strides, pads, groups, dtype)
  kh, kw, cin, cout = kernel.shape
  wide = jnp.transpose(kernel, (2, 0, 1, 3)).reshape(cin, kh * kw * cout)
  z = _dot_f32(x, wide, dtype)
  z = z.reshape(*x.shape[:3], kh * kw, cout)
  b, h, w, _ = x.shape
  (sh, sw) = strides
  ho = (h + sum(pads[0]) - kh) // sh + 1
  wo = (w + sum(pads[1]) - kw) // sw + 1
  zp = jnp.pad(z, ((0, 0), pads[0], pads[1], (0, 0), (0, 0)))
  out = None
  for i in range(kh):
    for j in range(kw):
      win = lax.slice(zp, (0, i, j, i * kw + j, 0),
                      (b, i + (ho - 1) * sh + 1, j + (wo - 1) * sw + 1,
                       i * kw + j + 1, cout), (1, sh, sw, 1, 1))[..., 0, :]
      out = win if out is None else out + win
  return out.astype(dtype)


_IMPLS = {
    'native': _native_conv,
    'matmul': _im2col_conv,
    'shift': _shift_conv,
}


def conv2d(x: jax.Array, kernel: jax.Array, strides: Sequence[int] = (1, 1),
           padding: str | Sequence[tuple[int, int]] = 'SAME',
           groups: int = 1, impl: str = 'auto',
           dtype: Dtype = jnp.float32) -> jax.Array:
  """2-D convolution of NHWC inputs with an HWIO kernel.

  Args:
    x: [batch, height, width, in_channels].
    kernel: [kh, kw, in_channels / groups, out_channels].
    strides: (sh, sw).
    padding: 'SAME', 'VALID' or ((top, bottom), (left, right)).
    groups: feature_group_count.
    impl: one of CONV_IMPLS.
    dtype: computation and output dtype.

  Returns:
    [batch, out_height, out_width, out_channels] in `dtype`.
  """
  strides = tuple(strides)
  pads = explicit_padding(padding, x.shape[1:3], kernel.shape[:2], strides)
  impl = resolve_conv_impl(impl, x.shape, kernel.shape, strides, groups)
  return _IMPLS[impl](x, kernel, strides, pads, groups, dtype)


class Conv(nn.Module):
  """NHWC convolution with `flax.linen.Conv`'s parameters.

  Attributes:
    features: output channels.
    kernel_size: (kh, kw).
    strides: (sh, sw).
    padding: 'SAME', 'VALID' or ((top, bottom), (left, right)).
    feature_group_count: groups (in_channels for a depthwise convolution).
    use_bias: whether to add a 'bias' [features].
    dtype: computation dtype; the output has this dtype.
    param_dtype: parameter dtype.
    conv_impl: one of CONV_IMPLS.
    kernel_init: initializer of 'kernel'.
  """
  features: int
  kernel_size: Sequence[int]
  strides: Sequence[int] = (1, 1)
  padding: str | Sequence[tuple[int, int]] = 'SAME'
  feature_group_count: int = 1
  use_bias: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  conv_impl: str = 'auto'
  kernel_init: Any = nn.initializers.variance_scaling(2.0, 'fan_out',
                                                      'normal')

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """[batch, height, width, cin] -> [batch, out_h, out_w, features]."""
    kh, kw = self.kernel_size
    cin = x.shape[-1] // self.feature_group_count
    kernel = self.param('kernel', self.kernel_init,
                        (kh, kw, cin, self.features), self.param_dtype)
    y = conv2d(x, kernel, self.strides, self.padding,
               self.feature_group_count, self.conv_impl, self.dtype)
    if self.use_bias:
      bias = self.param('bias', nn.initializers.zeros, (self.features,),
                        self.param_dtype)
      y = y + bias.astype(self.dtype)
    return y
