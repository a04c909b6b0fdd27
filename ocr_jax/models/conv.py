"""2-D convolution whose implementation is chosen per backend and shape.

`Conv` is a drop-in for `flax.linen.Conv` on NHWC inputs: the same parameter
names and shapes ('kernel' [kh, kw, cin / groups, cout], optional 'bias'
[cout]), so checkpoints move freely between implementations. Only the way the
convolution is computed changes (`Conv.impl`):

  'native'  `lax.conv_general_dilated` (XLA's own convolution); what GPU and
            TPU use.
  'matmul'  im2col: the kernel-tap windows of the padded input are strided
            slices, concatenated on the channel axis and multiplied by the
            kernel reshaped to [taps * cin, cout] in one matrix multiply.
            Kernel taps that only ever read zero padding (a 3x3 kernel on a
            feature map one row high) are left out, which is exact.
            Depthwise convolutions become a sum of shifted elementwise
            products instead. Forced everywhere only by tests and benchmarks.
  'cpu'     'native' or 'matmul' per layer, by the rule in `cpu_conv_impl`,
            chosen from benchmarks/conv_benchmark.py on a 2-core AVX-512
            machine.

The implementation is fixed when the model is built (see
`ocr_jax.models.backend`), never looked up from the machine that traces it.
Every implementation traces under a symbolic width (`jax.export` with
`symbolic_shape('b, w')`, as `ocr_jax.reading.export` does for text-line
models): the per-layer choice depends on the channels, kernel, strides and
height only, and im2col then keeps every kernel column (exact).

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

CONV_IMPLS = ('native', 'matmul', 'cpu')
_DIMENSION_NUMBERS = ('NHWC', 'HWIO', 'NHWC')


def cpu_conv_impl(in_shape: Sequence[int], kernel_shape: Sequence[int],
                  strides: Sequence[int], pads: Pads, groups: int = 1) -> str:
  """The faster implementation on XLA:CPU for a convolution.

  From benchmarks/conv_benchmark.py (forward plus gradients of every
  convolution of the `small` preset at batch 32 on 64x128 images, float32
  and bfloat16; figures in benchmarks/results/conv.json). XLA's convolution
  wins for the 3-channel stem and is on par for stride-1 3x3 layers below
  256 channels. im2col products win for 1x1 kernels, strided layers (XLA's
  input gradient of a strided convolution is slow), 256+ input channels,
  and maps whose kernel taps meet only padding (one or two rows high).

  Args:
    in_shape: [batch, height, width, in_channels].
    kernel_shape: [kh, kw, in_channels / groups, out_channels].
    strides: (sh, sw).
    pads: ((top, bottom), (left, right)).
    groups: feature_group_count.

  Returns:
    'native' or 'matmul'.
  """
  cin = in_shape[-1]
  if groups != 1:
    # Depthwise: shifted products with a hand-written gradient (_depthwise);
    # XLA's depthwise gradient took 3/4 of an EfficientNet step.
    return 'matmul' if groups == cin and kernel_shape[2] == 1 else 'native'
  if cin < 16:
    return 'native'
  kh, kw = kernel_shape[:2]
  if kh * kw == 1 or tuple(strides) != (1, 1) or cin >= 256:
    return 'matmul'
  h = in_shape[1]
  ho = _out_size(h, kh, strides[0], pads[0])
  bands = _row_bands(h, kh, strides[0], pads[0][0], ho)
  skips_taps = len(bands) > 1 or bands[0][3] - bands[0][2] < kh
  return 'matmul' if skips_taps else 'native'


def resolve_conv_impl(impl: str, in_shape: Sequence[int],
                      kernel_shape: Sequence[int], strides: Sequence[int],
                      pads: Pads, groups: int = 1) -> str:
  """The concrete implementation ('native' or 'matmul') of one layer."""
  if impl not in CONV_IMPLS:
    raise ValueError(f'conv impl {impl!r} is not one of {CONV_IMPLS}')
  if impl != 'cpu':
    return impl
  return cpu_conv_impl(in_shape, kernel_shape, strides, pads, groups)


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
# Implementations; all take x [B, H, W, Cin], kernel [kh, kw, Cin / g, Cout].


def _native_conv(x, kernel, strides, pads, groups, dtype):
  """XLA convolution; narrow dtypes accumulate in float32."""
  preferred = None if jnp.dtype(dtype) == jnp.float32 else jnp.float32
  y = lax.conv_general_dilated(
      x.astype(dtype), kernel.astype(dtype), tuple(strides), pads,
      dimension_numbers=_DIMENSION_NUMBERS, feature_group_count=groups,
      preferred_element_type=preferred)
  return y.astype(dtype)


def _out_size(size: int, kernel: int, stride: int, pads: tuple[int, int]):
  return (size + sum(pads) - kernel) // stride + 1


def _live_taps(size: int, kernel: int, stride: int, pad_lo: int,
               outputs: Sequence[int]) -> tuple[int, int]:
  """[first, last + 1) kernel taps that read real input for some output."""
  live = [k for k in range(kernel)
          if any(0 <= o * stride + k - pad_lo < size for o in outputs)]
  return live[0], live[-1] + 1


def _column_taps(w, kw: int, sw: int, pad_left: int, wo) -> tuple[int, int]:
  """The live kernel columns; every column under a symbolic width.

  A model exported with a symbolic width (`jax.export.symbolic_shape`) has
  no concrete column count to test taps against. Keeping every tap is
  exact, since a dead tap reads only zero padding, and it is what a
  concrete width of a few kernel sizes or more keeps anyway.
  """
  if not isinstance(w, int):
    return 0, kw
  return _live_taps(w, kw, sw, pad_left, range(wo))


# Output rows are split into bands with their own live kernel rows only when
# that saves at least this fraction of the multiply-adds: a 3x3 kernel on 2
# rows saves 1/3; on 4 rows 1/6, not worth the extra products and the
# concatenation.
_MIN_BAND_SAVING = 0.25


def _row_bands(h: int, kh: int, sh: int, pad_top: int,
               ho: int) -> list[tuple[int, int, int, int]]:
  """(first row, end row, first tap, end tap) bands of output rows.

  Consecutive output rows whose windows read the same live kernel rows share
  a band; a single band covering all rows is returned when splitting saves
  too little.
  """
  bands = []
  for r in range(ho):
    taps = _live_taps(h, kh, sh, pad_top, [r])
    if bands and bands[-1][2:] == taps:
      bands[-1] = (bands[-1][0], r + 1, *taps)
    else:
      bands.append((r, r + 1, *taps))
  whole = (0, ho, *_live_taps(h, kh, sh, pad_top, range(ho)))
  work = lambda band: (band[1] - band[0]) * (band[3] - band[2])
  saving = 1 - sum(map(work, bands)) / work(whole)
  return bands if saving >= _MIN_BAND_SAVING else [whole]


def _windows(xp, strides, rows, taps_h, taps_w, wo):
  """Strided [B, rows, Wo, C] windows of the padded input, one per tap.

  Args:
    xp: the padded input [B, Hp, Wp, C].
    strides: (sh, sw).
    rows: (first, end) output rows.
    taps_h: (first, end) kernel rows.
    taps_w: (first, end) kernel columns.
    wo: output columns.

  Returns:
    The windows in row-major tap order.
  """
  b, _, _, c = xp.shape
  (sh, sw), (r0, r1) = strides, rows
  return [
      lax.slice(xp, (0, r0 * sh + i, j, 0),
                (b, (r1 - 1) * sh + i + 1, j + (wo - 1) * sw + 1, c),
                (1, sh, sw, 1))
      for i in range(*taps_h) for j in range(*taps_w)
  ]


def _contract_last(a: jax.Array, b: jax.Array) -> jax.Array:
  """a [..., k] @ b [k, n] -> [..., n], accumulated in float32."""
  return lax.dot_general(a, b, (((a.ndim - 1,), (0,)), ((), ())),
                         preferred_element_type=jnp.float32)


def _im2col_plan(x_shape, kernel_shape, strides, pads):
  """(output columns, live kernel columns, row bands) of an im2col conv."""
  _, h, w, _ = x_shape
  kh, kw = kernel_shape[:2]
  ho = _out_size(h, kh, strides[0], pads[0])
  wo = _out_size(w, kw, strides[1], pads[1])
  taps_w = _column_taps(w, kw, strides[1], pads[1][0], wo)
  return wo, taps_w, _row_bands(h, kh, strides[0], pads[0][0], ho)


def _im2col_forward(x, kernel, strides, pads, dtype):
  """Output [B, Ho, Wo, Cout] (dtype) and the patches of each band."""
  wo, taps_w, bands = _im2col_plan(x.shape, kernel.shape, strides, pads)
  xp = jnp.pad(x.astype(dtype), ((0, 0), pads[0], pads[1], (0, 0)))
  outputs, patches = [], []
  for r0, r1, k0, k1 in bands:
    windows = _windows(xp, strides, (r0, r1), (k0, k1), taps_w, wo)
    patches.append(windows[0] if len(windows) == 1 else
                   jnp.concatenate(windows, -1))
    live = kernel[k0:k1, taps_w[0]:taps_w[1]].reshape(-1, kernel.shape[-1])
    outputs.append(_contract_last(patches[-1], live.astype(dtype)))
  y = outputs[0] if len(outputs) == 1 else jnp.concatenate(outputs, 1)
  return y.astype(dtype), patches


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _im2col(x, kernel, strides, pads, dtype):
  return _im2col_forward(x, kernel, strides, pads, dtype)[0]


def _im2col_fwd(x, kernel, strides, pads, dtype):
  y, patches = _im2col_forward(x, kernel, strides, pads, dtype)
  # A zero-size stand-in carries x's shape and dtype to the backward pass.
  return y, (patches, kernel, jnp.zeros((0, *x.shape[1:]), x.dtype))


def _im2col_bwd(strides, pads, dtype, residuals, g):
  """Both gradient products in `dtype` with float32 accumulation; the
  windows' gradients are summed back onto the input (col2im) in float32."""
  patches, kernel, x_like = residuals
  _, h, w, cin = x_like.shape
  kh, kw, _, cout = kernel.shape
  wo, taps_w, bands = _im2col_plan((0, h, w, cin), kernel.shape, strides,
                                   pads)
  hp, wp = h + sum(pads[0]), w + sum(pads[1])
  (sh, sw), (c0, c1) = strides, taps_w
  dkernel = jnp.zeros(kernel.shape, jnp.float32)
  pieces = []
  for (r0, r1, k0, k1), patch in zip(bands, patches):
    g_band = g[:, r0:r1].astype(dtype)
    live = kernel[k0:k1, c0:c1].reshape(-1, cout).astype(dtype)
    dpatch = lax.dot_general(g_band, live, (((3,), (1,)), ((), ())),
                             preferred_element_type=jnp.float32)
    dlive = lax.dot_general(patch, g_band, (((0, 1, 2), (0, 1, 2)), ((), ())),
                            preferred_element_type=jnp.float32)
    dkernel = dkernel.at[k0:k1, c0:c1].add(
        dlive.reshape(k1 - k0, c1 - c0, cin, cout))
    taps = [(i, j) for i in range(k0, k1) for j in range(c0, c1)]
    for t, (i, j) in enumerate(taps):
      top, left = r0 * sh + i, j
      bottom = hp - top - (r1 - r0 - 1) * sh - 1
      right = wp - left - (wo - 1) * sw - 1
      pieces.append(lax.pad(
          dpatch[..., t * cin:(t + 1) * cin], jnp.float32(0),
          ((0, 0, 0), (top, bottom, sh - 1), (left, right, sw - 1),
           (0, 0, 0))))
  dxp = functools.reduce(jnp.add, pieces)
  dx = dxp[:, pads[0][0]:pads[0][0] + h, pads[1][0]:pads[1][0] + w]
  return dx.astype(x_like.dtype), dkernel.astype(kernel.dtype)


