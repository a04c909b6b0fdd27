"""Khmer vocabularies: text <-> integer ids with fixed, documented ids.

Every vocabulary shares the same special tokens at the same ids, so models,
losses and decoders never need to know which vocabulary they were built for:

  id 0  PAD    padding after the end of a label
  id 1  EOS    end of sequence (attention decoder target and stop token)
  id 2  BOS    start of sequence (first attention decoder input)
  id 3  BLANK  CTC blank
  id 4  UNK    optional stand-in for an out-of-vocabulary character
  id 5+ the vocabulary's characters, in the order of `Vocabulary.chars`

Vocabularies:
  digits: the 10 Khmer digits U+17E0..U+17E9 (ids 5..14, size 15).
  khmer:  the Khmer block in use (consonants, independent vowels, dependent
          vowels, signs, COENG, punctuation, currency), Khmer digits, lek
          attak numerals, space, ASCII digits and printable ASCII punctuation,
          and the other punctuation and symbols found in the Tesseract-derived
          Khmer line corpus, then the Latin letters A-Z and a-z (ids 183-234,
          size 235). The Latin letters were appended after every older
          character, so each id of the earlier 183-id vocabulary is
          unchanged and its models still decode correctly. Invisible
          characters (U+17B4, U+17B5, zero-width joiners) are left out: the
          normaliser removes them.
"""

import dataclasses
import string
from typing import Iterable, Sequence

PAD_ID = 0
EOS_ID = 1
BOS_ID = 2
BLANK_ID = 3
UNK_ID = 4
NUM_SPECIAL = 5
SPECIAL_TOKENS = ('<PAD>', '<EOS>', '<BOS>', '<BLANK>', '<UNK>')

KHMER_DIGITS = ''.join(chr(c) for c in range(0x17E0, 0x17EA))
_KHMER_LETTERS_AND_SIGNS = ''.join(
    chr(c) for c in range(0x1780, 0x17DE) if c not in (0x17B4, 0x17B5))
_KHMER_LEK_ATTAK = ''.join(chr(c) for c in range(0x17F0, 0x17FA))
_OTHER_PUNCTUATION = (
    '\u00ab\u00bb\u201c\u201d\u2018\u2019\u201e\u2039\u203a\u2026\u2044'
    '\u00f7\u00d7\u00b1\u00b0\u00a9\u00a6\u00ac\u00b2\u02dc'
    '\u20ac\u00a5\u00a3')
# Appended last (never inserted) so that every older id stays the same.
LATIN_LETTERS = string.ascii_uppercase + string.ascii_lowercase
KHMER_CHARS = (_KHMER_LETTERS_AND_SIGNS + KHMER_DIGITS + _KHMER_LEK_ATTAK +
               ' ' + string.digits + string.punctuation + _OTHER_PUNCTUATION +
               LATIN_LETTERS)


class OutOfVocabularyError(ValueError):
  """A label holds a character the vocabulary cannot encode."""


@dataclasses.dataclass(frozen=True)
class Vocabulary:
  """A fixed mapping between characters and ids (see the module docstring)."""
  name: str
  chars: str

  def __post_init__(self):
    if len(set(self.chars)) != len(self.chars):
      raise ValueError(f'vocabulary {self.name!r} repeats a character')
    object.__setattr__(self, '_ids',
                       {c: i + NUM_SPECIAL for i, c in enumerate(self.chars)})

  @property
  def size(self) -> int:
    """Number of ids, special tokens included."""
    return NUM_SPECIAL + len(self.chars)

  def __contains__(self, char: str) -> bool:
    return char in self._ids

  def encode(self, text: str, *, sample: str | None = None,
             unknown: str = 'error') -> list[int]:
    """Maps text to ids (no EOS/BOS added).

    Args:
      text: the label.
      sample: a name for the example (file, line number) used in errors.
      unknown: 'error' raises OutOfVocabularyError on the first character
        outside the vocabulary; 'unk' maps it to UNK_ID.
    """
    if unknown not in ('error', 'unk'):
      raise ValueError(f"unknown must be 'error' or 'unk', got {unknown!r}")
    ids = []
    for position, char in enumerate(text):
      idx = self._ids.get(char)
      if idx is None:
        if unknown == 'error':
          where = f' in sample {sample}' if sample is not None else ''
          raise OutOfVocabularyError(
              f'character {char!r} (U+{ord(char):04X}) at position {position}'
              f' of label {text!r}{where} is not in the {self.name!r} '
              "vocabulary (pass unknown='unk' to map it to <UNK>)")
        idx = UNK_ID
      ids.append(idx)
    return ids

  def decode(self, ids: Iterable[int], *, stop_at_eos: bool = True) -> str:
    """Maps ids to text, skipping PAD/BOS/BLANK; UNK becomes U+FFFD."""
    chars = []
    for idx in ids:
      idx = int(idx)
      if idx == EOS_ID:
        if stop_at_eos:
          break
        continue
      if idx in (PAD_ID, BOS_ID, BLANK_ID):
        continue
      if idx == UNK_ID:
        chars.append('\ufffd')
      elif NUM_SPECIAL <= idx < self.size:
        chars.append(self.chars[idx - NUM_SPECIAL])
      else:
        raise ValueError(f'id {idx} is outside vocabulary {self.name!r} '
                         f'of size {self.size}')
    return ''.join(chars)

  def missing(self, text: str) -> list[str]:
    """The distinct characters of `text` outside the vocabulary, in order."""
    return list(dict.fromkeys(c for c in text if c not in self._ids))


VOCABULARIES = {
    'digits': Vocabulary('digits', KHMER_DIGITS),
    'khmer': Vocabulary('khmer', KHMER_CHARS),
}


def get_vocabulary(name: str) -> Vocabulary:
  """Returns the named vocabulary; an unknown name lists the valid ones."""
  try:
    return VOCABULARIES[name]
  except KeyError:
    raise ValueError(f'unknown vocabulary {name!r}; valid names: '
                     f'{sorted(VOCABULARIES)}') from None


def pad_labels(ids: Sequence[int], max_length: int) -> list[int]:
  """Appends EOS then PAD up to max_length + 1 entries."""
  if len(ids) > max_length:
    raise ValueError(f'label of {len(ids)} ids exceeds max_length '
                     f'{max_length}')
  return list(ids) + [EOS_ID] + [PAD_ID] * (max_length - len(ids))
