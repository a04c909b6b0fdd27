"""Deployment latency: exported model, float32 vs quantized weights.

  python -m benchmarks.latency_benchmark [--preset=small] [--seconds=3]
      [--output=FILE]

Exports a random-weight preset (speed does not depend on the values) as
float32, int8 and bfloat16 `.ocrx` files, loads each with
`Reader.from_export` (the path a deployment takes: no model code), and
reports for each

  file MB, load seconds,
  ms/image at batch 1 and images/s at batch 64 (greedy, model only),
  ms/image at batch 1 end to end (PNG file -> text: decode, resize,
  normalise, model, decode ids),

plus the in-process model computing in bfloat16 (config dtype) as the
mixed-precision alternative. int8 and bfloat16 weights are dequantized to
float32 at load, so their speed should equal float32's: only the file
shrinks. Prints the machine and writes JSON to
benchmarks/results/latency_benchmark.json (or --output).
"""

from collections.abc import Sequence
import json
import os
import tempfile
import time

from absl import app
from absl import flags
import numpy as np
from PIL import Image

from benchmarks import inference_benchmark
from benchmarks import machine
from ocr_jax.reading import export
from ocr_jax.reading import load
from ocr_jax.reading import reader as reader_lib



def measure(reader, seconds: float, png_path: str) -> dict:
  batch_1 = inference_benchmark.speed(reader, 1, 1, seconds)
  batch_64 = inference_benchmark.speed(reader, 64, 1, seconds)
  end_to_end = inference_benchmark.time_call(lambda: reader.read(png_path),
                                             seconds)
  return {
      'ms_per_image_batch1': batch_1['ms_per_image'],
      'images_per_s_batch64': batch_64['images_per_s'],
      'cpu_ms_per_image_batch1': batch_1['cpu_ms_per_image'],
      'cpu_ms_per_image_batch64': batch_64['cpu_ms_per_image'],
      'end_to_end_ms_batch1': 1000.0 * end_to_end['min_s'],
      'compile_s_batch1': batch_1['compile_s'],
  }


def define_flags() -> None:
  """Defines the flags, when run (not at import, like the other
  benchmarks: tests import several of them)."""
  flags.DEFINE_string('preset', 'small', 'The model preset.')
  flags.DEFINE_float('seconds', 3.0, 'Timing budget per measurement.')
  flags.DEFINE_string('output', os.path.join(
      inference_benchmark.RESULTS_DIR, 'latency_benchmark.json'),
                      'The JSON report.')


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  preset, seconds = flags.FLAGS.preset, flags.FLAGS.seconds
  output = flags.FLAGS.output
  info = machine.machine_info()
  print('machine:', json.dumps(info), flush=True)
  source = load.random_reader(preset, batch_size=64)
  variants = {}
  with tempfile.TemporaryDirectory() as tmp:
    png_path = os.path.join(tmp, 'line.png')
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(150, 255, (48, 110, 3), np.uint8)).save(
        png_path)
    for weight_format in ('float32', 'int8', 'bfloat16'):
      path = os.path.join(tmp, f'{weight_format}.ocrx')
      export.export_reader(source, path, weight_format=weight_format,
                           platforms=('cpu',))
      start = time.perf_counter()
      reader = reader_lib.Reader.from_export(path, batch_size=64)
      load_s = time.perf_counter() - start
      name = f'export_{weight_format}'
      variants[name] = {'file_mb': os.path.getsize(path) / 1e6,
                        'load_s': load_s,
                        **measure(reader, seconds, png_path)}
      _print(name, variants[name])
    for dtype in ('float32', 'bfloat16'):
      reader = load.random_reader(preset, batch_size=64, dtype=dtype)
      name = f'in_process_{dtype}_compute'
      variants[name] = measure(reader, seconds, png_path)
      _print(name, variants[name])
  base = variants['export_float32']
  for entry in variants.values():
    entry['batch1_speed_vs_float32'] = (base['ms_per_image_batch1'] /
                                        entry['ms_per_image_batch1'])
  info['load_average_1m_at_end'] = os.getloadavg()[0]
  report = {'benchmark': 'latency', 'preset': preset, 'machine': info,
            'seconds_per_measurement': seconds, 'variants': variants}
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  with open(output, 'w', encoding='utf-8') as f:
    json.dump(report, f, indent=1)
  print(f'wrote {output}')


def _print(name, entry):
  size = f'{entry["file_mb"]:6.1f} MB ' if 'file_mb' in entry else ' ' * 10
  print(f'{name:28s} {size}{entry["ms_per_image_batch1"]:7.2f} ms/image '
        f'(batch 1) {entry["images_per_s_batch64"]:7.1f} images/s '
        f'(batch 64) {entry["end_to_end_ms_batch1"]:7.2f} ms end to end; '
        f'CPU ms/image {entry["cpu_ms_per_image_batch1"]:.2f} (batch 1) '
        f'{entry["cpu_ms_per_image_batch64"]:.2f} (batch 64)', flush=True)


if __name__ == '__main__':
  define_flags()
  app.run(main)
