"""Builds the character LM for CTC beam search from the corpus's training split.

  python -m ocr_jax.build_lm --output=khmer_lm.npz [--order=5]
      [--extra_samples=2000] [--seed=0]

The text is the training split of the shipped corpus only (the SHA-1 hash
split of `khmer_text`), plus --extra_samples generated texts mixing numbers
and Latin words into training lines (`ocr_jax.data.lm_corpus`). The file
(`ocr_jax.text.char_lm`, about 1 MB at order 5) is used by
`load_reader(..., lm_path=FILE)` or `Reader.use_lm(FILE)`. Prints a JSON
line: the output, its size, the order, and the held-out validation lines'
bits per character (natural text) next to the same lines shuffled.
"""

from collections.abc import Sequence
import json
import math
import os

from absl import app
from absl import flags
import numpy as np

from ocr_jax.data import lm_corpus
from ocr_jax.text import char_lm

_OUTPUT = flags.DEFINE_string('output', None, 'The LM file to write (.npz).')
_ORDER = flags.DEFINE_integer('order', char_lm.DEFAULT_ORDER,
                              'n of the character n-grams.')
_EXTRA = flags.DEFINE_integer('extra_samples',
                              lm_corpus.DEFAULT_EXTRA_SAMPLES,
                              'Generated texts with numbers and Latin words.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the generated texts.')


def bits_per_char(lm: char_lm.CharLM, lines: Sequence[str]) -> float:
  """Cross-entropy of lines (each with its end of line), bits/character."""
  total = sum(lm.score(line) for line in lines)
  return -total / sum(len(line) + 1 for line in lines) / math.log(2)


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  if not _OUTPUT.value:
    raise app.UsageError('--output is required')
  lm = lm_corpus.build_lm(order=_ORDER.value, extra_samples=_EXTRA.value,
                          seed=_SEED.value)
  lm.save(_OUTPUT.value)
  held_out = list(lm_corpus.held_out_lines())[:200]
  rng = np.random.default_rng(0)
  shuffled = [''.join(rng.permutation(list(line))) for line in held_out]
  print(json.dumps({
      'output': _OUTPUT.value, 'bytes': os.path.getsize(_OUTPUT.value),
      'order': lm.order, 'lines': lm.meta['lines'],
      'held_out_bits_per_char': round(bits_per_char(lm, held_out), 3),
      'shuffled_bits_per_char': round(bits_per_char(lm, shuffled), 3)}))


if __name__ == '__main__':
  app.run(main)
