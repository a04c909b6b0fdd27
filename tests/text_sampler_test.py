"""Tests of ocr_jax.data.text_sampler: labels, lengths, splits, mixing."""

import re

import numpy as np
import pytest

from ocr_jax.data import khmer_corpus
from ocr_jax.data import text_sampler
from ocr_jax.text import charset
from ocr_jax.text import khmer_normalizer

VOCAB = charset.get_vocabulary('khmer')


def _is_label(text):
  return (bool(text) and khmer_normalizer.normalize_khmer(text) == text and
          not VOCAB.missing(text))


@pytest.mark.parametrize('kind', text_sampler.KINDS)
def test_every_kind_gives_normalised_in_vocabulary_labels(kind):
  rng = np.random.default_rng(1)
  for _ in range(150):
    text = text_sampler.sample_text(rng, 'train', max_length=40, kind=kind)
    assert _is_label(text), text
    assert len(text) <= 40


def test_long_texts_are_70_to_140_long():
  rng = np.random.default_rng(2)
  lengths = [len(text_sampler.long_text(rng, 'validation'))
             for _ in range(100)]
  assert min(lengths) >= 70 and max(lengths) <= 140
  assert max(lengths) >= 125  # The long end is reached.


def test_clean_removes_out_of_vocabulary_characters():
  assert text_sampler.clean('\u1780\u200b\u4e2d A\u00e9') == '\u1780 A'


def test_clean_drops_marks_that_would_show_a_dotted_circle():
  # A vowel after a bracket, and a second vowel in one cluster.
  assert text_sampler.clean('\u1780(\u17bb)') == '\u1780()'
  assert text_sampler.clean('\u1789\u17b6\u17bb') == '\u1789\u17b6'
  # Valid clusters are kept whole.
  text = '\u1780\u17d2\u179a\u17bb\u1798 \u1780\u17c6'
  assert text_sampler.clean(text) == text


def test_truncate_cuts_at_a_cluster_boundary():
  text = '\u1780\u17d2\u179a\u17bb\u1798 \u1780'  # KA COENG RO U MO, KA.
  assert text_sampler.truncate(text, 3) == ''
  assert text_sampler.truncate(text, 4) == '\u1780\u17d2\u179a\u17bb'
  assert text_sampler.truncate(text, 6) == text[:5]
  assert text_sampler.truncate(text, 7) == text


def test_corpus_lines_follow_the_hash_split():
  lines = {split: set(text_sampler.corpus_lines(split))
           for split in text_sampler.SPLITS}
  assert not lines['train'] & lines['validation']
  assert not lines['train'] & lines['test']
  corpus = khmer_corpus.read_corpus(khmer_corpus.DEFAULT_CORPUS)
  for split, split_lines in lines.items():
    # The split is that of the normalised corpus line, before `clean`.
    assert split_lines == {text_sampler.clean(line) for line in corpus
                           if khmer_corpus.line_split(line) == split}
  assert len(lines['validation']) > 200


def test_validation_and_test_text_never_appears_in_train():
  train_lines = text_sampler.corpus_lines('train')
  # Held-out lines long enough not to occur inside a train line by chance.
  held = [line for split in ('validation', 'test')
          for line in text_sampler.corpus_lines(split) if len(line) >= 12
          and not any(line in t for t in train_lines)]
  assert len(held) > 300
  rng = np.random.default_rng(3)
  for _ in range(400):
    text = text_sampler.sample_text(rng, 'train')
    assert not any(line in text for line in held), text


def test_latin_and_numbers_are_mixed_in():
  rng = np.random.default_rng(4)
  texts = [text_sampler.sample_text(rng, 'train') for _ in range(600)]
  latin = np.mean([bool(re.search('[A-Za-z]', t)) for t in texts])
  digits = np.mean([bool(re.search('[0-9\u17e0-\u17e9]', t)) for t in texts])
  khmer_digits = np.mean([bool(re.search('[\u17e0-\u17e9]', t))
                          for t in texts])
  khmer = np.mean([bool(re.search('[\u1780-\u17dd]', t)) for t in texts])
  assert 0.2 <= latin <= 0.5, latin
  assert 0.2 <= digits <= 0.6, digits
  assert khmer_digits >= 0.1, khmer_digits
  assert khmer >= 0.85, khmer


def test_builtin_words_without_a_word_list(monkeypatch):
  monkeypatch.setattr(text_sampler, 'WORDS_FILE', '/nonexistent/words')
  text_sampler.latin_words.cache_clear()
  try:
    words, names = text_sampler.latin_words()
    assert 'school' in words and 'Angkor' in names
    rng = np.random.default_rng(5)
    assert all(_is_label(text_sampler.latin_expression(rng))
               for _ in range(100))
  finally:
    text_sampler.latin_words.cache_clear()


def test_number_expressions_hold_digits():
  rng = np.random.default_rng(6)
  for _ in range(200):
    text = text_sampler.number_expression(rng)
    assert re.search('[0-9\u17e0-\u17e9]', text), text
    assert _is_label(text_sampler.clean(text))


def test_unknown_split_and_kind():
  rng = np.random.default_rng(0)
  with pytest.raises(ValueError, match='split'):
    text_sampler.sample_text(rng, 'dev')
  with pytest.raises(ValueError, match='kind'):
    text_sampler.sample_text(rng, 'train', kind='poem')
