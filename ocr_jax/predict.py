"""Reads text from images on the command line; writes one TSV row per image.

  python -m ocr_jax.predict --model=MODEL [--beam_size=N] [--output=FILE] \\
      [--batch_size=32] [--char_confidences] \\
      [--lm=khmer|LM.npz [--lm_weight=W] [--length_bonus=B]] PATH...

MODEL is a training run folder, a file written by `python -m ocr_jax.export`,
or a pretrained name (see `ocr_jax.pretrained`). Each PATH is an image or a
folder (its files in sorted name order; .tsv/.txt/.json/.md/.csv/.yaml
files skipped). --lm fuses a character LM (the shipped 'khmer', or a file
written by `python -m ocr_jax.build_lm`) into CTC beam search: it needs a
CTC model and --beam_size > 1 (see `ocr_jax.reading.reader`).

Output (stdout, or FILE), UTF-8, tab-separated, in input order:

  path<TAB>text<TAB>confidence<TAB>error

`text` is the normalised reading, `confidence` the line probability (4
decimals); an image that cannot be read has empty text and confidence and
the reason in `error`. Tabs and newlines inside fields become spaces. With
--char_confidences a fifth column `characters` holds a JSON list of
[character, probability] pairs.

Exit status: 0 when every image was read, 3 when some could not be (the
others are still read and written), 1 when the model or the LM cannot be
loaded, 2 on a usage error (a missing --model or PATH, a size below 1, --lm
with greedy decoding or a model that is not CTC); a flag absl cannot parse
(unknown, malformed) exits 1, as in every absl program.
"""

from collections.abc import Sequence
import json
import sys
import time
import zipfile

from absl import app
from absl import flags

from ocr_jax import pretrained
from ocr_jax.data import image_io
from ocr_jax.reading import load
from ocr_jax.reading import reader as reader_lib
from ocr_jax.text import char_lm

EXIT_OK = 0
EXIT_LOAD_ERROR = 1
EXIT_USAGE = 2
EXIT_SOME_FAILED = 3
HEADER = ('path', 'text', 'confidence', 'error')
# What `char_lm.load` (np.load) raises on a file that is not an LM: missing,
# a folder, empty, not a zip, a damaged zip, a plain .npy, entries missing.
_LM_FILE_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile,
                   TypeError, KeyError)


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines this command's flags (on the global FLAGS when run).

  Not at import: ocr_jax.evaluate and ocr_jax.export define flags of the
  same names, and tests import all three.
  """
  flags.DEFINE_string('model', None, 'A training run folder, an exported '
                      '.ocrx file or a pretrained model name.',
                      flag_values=flag_values)
  flags.DEFINE_integer('beam_size', 1, '1 for greedy decoding, more for beam '
                       'search.', flag_values=flag_values)
  flags.DEFINE_string('output', None, 'Write the TSV here (default stdout).',
                      flag_values=flag_values)
  flags.DEFINE_integer('batch_size', 32, 'Images per model call.',
                       flag_values=flag_values)
  flags.DEFINE_bool('char_confidences', False,
                    'Add a column of per-character probabilities.',
                    flag_values=flag_values)
  define_lm_flags(flag_values)


def define_lm_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines --lm, --lm_weight and --length_bonus (also ocr_jax.evaluate's)."""
  flags.DEFINE_string('lm', None, "A character LM: 'khmer' (shipped) or a "
                      'file (.npz, written by `python -m ocr_jax.build_lm`), '
                      'fused into CTC beam search: needs a CTC model and '
                      '--beam_size > 1.',
                      flag_values=flag_values)
  flags.DEFINE_float('lm_weight', reader_lib.DEFAULT_LM_WEIGHT,
                     "The LM's weight in the beam's score (with --lm).",
                     flag_values=flag_values)
  flags.DEFINE_float('length_bonus', reader_lib.DEFAULT_LENGTH_BONUS,
                     "Added to the beam's score per character (with --lm).",
                     flag_values=flag_values)


def load_reader(flag_values: flags.FlagValues) -> reader_lib.Reader | None:
  """The Reader of --model, with --lm fused in (also ocr_jax.evaluate's).

  `load.load_reader(..., lm_path=)` in three steps, so that each failure
  has its own message: the LM file first (fast), then the model, then the
  fusing (which only a CTC model takes).

  Returns:
    The reader; None when the model or the LM cannot be loaded (the reason
    is on stderr).

  Raises:
    app.UsageError: --lm with --beam_size 1 or with a model that is not CTC.
  """
  lm = None
  if flag_values.lm:
    if flag_values.beam_size == 1:
      raise app.UsageError('--lm is fused into CTC beam search only: give '
                           '--beam_size > 1', exitcode=EXIT_USAGE)
    try:
      lm = char_lm.load(pretrained.lm_path(flag_values.lm))
    except _LM_FILE_ERRORS as e:
      sys.stderr.write(f'error: cannot load LM {flag_values.lm!r} (not a '
                       f'file written by ocr_jax.build_lm?): {e}\n')
      return None
  try:
    reader = load.load_reader(flag_values.model,
                              batch_size=flag_values.batch_size)
  except (ValueError, OSError) as e:
    sys.stderr.write(f'error: cannot load model {flag_values.model!r}: {e}\n')
    return None
  if lm is not None:
    try:
      reader.use_lm(lm, flag_values.lm_weight, flag_values.length_bonus)
    except ValueError as e:  # Not a CTC model.
      raise app.UsageError(f'--lm: {e}', exitcode=EXIT_USAGE) from e
  return reader


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


def main(argv: Sequence[str],
         flag_values: flags.FlagValues = flags.FLAGS) -> int:
  """Reads argv[1:] (the image paths); returns the exit status."""
  paths = list(argv[1:])
  if not flag_values.model or not paths:
    raise app.UsageError('give --model and at least one image path',
                         exitcode=EXIT_USAGE)
  if flag_values.beam_size < 1 or flag_values.batch_size < 1:
    raise app.UsageError('--beam_size and --batch_size must be >= 1',
                         exitcode=EXIT_USAGE)
  reader = load_reader(flag_values)
  if reader is None:
    return EXIT_LOAD_ERROR
  sources = image_io.expand_inputs(paths)
  if not sources:
    sys.stderr.write('warning: no image files in the given paths\n')
  char_confidences = flag_values.char_confidences
  output = flag_values.output
  out = (open(output, 'w', encoding='utf-8', newline='\n') if output
         else sys.stdout)
  start, count, failed = time.perf_counter(), 0, 0
  try:
    header = HEADER + (('characters',) if char_confidences else ())
    out.write('\t'.join(header) + '\n')
    for result in reader.iter_read(sources, beam_size=flag_values.beam_size,
                                   char_confidences=char_confidences):
      out.write(format_row(result, char_confidences) + '\n')
      count += 1
      failed += not result.ok
      if not result.ok:
        sys.stderr.write(f'error: {result.source}: {result.error}\n')
    out.flush()
  finally:
    if output:
      out.close()
  seconds = time.perf_counter() - start
  sys.stderr.write(f'read {count - failed} of {count} images in '
                   f'{seconds:.1f} s ({failed} failed)\n')
  return EXIT_SOME_FAILED if failed else EXIT_OK


if __name__ == '__main__':
  define_flags()
  app.run(main)
