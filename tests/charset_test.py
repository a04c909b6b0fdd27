"""Tests of ocr_jax.text.charset: fixed ids, round trips, unknown characters."""

import pytest

from ocr_jax.text import charset
from ocr_jax.text import khmer_normalizer


def test_special_ids_are_fixed():
  assert (charset.PAD_ID, charset.EOS_ID, charset.BOS_ID, charset.BLANK_ID,
          charset.UNK_ID) == (0, 1, 2, 3, 4)


def test_digit_ids():
  vocab = charset.get_vocabulary('digits')
  assert vocab.size == 15
  assert vocab.encode('\u17e0\u17e9') == [5, 14]


def test_digits_round_trip():
  vocab = charset.get_vocabulary('digits')
  text = charset.KHMER_DIGITS[::-1]
  assert vocab.decode(vocab.encode(text)) == text


def test_khmer_round_trip_over_corpus(corpus_lines):
  vocab = charset.get_vocabulary('khmer')
  for line in corpus_lines:
    text = khmer_normalizer.normalize_khmer(line)
    ids = vocab.encode(text, sample=line)
    assert all(charset.NUM_SPECIAL <= i < vocab.size for i in ids)
    assert vocab.decode(ids) == text


def test_decode_stops_at_eos_and_skips_specials():
  vocab = charset.get_vocabulary('digits')
  ids = [charset.BOS_ID, 5, charset.BLANK_ID, 6, charset.EOS_ID, 7]
  assert vocab.decode(ids) == '\u17e0\u17e1'
  assert vocab.decode(ids, stop_at_eos=False) == '\u17e0\u17e1\u17e2'


def test_unknown_character_error_names_char_code_point_and_sample():
  vocab = charset.get_vocabulary('digits')
  with pytest.raises(charset.OutOfVocabularyError) as error:
    vocab.encode('\u17e1\u1780', sample='train/42')
  message = str(error.value)
  assert '\u1780' in message
  assert 'U+1780' in message
  assert 'train/42' in message
  assert "'digits'" in message


def test_unknown_character_to_unk():
  vocab = charset.get_vocabulary('digits')
  assert vocab.encode('\u17e1x', unknown='unk') == [6, charset.UNK_ID]
  assert vocab.decode([6, charset.UNK_ID]) == '\u17e1\ufffd'


def test_pad_labels():
  assert charset.pad_labels([7, 8], 4) == [7, 8, charset.EOS_ID, 0, 0]
  with pytest.raises(ValueError, match='exceeds'):
    charset.pad_labels([5] * 5, 4)


def test_unknown_vocabulary_lists_valid_names():
  with pytest.raises(ValueError, match='digits'):
    charset.get_vocabulary('latin')


def test_latin_letters_are_appended_keeping_every_older_id():
  vocab = charset.get_vocabulary('khmer')
  assert vocab.size == 235
  # Ids of the 183-id vocabulary before the Latin letters, unchanged.
  assert vocab.encode('\u1780\u17e0 0~\u00a3') == [5, 97, 117, 118, 159, 182]
  assert vocab.encode('AZaz') == [183, 208, 209, 234]
  assert vocab.decode([183, 209]) == 'Aa'
