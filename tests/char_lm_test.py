"""The character n-gram LM: normalisation, counts, files, and its training
text (the corpus's training split only)."""

import math
import os

import numpy as np
import pytest

from ocr_jax.data import khmer_corpus
from ocr_jax.data import lm_corpus
from ocr_jax.data import text_sampler
from ocr_jax.text import char_lm


@pytest.fixture(scope='module')
def corpus_lm():
  """The LM of the shipped corpus's training lines (no generated text)."""
  return lm_corpus.build_lm(extra_samples=0)


def test_hand_computed_bigram():
  """Order 2 on 'ab', 'ab', 'b' over chars 'ab' (symbols a, b, END).

  Bigram counts after START: a 2, b 1 (total 3, 2 types); after 'a': b 2;
  after 'b': END 3. Unigram continuation counts (distinct predecessors):
  a 1 (START), b 2 (START, a), END 1 (b); total 4, 3 types.
  Discounts: order 1 has n1 = 2, n2 = 1 -> 2 / 4 = 0.5; order 2 has
  n1 = 1 (b after START), n2 = 2 (a after START, b after a) -> 1 / 5.
  """
  lm = char_lm.build(['ab', 'ab', 'b'], order=2, chars='ab')
  np.testing.assert_allclose(lm.discounts, [0.5, 0.2])
  uniform = 1 / 3
  unigram = {'a': (1 - 0.5) / 4 + 0.5 * 3 / 4 * uniform,
             'b': (2 - 0.5) / 4 + 0.5 * 3 / 4 * uniform,
             char_lm.END: (1 - 0.5) / 4 + 0.5 * 3 / 4 * uniform}
  d = 0.2
  expected_first_a = (2 - d) / 3 + d * 2 / 3 * unigram['a']
  assert math.exp(lm.log_prob('', 'a')) == pytest.approx(expected_first_a)
  expected_end_after_a = d * 1 / 2 * unigram[char_lm.END]
  assert math.exp(lm.log_prob('a', char_lm.END)) == pytest.approx(
      expected_end_after_a)
  assert lm.count('ab') == 2 and lm.count('b' + char_lm.END) == 3
  assert lm.count('b') == 2 and lm.count('ba') == 0


@pytest.mark.parametrize('history', ['', 'ក', 'ព្រះរាជាណាចក្រ', 'abc 12',
                                     'ក' * 30, 'xyz\u17d4 ', '\ufffd'])
def test_normalised_at_every_context(corpus_lm, history):
  probs = np.exp(corpus_lm.log_probs(history))
  assert probs.shape == (corpus_lm.size,)
  assert np.all(probs > 0)
  assert probs.sum() == pytest.approx(1.0, abs=1e-9)


def test_normalised_on_random_contexts(corpus_lm):
  rng = np.random.default_rng(0)
  lines = text_sampler.corpus_lines('train')
  for _ in range(50):
    line = lines[int(rng.integers(len(lines)))]
    cut = int(rng.integers(len(line) + 1))
    assert np.exp(corpus_lm.log_probs(line[:cut])).sum() == pytest.approx(
        1.0, abs=1e-9)


def test_prefers_real_text_to_shuffled(corpus_lm):
  """Unseen validation lines score far above their own characters shuffled."""
  rng = np.random.default_rng(1)
  lines = text_sampler.corpus_lines('validation')[:60]
  real = sum(corpus_lm.score(line) for line in lines)
  shuffled = sum(corpus_lm.score(''.join(rng.permutation(list(line))))
                 for line in lines)
  chars = sum(len(line) + 1 for line in lines)
  bits_real = -real / chars / math.log(2)
  bits_shuffled = -shuffled / chars / math.log(2)
  assert bits_real < 4.0  # About 3.2 measured.
  assert bits_shuffled > bits_real + 3.0  # About 7.8.
  better = sum(corpus_lm.score(line) > corpus_lm.score(
      ''.join(rng.permutation(list(line)))) for line in lines)
  assert better >= 58


def test_save_load_round_trip(corpus_lm, tmp_path):
  path = corpus_lm.save(str(tmp_path / 'lm.npz'))
  loaded = char_lm.load(path)
  assert loaded.order == corpus_lm.order and loaded.chars == corpus_lm.chars
  assert loaded.meta == corpus_lm.meta
  for history in ('', 'ក', 'សួស្តី', 'USD 12'):
    np.testing.assert_array_equal(loaded.log_probs(history),
                                  corpus_lm.log_probs(history))
  assert os.path.getsize(path) < 3_000_000  # Ships beside a model.


def test_corpus_lm_sees_training_lines_only(corpus_lm):
  """The provenance and the text: no validation or test line."""
  assert corpus_lm.meta['split'] == 'train'
  assert corpus_lm.meta['corpus_sha1'] == khmer_corpus.corpus_sha1(None)
  texts = lm_corpus.training_texts(extra_samples=0)
  assert corpus_lm.meta['lines'] == len(texts)
  held_out = set(lm_corpus.held_out_lines())
  assert held_out and not held_out & set(texts)
  raw = khmer_corpus.read_corpus(khmer_corpus.DEFAULT_CORPUS)
  train_raw = {text_sampler.clean(line) for line in raw
               if khmer_corpus.line_split(line) == 'train'}
  assert set(texts) <= train_raw


def test_held_out_ngrams_never_counted(tmp_path):
  """A corpus of made-up lines: n-grams only in validation/test lines have
  count 0, those of training lines are counted."""
  rng = np.random.default_rng(0)
  letters = 'abcdefghijklmnopqrstuvwxyz'
  lines = [''.join(rng.choice(list(letters), size=12)) for _ in range(60)]
  corpus = tmp_path / 'corpus.txt'
  corpus.write_text('\n'.join(lines) + '\n', encoding='utf-8')
  lm = lm_corpus.build_lm(order=4, corpus_path=str(corpus), extra_samples=0)
  train = [line for line in lines if khmer_corpus.line_split(line) == 'train']
  held_out = [line for line in lines if line not in train]
  assert train and held_out
  seen = {line[i:i + 4] for line in train for i in range(len(line) - 3)}
  for line in train:
    assert lm.count(line[:4]) >= 1
  unseen = [line[i:i + 4] for line in held_out for i in range(len(line) - 3)
            if line[i:i + 4] not in seen]
  assert unseen
  assert all(lm.count(gram) == 0 for gram in unseen)
  with pytest.raises(ValueError, match='shipped corpus'):
    lm_corpus.training_texts(str(corpus), extra_samples=5)


def test_training_texts_with_generated_samples_are_train_only():
  texts = lm_corpus.training_texts(extra_samples=30, seed=3)
  assert len(texts) == len(text_sampler.corpus_lines('train')) + 30
  held_out = set(lm_corpus.held_out_lines())
  extra = texts[-30:]
  # Generated texts embed Khmer from training lines only: no long
  # validation or test line appears inside them.
  assert not any(line in text for line in held_out if len(line) >= 40
                 for text in extra)
  assert texts == lm_corpus.training_texts(extra_samples=30, seed=3)
