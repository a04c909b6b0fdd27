"""Times every convolution shape of a preset under each implementation.

  python benchmarks/conv_benchmark.py --preset=small --batch_size=32 \
      --impls=native,matmul --dtypes=float32,bfloat16

The shapes are collected by tracing the preset at the given image size. For
each distinct shape, implementation and dtype it times the forward pass and
forward + gradients (w.r.t. the input and the kernel; the kernel only for
convolutions that read the images) and reports seconds and GFLOP/s (2 * MACs
of the full kernel, so a convolution whose taps 'matmul' skips shows a
higher rate), the count of such layers in the model, and which
implementation the CPU backend's per-layer rule (`conv.cpu_conv_impl`, the
'cpu' impl) picks ('cpu_rule'). Results go to --output as JSON.

Timing on a shared machine: before each timed run the script waits (up to a
few seconds) for the CPUs to be idle, and reports the minimum and the median
wall time and the median process CPU time of --repeats runs.
"""

import collections
import functools
import json
import os
import time

from absl import app
from absl import flags
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import machine
from ocr_jax import models
from ocr_jax.models import conv

FLAGS = flags.FLAGS

ConvShape = collections.namedtuple(
    'ConvShape', 'input kernel strides padding groups reads_images')


def _cpu_ticks() -> tuple[int, int]:
  with open('/proc/stat') as f:
    ticks = [int(t) for t in f.readline().split()[1:]]
  return sum(ticks[:8]), ticks[3] + ticks[4]


def wait_for_idle_cpu(busy_below: float = 0.15, window_s: float = 0.3,
                      max_wait_s: float = 2.0) -> bool:
  """Waits until the machine's CPUs were idle for a window (Linux only)."""
  deadline = time.perf_counter() + max_wait_s
  while time.perf_counter() < deadline:
    try:
      total, idle = _cpu_ticks()
      time.sleep(window_s)
      total2, idle2 = _cpu_ticks()
    except OSError:
      return False
    if total2 > total and 1 - (idle2 - idle) / (total2 - total) < busy_below:
      return True
  return False


def time_compiled(fn, args, repeats: int) -> dict:
  """Compiles jit(fn) at args' shapes, runs it once, then times it.

  Returns:
    compile_s, and over `repeats` runs each started on an idle machine:
    min_s and median_s (wall) and cpu_s (median process CPU seconds, all
    threads together).
  """
  start = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  compile_s = time.perf_counter() - start
  jax.block_until_ready(compiled(*args))
  wall, cpu = [], []
  for _ in range(repeats):
    wait_for_idle_cpu()
    start, start_cpu = time.perf_counter(), time.process_time()
    jax.block_until_ready(compiled(*args))
    wall.append(time.perf_counter() - start)
    cpu.append(time.process_time() - start_cpu)
  return {'compile_s': compile_s, 'min_s': float(np.min(wall)),
          'median_s': float(np.median(wall)), 'cpu_s': float(np.median(cpu))}


