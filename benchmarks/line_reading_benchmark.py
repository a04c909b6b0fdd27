"""Line reading speed: ocr_jax against Tesseract on the same files.

  python -m benchmarks.line_reading_benchmark [--model=RUN|FILE.ocrx|NAME]
      [--lines=64] [--batch_size=32] [--repeats=3] [--output=FILE]

Without --model, a randomly initialised `line_ctc` (khmer vocabulary,
48 x up to 1,536 px) is timed: the weights' values do not change the time.

Renders --lines 'clean' validation lines of 20-40 characters
(`ocr_jax.data.synth_lines.make_sample`) and one 'long' line about 1,000 px
wide at the model's height, writes them as PNG files, and times, from the
files (decode, resize, model, decode ids):

  ocr_jax, batched      `reader.read(paths)`: batches bucketed by width
  ocr_jax, full width   the same with every batch padded to image_width
                        (what reading did before width buckets)
  ocr_jax, batch 1      `reader.read(path)` for each line
  1,000 px, batch 1     one `reader.read(path)` of the long line
  tesseract             `tesseract IMG stdout -l khm --psm 7`, one process
                        per line, on every line and on the long line

Each ocr_jax timing follows a warm-up read of the same files (so every
shape is compiled; the compile time is reported apart) and is the best of
--repeats. Also reported: the size of the model exported as int8 for 'cpu'
and 'cuda' (one function per platform, symbolic width). The 2-core
machines vary from day to day, so only the ratios from one run count.
Without Tesseract (or its khm data) its part is skipped with a message.
Writes JSON to benchmarks/results/line_reading.json (or --output).
"""

from collections.abc import Sequence
import dataclasses
import json
import os
import tempfile
import time

from absl import app
from absl import flags
from PIL import Image

from benchmarks import machine
from benchmarks import tesseract
from ocr_jax.data import preprocess
from ocr_jax.data import synth_lines
from ocr_jax.reading import export
from ocr_jax.reading import load
from ocr_jax.reading import reader as reader_lib

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       'results', 'line_reading.json')
# Characters of a typical line (the "about 30").
TYPICAL_LENGTH = (20, 40)
LONG_LINE_WIDTH = 1000


def define_flags() -> None:
  """Defines the flags when run (tests may import the module)."""
  flags.DEFINE_string('model', '', 'Run folder, .ocrx or shipped name; '
                      'empty: a random line_ctc.')
  flags.DEFINE_integer('lines', 64, 'Typical lines to read.')
  flags.DEFINE_integer('batch_size', 32, 'ocr_jax batch size.')
  flags.DEFINE_integer('repeats', 3, 'Timings per measurement (best kept).')
  flags.DEFINE_integer('seed', 0, 'Seed of the rendered lines.')
  flags.DEFINE_string('tesseract', 'tesseract', 'Tesseract binary.')
  flags.DEFINE_string('output', RESULTS, 'The JSON report.')


def make_reader(model: str, batch_size: int) -> reader_lib.Reader:
  if model:
    return load.load_reader(model, batch_size=batch_size)
  return load.random_reader('line_ctc', vocabulary='khmer', image_height=48,
                            image_width=1536, dataset='synth_lines',
                            batch_size=batch_size)


def fitted_width(image, spec: reader_lib.ReaderSpec) -> int:
  return preprocess.fit_size(image.shape[1], image.shape[0],
                             spec.image_height, spec.image_width, True)[0]


def typical_lines(count: int, seed: int) -> list:
  """Clean validation samples whose text has TYPICAL_LENGTH characters."""
  samples, index = [], 0
  while len(samples) < count:
    sample = synth_lines.make_sample(seed, index, 'validation', tier='clean')
    if TYPICAL_LENGTH[0] <= len(sample.text) <= TYPICAL_LENGTH[1]:
      samples.append(sample)
    index += 1
  return samples


def long_line(spec: reader_lib.ReaderSpec, seed: int, tries: int = 24):
  """The 'long' validation sample nearest LONG_LINE_WIDTH at model height."""
  samples = [synth_lines.make_sample(seed, i, 'validation', tier='long')
             for i in range(tries)]
  return min(samples, key=lambda s: abs(fitted_width(s.image, spec) -
                                        LONG_LINE_WIDTH))