_im2col.defvjp(_im2col_fwd, _im2col_bwd)


def _im2col_conv(x, kernel, strides, pads, groups, dtype):
  """Convolution as [B*Ho*Wo, taps*Cin] x [taps*Cin, Cout] products.

  One product per band of output rows (see `_row_bands`), over the kernel
  taps that read real input for those rows.
  """
  if groups != 1:
    if groups == x.shape[-1] and kernel.shape[2] == 1:
      return _depthwise_shift_conv(x, kernel, strides, pads, dtype)
    return _native_conv(x, kernel, strides, pads, groups, dtype)
  return _im2col(x, kernel, tuple(strides), pads, jnp.dtype(dtype))


def _depthwise_shift_conv(x, kernel, strides, pads, dtype):
  """Depthwise convolution as a sum of shifted elementwise products."""
  return _depthwise(x, kernel, tuple(strides), pads, jnp.dtype(dtype))


def _depthwise_forward(x, kernel, strides, pads, dtype):
  """The output (dtype) and the padded input, kept for the gradient."""
  _, h, w, _ = x.shape
  kh, kw = kernel.shape[:2]
  ho = _out_size(h, kh, strides[0], pads[0])
  wo = _out_size(w, kw, strides[1], pads[1])
  taps_h = _live_taps(h, kh, strides[0], pads[0][0], range(ho))
  taps_w = _column_taps(w, kw, strides[1], pads[1][0], wo)
  xp = jnp.pad(x.astype(dtype), ((0, 0), pads[0], pads[1], (0, 0)))
  windows = _windows(xp, strides, (0, ho), taps_h, taps_w, wo)
  live = kernel[taps_h[0]:taps_h[1], taps_w[0]:taps_w[1], 0].reshape(
      -1, kernel.shape[-1]).astype(jnp.float32)
  acc = sum(win.astype(jnp.float32) * live[k]
            for k, win in enumerate(windows))
  return acc.astype(dtype), xp


