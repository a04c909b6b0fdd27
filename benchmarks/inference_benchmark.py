"""Inference speed and model size per preset, against the prototype's targets.

  python -m benchmarks.inference_benchmark [--presets=small,medium,large,
      ctc_small] [--beam_size=5] [--seconds=3] [--backend=auto|cpu|cuda]
      [--dtypes=float32,bfloat16] [--output=FILE]

For each preset (random weights: speed does not depend on their values),
times `Reader.predict_batch` (model + decoding, host arrays in and out) on
preprocessed 64 x 128 digit inputs:

  greedy and beam search, at batch 1 (ms/image, latency) and batch 64
  (images/s, throughput); compile seconds of each.

and exports the model (`ocr_jax.reading.export`) as float32 and int8 to
report its size on disk. The prototype's targets: under 100 ms per image on a
CPU and under 20 MB per model; its own PyTorch figures on this kind of
machine are in docs/prototype.md (small 9.9 ms, medium 14.9 ms, large
45.6 ms, ctc_small 8.1 ms at batch 1; 346 / 358 / 158 / 395 images/s at
batch 64).

--backend builds the model for a platform (`ocr_jax.models.backend`;
'auto': the local one): on a CPU, --backend=cuda times XLA's native
convolutions instead of the CPU's im2col rule. It replaces --conv_impl.

Prints the machine (CPU model and count, jax version, backend) and one line
per measurement (the fastest of the timed calls, see `time_call`), and
writes everything as JSON to
benchmarks/results/inference_benchmark.json (or --output).
"""

from collections.abc import Sequence
import json
import os
import tempfile
import time

from absl import app
from absl import flags
import jax
import numpy as np

from benchmarks import machine
from ocr_jax.reading import export
from ocr_jax.reading import load

TARGET_MS_PER_IMAGE = 100.0
TARGET_MODEL_MB = 20.0
# docs/prototype.md: ms/image at batch 1, images/s at batch 64.
PROTOTYPE = {
    'small': (9.9, 346), 'medium': (14.9, 358), 'large': (45.6, 158),
    'ctc_small': (8.1, 395)}
RESULTS_DIR = os.path.join(os.path.dirname(__file__), 'results')


def time_call(fn, seconds: float, min_runs: int = 3) -> dict:
  """Compiles (first call), then times calls for about `seconds`.

  Returns:
    {'compile_s', 'median_s', 'min_s', 'cpu_s', 'runs'}: the first call's
    time, the median and the minimum wall time of the timed calls, and the
    median CPU time of this process per call (all threads). On a shared
    machine the minimum wall time is the least disturbed by other
    processes, and the CPU time does not count waiting for them at all.
  """
  start = time.perf_counter()
  fn()
  compile_s = time.perf_counter() - start
  times, cpu_times = [], []
  deadline = time.perf_counter() + seconds
  while len(times) < min_runs or time.perf_counter() < deadline:
    start, cpu_start = time.perf_counter(), time.process_time()
    fn()
    times.append(time.perf_counter() - start)
    cpu_times.append(time.process_time() - cpu_start)
  return {'compile_s': compile_s, 'median_s': float(np.median(times)),
          'min_s': float(np.min(times)),
          'cpu_s': float(np.median(cpu_times)), 'runs': len(times)}


def inputs(reader, batch: int, seed: int = 0):
  """Preprocessed random-ish inputs [batch, H, W, 3] and full widths."""
  rng = np.random.default_rng(seed)
  spec = reader.spec
  images = rng.normal(0, 1, (batch, spec.image_height, spec.image_width,
                             3)).astype(np.float32)
  return images, np.full((batch,), spec.image_width, np.int32)


def speed(reader, batch: int, beam_size: int, seconds: float) -> dict:
  reader.batch_size = max(reader.batch_size, batch)
  images, widths = inputs(reader, batch)
  timing = time_call(lambda: reader.predict_batch(images, widths,
                                                  beam_size=beam_size),
                     seconds)
  per_call = timing['min_s']
  return {'batch': batch, 'beam_size': beam_size,
          'ms_per_image': 1000.0 * per_call / batch,
          'images_per_s': batch / per_call,
          'median_ms_per_image': 1000.0 * timing['median_s'] / batch,
          'cpu_ms_per_image': 1000.0 * timing['cpu_s'] / batch,
          **timing}


