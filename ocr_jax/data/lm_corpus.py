"""The character LM's training text: the training split of the corpus only.

  from ocr_jax.data import lm_corpus
  lm = lm_corpus.build_lm(order=5)     # an ocr_jax.text.char_lm.CharLM
  lm.save('khmer_lm.npz')

(the command line is `python -m ocr_jax.build_lm --output=khmer_lm.npz`).

The text is that of the line models' training (`text_sampler`): the corpus
lines whose SHA-1 hash split (`khmer_corpus.line_split`) is 'train', each once,
cleaned as `text_sampler.clean` does, plus `extra_samples` texts drawn by
`text_sampler.sample_text(rng, 'train', kind=...)` of the kinds that mix in
numbers and Latin words (their Khmer parts are training lines too). No
validation or test line is ever read. The extra samples depend on the seed
and, for Latin words, on /usr/share/dict/words (see `text_sampler`).
"""

from collections.abc import Sequence

import numpy as np

from ocr_jax.data import khmer_corpus
from ocr_jax.data import text_sampler
from ocr_jax.text import char_lm

SPLIT = 'train'
# Kinds of generated text added to the corpus lines.
EXTRA_KINDS = ('numbers', 'latin', 'mixed')
DEFAULT_EXTRA_SAMPLES = 2000


def training_texts(corpus_path: str = khmer_corpus.DEFAULT_CORPUS,
                   extra_samples: int = DEFAULT_EXTRA_SAMPLES,
                   seed: int = 0) -> list[str]:
  """The LM's training lines (see the module docstring)."""
  texts = list(text_sampler.corpus_lines(SPLIT, corpus_path))
  if extra_samples and corpus_path != khmer_corpus.DEFAULT_CORPUS:
    # text_sampler draws its Khmer parts from the shipped corpus only.
    raise ValueError('extra_samples needs the shipped corpus; pass 0')
  rng = np.random.default_rng(seed)
  for i in range(extra_samples):
    texts.append(text_sampler.sample_text(
        rng, SPLIT, kind=EXTRA_KINDS[i % len(EXTRA_KINDS)]))
  return texts


def build_lm(order: int = char_lm.DEFAULT_ORDER,
             corpus_path: str = khmer_corpus.DEFAULT_CORPUS,
             extra_samples: int = DEFAULT_EXTRA_SAMPLES, seed: int = 0,
             chars: str | None = None) -> char_lm.CharLM:
  """A character LM of `training_texts`, its provenance in `lm.meta`."""
  texts = training_texts(corpus_path, extra_samples, seed)
  meta = {'corpus_sha1': khmer_corpus.corpus_sha1(corpus_path),
          'split': SPLIT, 'corpus_lines': len(
              text_sampler.corpus_lines(SPLIT, corpus_path)),
          'extra_samples': extra_samples, 'extra_kinds': list(EXTRA_KINDS),
          'seed': seed}
  return char_lm.build(texts, order=order, chars=chars, meta=meta)


def held_out_lines(corpus_path: str = khmer_corpus.DEFAULT_CORPUS
                   ) -> Sequence[str]:
  """The validation and test corpus lines (never in `training_texts`)."""
  return (text_sampler.corpus_lines('validation', corpus_path) +
          text_sampler.corpus_lines('test', corpus_path))