# Autodiff of the shifted slices gives one strided pad per tap, all summed
# in one elementwise loop (25 padded operands for a 5x5 kernel): on
# XLA:CPU that sum cost more than the rest of an EfficientNet step.
@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _depthwise(x, kernel, strides, pads, dtype):
  return _depthwise_forward(x, kernel, strides, pads, dtype)[0]


def _depthwise_fwd(x, kernel, strides, pads, dtype):
  y, xp = _depthwise_forward(x, kernel, strides, pads, dtype)
  # A zero-size array carries the input dtype (residuals must be arrays).
  return y, (xp, kernel, jnp.zeros((0,), x.dtype))


def _depthwise_bwd(strides, pads, dtype, residuals, g):
  """Input gradient as a stride-1 correlation of the dilated gradient.

  dx[p] = sum_a gd[p + pad_lo - a] k[a], where gd is g with stride - 1
  zeros between its elements: one interior pad, then one shifted product
  per tap with the flipped kernel. The kernel gradient sums each tap's
  window of the padded input times g.
  """
  xp, kernel, x_dtype = residuals
  (sh, sw), kh, kw = strides, kernel.shape[0], kernel.shape[1]
  ho, wo = g.shape[1:3]
  hp, wp = xp.shape[1:3]
  (top, bottom), (left, right) = pads
  h, w = hp - top - bottom, wp - left - right
  g32 = g.astype(jnp.float32)
  gd = lax.pad(g32, jnp.float32(0), (
      (0, 0, 0), (kh - 1, hp - (ho - 1) * sh - 1, sh - 1),
      (kw - 1, wp - (wo - 1) * sw - 1, sw - 1), (0, 0, 0)))
  flipped = kernel[::-1, ::-1, 0].astype(jnp.float32)
  dx = sum(lax.slice_in_dim(lax.slice_in_dim(gd, top + a, top + a + h, axis=1),
                            left + b, left + b + w, axis=2) * flipped[a, b]
           for a in range(kh) for b in range(kw))
  windows = _windows(xp, strides, (0, ho), (0, kh), (0, kw), wo)
  dk = jnp.stack([jnp.sum(win.astype(jnp.float32) * g32, axis=(0, 1, 2))
                  for win in windows]).reshape(kernel.shape)
  return dx.astype(x_dtype.dtype), dk.astype(kernel.dtype)


_depthwise.defvjp(_depthwise_fwd, _depthwise_bwd)


_IMPLS = {
    'native': _native_conv,
    'matmul': _im2col_conv,
}


def conv2d(x: jax.Array, kernel: jax.Array, strides: Sequence[int] = (1, 1),
           padding: str | Sequence[tuple[int, int]] = 'SAME',
           groups: int = 1, impl: str = 'native',
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
  impl = resolve_conv_impl(impl, x.shape, kernel.shape, strides, pads,
                           groups)
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
    impl: one of CONV_IMPLS; the model's backend picks it (see
      `ocr_jax.models.backend`).
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
  impl: str = 'native'
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
               self.feature_group_count, self.impl, self.dtype)
    if self.use_bias:
      bias = self.param('bias', nn.initializers.zeros, (self.features,),
                        self.param_dtype)
      y = y + bias.astype(self.dtype)
    return y