def model_size(reader) -> dict:
  """Bytes on disk of the exported model, float32 and int8 weights."""
  sizes = {}
  with tempfile.TemporaryDirectory() as tmp:
    for weight_format in ('float32', 'int8'):
      path = os.path.join(tmp, f'{weight_format}.ocrx')
      export.export_reader(reader, path, weight_format=weight_format,
                           platforms=('cpu',))
      sizes[f'{weight_format}_mb'] = os.path.getsize(path) / 1e6
  return sizes


def benchmark_preset(preset: str, beam_size: int, seconds: float,
                     backend: str = 'auto', dtype: str = 'float32') -> dict:
  reader = load.random_reader(preset, batch_size=64, backend=backend,
                              dtype=dtype)
  params = sum(x.size for x in jax.tree.leaves(reader.variables['params']))
  result = {'preset': preset, 'kind': reader.spec.kind,
            'backend': backend, 'dtype': dtype,
            'parameters': int(params), 'runs': []}
  for beam in sorted({1, beam_size}):
    for batch in (1, 64):
      run = speed(reader, batch, beam, seconds)
      result['runs'].append(run)
      _print(f'{preset} {dtype}', run)
  result.update(model_size(reader))
  greedy_1 = next(r for r in result['runs']
                  if r['batch'] == 1 and r['beam_size'] == 1)
  greedy_64 = next(r for r in result['runs']
                   if r['batch'] == 64 and r['beam_size'] == 1)
  result['meets_100ms_target'] = (
      greedy_1['ms_per_image'] < TARGET_MS_PER_IMAGE)
  result['meets_20mb_target_float32'] = result['float32_mb'] < TARGET_MODEL_MB
  result['meets_20mb_target_int8'] = result['int8_mb'] < TARGET_MODEL_MB
  if preset in PROTOTYPE:
    ms, throughput = PROTOTYPE[preset]
    result['prototype'] = {'ms_per_image_batch1': ms,
                           'images_per_s_batch64': throughput}
    result['speedup_vs_prototype_batch1'] = ms / greedy_1['ms_per_image']
    result['speedup_vs_prototype_batch64'] = (
        greedy_64['images_per_s'] / throughput)
  print(f'{preset}: {params / 1e6:.2f} M parameters, '
        f'{result["float32_mb"]:.1f} MB float32, {result["int8_mb"]:.1f} MB '
        f'int8 (target < {TARGET_MODEL_MB:.0f} MB)', flush=True)
  return result


def _print(preset, run):
  print(f'{preset:19s} beam {run["beam_size"]} batch {run["batch"]:3d}: '
        f'{run["ms_per_image"]:8.2f} ms/image {run["images_per_s"]:8.1f} '
        f'images/s, {run["cpu_ms_per_image"]:8.2f} CPU ms/image (compile '
        f'{run["compile_s"]:.1f} s, {run["runs"]} runs)', flush=True)


def define_flags() -> None:
  """Defines the flags, when run: latency_benchmark imports this module and
  has flags of the same names."""
  flags.DEFINE_list('presets', ['small', 'medium', 'large', 'ctc_small'],
                    'Model presets to time.')
  flags.DEFINE_integer('beam_size', 5, 'Beam size timed besides greedy.')
  flags.DEFINE_float('seconds', 3.0, 'Timing budget per measurement.')
  flags.DEFINE_string('backend', 'auto', 'Platform the models are built for '
                      "(ocr_jax.models.backend; 'auto': the local one).")
  flags.DEFINE_list('dtypes', ['float32', 'bfloat16'], 'Computation dtypes '
                    'to time (the weights are float32 either way).')
  flags.DEFINE_string('output', os.path.join(
      RESULTS_DIR, 'inference_benchmark.json'), 'The JSON report.')


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  args = flags.FLAGS
  info = machine.machine_info()
  print('machine:', json.dumps(info), flush=True)
  results = [benchmark_preset(p, args.beam_size, args.seconds, args.backend,
                              dtype)
             for p in args.presets for dtype in args.dtypes]
  info['load_average_1m_at_end'] = os.getloadavg()[0]
  report = {'benchmark': 'inference', 'machine': info,
            'targets': {'ms_per_image': TARGET_MS_PER_IMAGE,
                        'model_mb': TARGET_MODEL_MB},
            'seconds_per_measurement': args.seconds, 'presets': results}
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  with open(args.output, 'w', encoding='utf-8') as f:
    json.dump(report, f, indent=1)
  print(f'wrote {args.output}')


if __name__ == '__main__':
  define_flags()
  app.run(main)
