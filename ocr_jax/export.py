"""Exports a model to one self-contained `.ocrx` file; prints one JSON line.

  python -m ocr_jax.export --model=runs/baseline --output=digits.ocrx \\
      [--weight_format=float32|int8|bfloat16] [--beam_sizes=1,5] \\
      [--platforms=cpu,cuda]

MODEL is a training run folder, or an exported file to store in another
weight format (its functions are reused; --platforms then defaults to the
file's own). Each platform gets functions traced from a model built for it
(`ocr_jax.models.backend`), so a file exported on a CPU runs XLA's native
convolutions on a GPU. The file runs without the training or model code:
see `ocr_jax.reading.ocrx` for its format and `Reader.from_export` to read
it.

Changes from the earlier command (also run as `ocr_jax.reading.export`): the
`--conv_impl` flag is gone (each platform's backend is chosen from the
platform); files of format version 1 are no longer read (re-export them).

Exit status 0, 1 if the model cannot be loaded or exported, 2 on a usage
error.
"""

from collections.abc import Sequence
import json
import os
import sys

from absl import app
from absl import flags

from ocr_jax.reading import export
from ocr_jax.reading import load
from ocr_jax.reading import ocrx
from ocr_jax.reading import quantize

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines this command's flags (on the global FLAGS when run).

  Not at import: ocr_jax.predict and ocr_jax.evaluate define flags of the
  same names, and tests import all three.
  """
  flags.DEFINE_string('model', None, 'A training run folder (or an exported '
                      'file to convert to another weight format).',
                      flag_values=flag_values)
  flags.DEFINE_string('output', None, 'The file to write.',
                      flag_values=flag_values)
  flags.DEFINE_enum('weight_format', 'float32', quantize.FORMATS,
                    'How the weights are stored.', flag_values=flag_values)
  flags.DEFINE_list('beam_sizes', ['1'], 'Beam sizes to export.',
                    flag_values=flag_values)
  flags.DEFINE_list('platforms', None, 'Platforms to export for (cpu, cuda, '
                    'rocm, tpu). Default: '
                    f'{",".join(export.DEFAULT_PLATFORMS)} for a run folder, '
                    "an exported file's own.", flag_values=flag_values)


def main(argv: Sequence[str],
         flag_values: flags.FlagValues = flags.FLAGS) -> int:
  """Runs the command line; returns the exit status."""
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}',
                         exitcode=EXIT_USAGE)
  args = flag_values
  if not args.model or not args.output:
    raise app.UsageError('give --model and --output', exitcode=EXIT_USAGE)
  try:
    beam_sizes = tuple(int(b) for b in args.beam_sizes)
  except ValueError:
    raise app.UsageError(f'--beam_sizes={",".join(args.beam_sizes)}: not '
                         'integers', exitcode=EXIT_USAGE) from None
  try:
    reader = load.load_reader(args.model)
    export.export_reader(reader, args.output,
                         weight_format=args.weight_format,
                         beam_sizes=beam_sizes, platforms=args.platforms)
  except (ValueError, OSError) as e:
    sys.stderr.write(f'error: {e}\n')
    return EXIT_ERROR
  meta = ocrx.read_meta(args.output)
  sys.stdout.write(json.dumps({
      'output': args.output, 'bytes': os.path.getsize(args.output),
      'weight_bytes': ocrx.read_weight_bytes(args.output),
      'weight_format': args.weight_format,
      'beam_sizes': meta['beam_sizes'], 'platforms': meta['platforms'],
  }) + '\n')
  return EXIT_OK


if __name__ == '__main__':
  define_flags()
  app.run(main)