def best_time(fn, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return min(times)


def time_ocr_jax(reader, paths, long_path, repeats) -> dict:
  start = time.perf_counter()
  reader.read(paths)
  for path in paths:
    reader.read(path)
  reader.read(long_path)
  warm_up_s = time.perf_counter() - start
  batched = best_time(lambda: reader.read(paths), repeats)
  single = best_time(lambda: [reader.read(p) for p in paths], 1)
  return {
      'warm_up_and_compile_s': warm_up_s,
      'batched_lines_per_s': len(paths) / batched,
      'batch1_lines_per_s': len(paths) / single,
      'line_1000px_batch1_s': best_time(lambda: reader.read(long_path),
                                        repeats),
  }


def export_size_mb(reader) -> float | None:
  """MB of the model exported as int8 for cpu and cuda (None: no model)."""
  if reader.model is None:
    return None
  with tempfile.TemporaryDirectory() as folder:
    path = export.export_reader(reader, os.path.join(folder, 'm.ocrx'),
                                weight_format='int8',
                                platforms=('cpu', 'cuda'))
    return os.path.getsize(path) / 1e6


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  flag = flags.FLAGS
  info = machine.machine_info()
  print('machine:', json.dumps(info), flush=True)
  reader = make_reader(flag.model, flag.batch_size)
  spec = reader.spec
  samples = typical_lines(flag.lines, flag.seed)
  long_sample = long_line(spec, flag.seed)
  report = {
      'benchmark': 'line_reading', 'model': flag.model or 'random line_ctc',
      'machine': info, 'batch_size': flag.batch_size,
      'repeats': flag.repeats, 'bucket_widths': list(spec.bucket_widths),
      'lines': len(samples),
      'mean_characters': sum(len(s.text) for s in samples) / len(samples),
      'mean_fitted_width': sum(fitted_width(s.image, spec)
                               for s in samples) / len(samples),
      'long_line': {'characters': len(long_sample.text),
                    'pixels': list(long_sample.image.shape[:2]),
                    'fitted_width': fitted_width(long_sample.image, spec)},
  }
  print(json.dumps({k: v for k, v in report.items() if k != 'machine'}),
        flush=True)
  with tempfile.TemporaryDirectory() as folder:
    paths = []
    for i, sample in enumerate(samples):
      paths.append(os.path.join(folder, f'line_{i:04d}.png'))
      Image.fromarray(sample.image).save(paths[-1])
    long_path = os.path.join(folder, 'long.png')
    Image.fromarray(long_sample.image).save(long_path)

    report['ocr_jax'] = time_ocr_jax(reader, paths, long_path, flag.repeats)
    print('ocr_jax:', json.dumps(report['ocr_jax']), flush=True)
    full = reader_lib.Reader(dataclasses.replace(spec, any_width=False),
                             reader.variables, reader.predict_fns,
                             batch_size=flag.batch_size)
    full.read(paths)
    report['ocr_jax_full_width'] = {'batched_lines_per_s': len(paths) /
                                    best_time(lambda: full.read(paths),
                                              flag.repeats)}
    print('ocr_jax at full width:', json.dumps(report['ocr_jax_full_width']),
          flush=True)
    missing = tesseract.missing(flag.tesseract)
    if missing:
      print('Tesseract skipped:', missing)
      report['tesseract'] = {'skipped': missing}
    else:
      read = lambda path: tesseract.read(path, binary=flag.tesseract)
      report['tesseract'] = {
          'lines_per_s': len(paths) / best_time(
              lambda: [read(p) for p in paths], 1),
          'line_1000px_s': best_time(lambda: read(long_path), flag.repeats),
      }
      print('tesseract:', json.dumps(report['tesseract']), flush=True)
      ours, theirs = report['ocr_jax'], report['tesseract']
      report['ratios'] = {
          'batched_vs_tesseract_lines_per_s':
              ours['batched_lines_per_s'] / theirs['lines_per_s'],
          'batch1_vs_tesseract_lines_per_s':
              ours['batch1_lines_per_s'] / theirs['lines_per_s'],
          'tesseract_over_ocr_jax_time_1000px':
              theirs['line_1000px_s'] / ours['line_1000px_batch1_s'],
      }
  report['export_int8_cpu_cuda_mb'] = export_size_mb(reader)
  info['load_average_1m_at_end'] = os.getloadavg()[0]
  print('ratios:', json.dumps(report.get('ratios')), '; int8 export MB:',
        report['export_int8_cpu_cuda_mb'], flush=True)
  os.makedirs(os.path.dirname(os.path.abspath(flag.output)), exist_ok=True)
  with open(flag.output, 'w', encoding='utf-8') as f:
    json.dump(report, f, indent=1)
  print(f'wrote {flag.output}')


if __name__ == '__main__':
  define_flags()
  app.run(main)
