"""What each weight format costs a trained model: CER, size on disk, speed.

  python -m benchmarks.quantize_benchmark --model=RUN_FOLDER \\
      --data=DIR_WITH_LABELS_TSV [--formats=float32,int8,bfloat16] \\
      [--batch_size=32] [--output=FILE]
  python -m benchmarks.quantize_benchmark --model=RUN_FOLDER \\
      --tfds=khmer_digits:test [--data_dir=D]

Exports the model (`ocr_jax.reading.export`, for the local platform) in each
weight format (`ocr_jax.reading.quantize`), reads each export back as a
deployment would (`Reader.from_export`) and scores it on the labelled data
with `ocr_jax.evaluate`. Prints one JSON object (and writes it to --output);
the acceptance bar is a CER rise of at most 0.2 points (0.002) for int8.
Earlier results: benchmarks/results/quantize_*.json. (Was
`python -m ocr_jax.quantize`; same flags.)
"""

from collections.abc import Sequence
import functools
import json
import os
import sys
import tempfile
import time
from typing import Any

from absl import app
from absl import flags

from ocr_jax import evaluate
from ocr_jax.reading import export
from ocr_jax.reading import load
from ocr_jax.reading import ocrx
from ocr_jax.reading import quantize
from ocr_jax.reading import reader as reader_lib

def compare_formats(model: str, *, data: str | None = None,
                    tfds_split: str | None = None,
                    data_dir: str | None = None,
                    formats=quantize.FORMATS,
                    batch_size: int = 32) -> dict[str, Any]:
  """Exports `model` in each format and scores every export on the data.

  Returns:
    {'formats': {format: {'cer', 'char_accuracy', 'seq_accuracy',
     'mean_ned', 'n', 'file_bytes', 'weight_bytes', 'ms_per_image',
     'max_abs_weight_error'}}, 'cer_increase_int8': CER(int8) - CER(float32)
     (if both ran), ...}; ms_per_image is timed on a second pass over the
     data (after compiling).
  """
  source = load.load_reader(model, batch_size=batch_size)
  report = {'model': model, 'data': data or tfds_split, 'formats': {}}
  with tempfile.TemporaryDirectory() as tmp:
    for weight_format in formats:
      path = os.path.join(tmp, f'model_{weight_format}.ocrx')
      export.export_reader(source, path, weight_format=weight_format,
                           beam_sizes=(1,),
                           platforms=(ocrx.platform_name(),))
      reader = reader_lib.Reader.from_export(path, batch_size=batch_size)
      score = functools.partial(evaluate.evaluate_model, reader, data=data,
                                tfds_split=tfds_split, data_dir=data_dir)
      scores = score()  # Also compiles.
      start = time.perf_counter()
      score()
      seconds = time.perf_counter() - start
      entry = {k: scores[k] for k in ('cer', 'char_accuracy', 'seq_accuracy',
                                      'mean_ned', 'n')}
      entry.update(
          file_bytes=os.path.getsize(path),
          weight_bytes=ocrx.read_weight_bytes(path),
          ms_per_image=1000.0 * seconds / max(scores['n'], 1),
          max_abs_weight_error=quantize.max_abs_error(
              source.variables,
              quantize.convert_weights(source.variables, weight_format)))
      report['formats'][weight_format] = entry
  results = report['formats']
  for weight_format in ('int8', 'bfloat16'):
    if weight_format in results and 'float32' in results:
      increase = results[weight_format]['cer'] - results['float32']['cer']
      report[f'cer_increase_{weight_format}'] = increase
      report[f'size_ratio_{weight_format}'] = (
          results[weight_format]['file_bytes'] /
          results['float32']['file_bytes'])
  if 'cer_increase_int8' in report:
    report['int8_within_0.2_points'] = report['cer_increase_int8'] <= 0.002
  return report


def define_flags() -> None:
  """Defines the flags, when run: not at import (tests import this module
  with other modules' flags of the same names)."""
  flags.DEFINE_string('model', None, 'A training run folder, an exported '
                      'file or a pretrained name.')
  flags.DEFINE_string('data', None, 'A folder of images with labels.tsv.')
  flags.DEFINE_string('tfds', None, 'A TFDS split, as NAME:SPLIT.')
  flags.DEFINE_string('data_dir', None, 'TFDS data directory.')
  flags.DEFINE_list('formats', list(quantize.FORMATS),
                    'Weight formats to compare.')
  flags.DEFINE_integer('batch_size', 32, 'Images per model call.')
  flags.DEFINE_string('output', None, 'Also write the JSON here.')


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  args = flags.FLAGS
  if not args.model or bool(args.data) == bool(args.tfds):
    raise app.UsageError('give --model and exactly one of --data and --tfds')
  report = compare_formats(args.model, data=args.data, tfds_split=args.tfds,
                           data_dir=args.data_dir, formats=args.formats,
                           batch_size=args.batch_size)
  text = json.dumps(report, indent=1, ensure_ascii=False)
  if args.output:
    with open(args.output, 'w', encoding='utf-8') as f:
      f.write(text + '\n')
  sys.stdout.write(text + '\n')


if __name__ == '__main__':
  define_flags()
  app.run(main)