def conv_shapes(preset: str, batch: int, height: int,
                width: int) -> collections.Counter:
  """Counter of the ConvShapes the preset runs on [batch, height, width]."""
  shapes = collections.Counter()

  def record(next_fun, args, kwargs, context):
    module = context.module
    if isinstance(module, conv.Conv) and context.method_name == '__call__':
      x = args[0]
      kernel = (*module.kernel_size,
                x.shape[-1] // module.feature_group_count, module.features)
      padding = module.padding if isinstance(module.padding, str) else tuple(
          tuple(p) for p in module.padding)
      shapes[ConvShape(tuple(x.shape), kernel, tuple(module.strides),
                       padding, module.feature_group_count,
                       module.name == 'stem_conv')] += 1
    return next_fun(*args, **kwargs)

  model = models.create_model(preset, vocab_size=15, backend='cpu')
  max_length = models.get_architecture(preset).max_length
  with nn.intercept_methods(record):
    jax.eval_shape(
        functools.partial(model.init, train=False), jax.random.key(0),
        *models.dummy_inputs(height, width, max_length, batch))
  return shapes


def gflop(shape: ConvShape, out_shape) -> float:
  """Useful GFLOP of the forward pass (all kernel taps)."""
  kh, kw, cin, cout = shape.kernel
  return 2 * np.prod(out_shape[:3]) * kh * kw * cin * cout / 1e9


def define_flags():
  """Defined only when run as a script, so other benchmarks can import."""
  flags.DEFINE_string('preset', 'small', 'Model preset.')
  flags.DEFINE_integer('batch_size', 32, 'Batch size.')
  flags.DEFINE_integer('height', 64, 'Image height.')
  flags.DEFINE_integer('width', 128, 'Image width.')
  flags.DEFINE_list('impls', ['native', 'matmul'],
                    'Implementations to compare (conv.CONV_IMPLS).')
  flags.DEFINE_list('dtypes', ['float32', 'bfloat16'], 'Computation dtypes.')
  flags.DEFINE_integer('repeats', 5, 'Timed runs per measurement.')
  flags.DEFINE_string(
      'output', os.path.join(os.path.dirname(__file__), 'results',
                             'conv.json'), 'JSON output path.')


def bench_shape(shape: ConvShape, impl: str, dtype, repeats: int) -> dict:
  """Forward and forward+gradient timings of one shape."""
  kx, kk, kg = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, shape.input)
  kernel = jax.random.normal(kk, shape.kernel) * 0.05
  fwd = functools.partial(conv.conv2d, strides=shape.strides,
                          padding=shape.padding, groups=shape.groups,
                          impl=impl, dtype=dtype)
  out = jax.eval_shape(fwd, x, kernel)
  cotangent = jax.random.normal(kg, out.shape).astype(out.dtype)

  def fwd_bwd(x, kernel, cotangent):
    if shape.reads_images:
      return jax.vjp(lambda k: fwd(x, k), kernel)[1](cotangent)
    return jax.vjp(fwd, x, kernel)[1](cotangent)

  work = gflop(shape, out.shape)
  forward = time_compiled(fwd, (x, kernel), repeats)
  both = time_compiled(fwd_bwd, (x, kernel, cotangent), repeats)
  passes = 2 if shape.reads_images else 3
  return {'fwd_min_s': forward['min_s'], 'fwd_cpu_s': forward['cpu_s'],
          'fwd_gflops': work / forward['min_s'],
          'fwd_bwd_min_s': both['min_s'], 'fwd_bwd_cpu_s': both['cpu_s'],
          'fwd_bwd_gflops': passes * work / both['min_s']}


def main(argv):
  del argv
  shapes = conv_shapes(FLAGS.preset, FLAGS.batch_size, FLAGS.height,
                       FLAGS.width)
  rows = []
  for shape, count in shapes.items():
    pads = conv.explicit_padding(shape.padding, shape.input[1:3],
                                 shape.kernel[:2], shape.strides)
    for dtype in FLAGS.dtypes:
      rule = conv.cpu_conv_impl(shape.input, shape.kernel, shape.strides,
                                pads, shape.groups)
      row = {'input': shape.input, 'kernel': shape.kernel,
             'strides': shape.strides, 'groups': shape.groups,
             'count': count, 'dtype': dtype, 'cpu_rule': rule}
      for impl in FLAGS.impls:
        row[impl] = bench_shape(shape, impl, jnp.dtype(dtype), FLAGS.repeats)
      row['fastest'] = min(FLAGS.impls,
                           key=lambda i, row=row: row[i]['fwd_bwd_min_s'])
      print(json.dumps(row), flush=True)
      rows.append(row)
  totals = {}
  for dtype in FLAGS.dtypes:
    for impl in FLAGS.impls + ['cpu_rule']:
      totals[f'{impl}_{dtype}_fwd_bwd_s'] = sum(
          r['count'] * r[r['cpu_rule'] if impl == 'cpu_rule' else impl][
              'fwd_bwd_min_s'] for r in rows if r['dtype'] == dtype)
  print(json.dumps(totals, indent=1))
  os.makedirs(os.path.dirname(FLAGS.output) or '.', exist_ok=True)
  with open(FLAGS.output, 'w') as f:
    json.dump({'machine': machine.machine_info(), 'preset': FLAGS.preset,
               'batch_size': FLAGS.batch_size,
               'image': [FLAGS.height, FLAGS.width], 'totals': totals,
               'shapes': rows}, f, indent=1)


if __name__ == '__main__':
  define_flags()
  app.run(main)
