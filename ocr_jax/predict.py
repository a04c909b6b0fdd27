"""Reads text from images on the command line; writes one TSV row per image.

  python -m ocr_jax.predict --model=MODEL [--beam_size=N] [--output=FILE] \\
      [--batch_size=32] [--char_confidences] PATH...

MODEL is a training workdir, a file written by `ocr_jax.reading.export`, or a
pretrained name (see `ocr_jax.pretrained`). Each PATH is an image or a
folder (its files in sorted name order; .tsv/.txt/.json/.md/.csv/.yaml
files skipped).

Output (stdout, or FILE), UTF-8, tab-separated, in input order:

  path<TAB>text<TAB>confidence<TAB>error

`text` is the normalised reading, `confidence` the line probability (4
decimals); an image that cannot be read has empty text and confidence and
the reason in `error`. Tabs and newlines inside fields become spaces. With
--char_confidences a fifth column `characters` holds a JSON list of
[character, probability] pairs.

Exit status: 0 when every image was read, 3 when some could not be (the
others are still read and written), 1 when the model cannot be loaded, 2 on
a usage error.
"""

import argparse
import json
import sys
import time

from ocr_jax.reading import reader as reader_lib

EXIT_OK = 0
EXIT_LOAD_ERROR = 1
EXIT_SOME_FAILED = 3
HEADER = ('path', 'text', 'confidence', 'error')


def clean(field: str) -> str:
  """A TSV-safe field: tabs and line breaks become spaces."""
  return (field.replace('\t', ' ').replace('\r', ' ').replace('\n', ' ')
          if field else '')


def format_row(result: reader_lib.ReadResult,
               char_confidences: bool = False) -> str:
  """One TSV line (without the newline) for a result."""
  confidence = ('' if result.confidence is None
                else f'{result.confidence:.4f}')
  fields = [result.source, result.text, confidence, result.error or '']
  if char_confidences:
    fields.append(json.dumps(
        [[c, round(p, 4)] for c, p in result.characters or []],
        ensure_ascii=False))
  return '\t'.join(clean(f) for f in fields)


def parse_args(argv):
  parser = argparse.ArgumentParser(
      prog='python -m ocr_jax.predict',
      description='Reads text lines from images; writes TSV rows '
      '(path, text, confidence, error).')
  parser.add_argument('--model', required=True,
                      help='A training workdir, an exported .ocrx file or a '
                      'pretrained model name.')
  parser.add_argument('--beam_size', type=int, default=1,
                      help='1 for greedy decoding, more for beam search.')
  parser.add_argument('--output', help='Write the TSV here (default stdout).')
  parser.add_argument('--batch_size', type=int, default=32,
                      help='Images per model call.')
  parser.add_argument('--char_confidences', action='store_true',
                      help='Add a column of per-character probabilities.')
  parser.add_argument('paths', nargs='+', metavar='PATH',
                      help='Image files or folders.')
  args = parser.parse_args(argv)
  if args.beam_size < 1 or args.batch_size < 1:
    parser.error('--beam_size and --batch_size must be >= 1')
  return args


def main(argv=None) -> int:
  """Runs the command line; returns the exit status (see module docstring)."""
  args = parse_args(argv)
  try:
    reader = reader_lib.load_reader(args.model, batch_size=args.batch_size)
  except (ValueError, OSError) as e:
    sys.stderr.write(f'error: cannot load model {args.model!r}: {e}\n')
    return EXIT_LOAD_ERROR
  sources = reader_lib.expand_inputs(args.paths)
  if not sources:
    sys.stderr.write('warning: no image files in the given paths\n')
  out = (open(args.output, 'w', encoding='utf-8', newline='\n')
         if args.output else sys.stdout)
  start, count, failed = time.perf_counter(), 0, 0
  try:
    header = HEADER + (('characters',) if args.char_confidences else ())
    out.write('\t'.join(header) + '\n')
    for result in reader.iter_read(sources, beam_size=args.beam_size,
                                   char_confidences=args.char_confidences):
      out.write(format_row(result, args.char_confidences) + '\n')
      count += 1
      failed += not result.ok
      if not result.ok:
        sys.stderr.write(f'error: {result.source}: {result.error}\n')
    out.flush()
  finally:
    if args.output:
      out.close()
  seconds = time.perf_counter() - start
  sys.stderr.write(f'read {count - failed} of {count} images in '
                   f'{seconds:.1f} s ({failed} failed)\n')
  return EXIT_SOME_FAILED if failed else EXIT_OK


if __name__ == '__main__':
  sys.exit(main())
