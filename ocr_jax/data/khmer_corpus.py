"""The Khmer text corpus: where it is, how it is read, how it is split.

  from ocr_jax.data import khmer_corpus
  lines = khmer_corpus.read_corpus(khmer_corpus.DEFAULT_CORPUS)
  train = [l for l in lines if khmer_corpus.line_split(l) == 'train']

Every text source of the project draws on these lines the same way (the
`khmer_text` and `khmer_pages` builders, `text_sampler`, the character LM's
`lm_corpus`): each line is normalised (`normalize_khmer`) and assigned to
train / validation / test (90 / 5 / 5) by the SHA-1 of the normalised line,
so a validation or test line never feeds training anywhere.

A `corpus_path` argument names the corpus file: None is `DEFAULT_CORPUS`
(ocr_jax/data/corpus/khm_lines.txt, Tesseract langdata, Apache-2.0; see the
README.md beside it) and '' is no corpus (the `khmer_text` builder then
uses its syllable generator).

A plain module (no TFDS): the builders import it, never each other.
"""

import hashlib
import os

from ocr_jax.text import khmer_normalizer

# The corpus shipped with the package (package data; see corpus/README.md).
DEFAULT_CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              'corpus', 'khm_lines.txt')
SPLITS = ('train', 'validation', 'test')


def line_split(line: str) -> str:
  """train / validation / test (90 / 5 / 5) from the SHA-1 of the line."""
  bucket = int.from_bytes(hashlib.sha1(line.encode('utf-8')).digest()[:8],
                          'big') % 100
  return 'train' if bucket < 90 else 'validation' if bucket < 95 else 'test'


def read_corpus(path: str) -> list[str]:
  """Normalised, non-empty, distinct lines in file order."""
  with open(path, encoding='utf-8') as f:
    lines = (khmer_normalizer.normalize_khmer(line) for line in f)
    return list(dict.fromkeys(line for line in lines if line))


def resolve_corpus(corpus_path: str | None) -> str:
  """The corpus file a corpus_path names: None is `DEFAULT_CORPUS`.

  Returns '' when corpus_path is '' (no corpus).
  """
  return DEFAULT_CORPUS if corpus_path is None else os.fspath(corpus_path)


def corpus_sha1(corpus_path: str | None) -> str:
  """SHA-1 of the corpus file bytes ('' for no corpus)."""
  path = resolve_corpus(corpus_path)
  if not path:
    return ''
  with open(path, 'rb') as f:
    return hashlib.sha1(f.read()).hexdigest()
