"""Procedural Khmer text: syllables, words and phrases in canonical order.

Used by `khmer_text` with `corpus_path=''` (no corpus). A syllable is

  consonant [COENG consonant] [dependent vowel] [final sign]

which is already in the canonical order of `ocr_jax.text.khmer_normalizer` (one
subscript, one vowel, one sign), so `normalize_khmer` leaves it unchanged.
Every part can be restricted to an allowed character set (the curriculum
stages keep only the most frequent characters).
"""

from typing import Collection

import numpy as np

from ocr_jax.text import khmer_normalizer

CONSONANTS = ''.join(chr(c) for c in range(0x1780, 0x17A3))
# Subscript DA is drawn as subscript TA (the normaliser maps it) and LA
# (U+17A1) takes no subscript form.
SUBSCRIPTS = ''.join(c for c in CONSONANTS if c not in '\u178a\u17a1')
VOWELS = ''.join(chr(c) for c in range(0x17B6, 0x17C6))
FINAL_SIGNS = '\u17c6\u17c7\u17cb\u17cd'

# Khmer-block characters (and space) ranked by frequency in the normalised
# shipped corpus (khmer_corpus.DEFAULT_CORPUS, Tesseract's khm text); the
# curriculum's "top-N characters" with the generator (no corpus).
DEFAULT_CHAR_RANKING = (
    '\u17d2\u17b6\u1793\u179a \u179f\u1780\u178f\u1798\u1794\u1784'
    '\u179b\u17b7\u1791\u1799\u17bb\u17c6\u1785\u17b8\u1796\u17cb\u179c'
    '\u17c1\u17a2\u17c7\u17c4\u1787\u1782\u178a\u17bc\u17be\u17c2\u17a0'
    '\u1781\u178e\u17d4\u1789\u1790\u17c5\u17bd\u1792\u17c9\u1797\u1795'
    '\u17b9\u17ca\u17c3\u1786\u17c0\u17d0\u17ba\u17c8\u17cd\u17a1\u17cf'
    '\u1783\u17e1\u1788\u178c\u17e0\u17e2\u17d7\u178b\u17bf\u17cc\u17ac'
    '\u17a7\u17af\u17e9\u17b2\u17e4\u17e3\u17e5\u17a5\u17d6\u17e8\u17e7'
    '\u17ce\u17e6\u17b1\u178d\u17aa\u17ab\u17ae\u179d\u17ad\u17d5\u17b3'
    '\u179e\u17d1\u17da\u17db\u17a6\u17a9\u17b0\u17d8\u17d9')


def _pick(rng: np.random.Generator, chars: str) -> str:
  return chars[int(rng.integers(len(chars)))]


def _allowed(chars: str, allowed: Collection[str] | None) -> str:
  return chars if allowed is None else ''.join(c for c in chars
                                               if c in allowed)


def generate_syllable(rng: np.random.Generator, *,
                      allowed: Collection[str] | None = None,
                      max_chars: int = 6) -> str:
  """One syllable of at most `max_chars` code points (at least 1).

  Args:
    rng: source of randomness.
    allowed: characters that may be used (None: all Khmer).
    max_chars: the longest syllable wanted; optional parts are dropped to
      fit.

  Raises:
    ValueError: when `allowed` holds no consonant.
  """
  consonants = _allowed(CONSONANTS, allowed)
  if not consonants:
    raise ValueError('the allowed characters hold no Khmer consonant')
  subscripts = _allowed(SUBSCRIPTS, allowed)
  if allowed is not None and khmer_normalizer.COENG not in allowed:
    subscripts = ''
  vowels = _allowed(VOWELS, allowed)
  finals = _allowed(FINAL_SIGNS, allowed)
  parts = [_pick(rng, consonants)]
  # Draw every part so the stream of random numbers does not depend on
  # max_chars, then drop the optional parts that do not fit.
  sub = _pick(rng, subscripts) if subscripts and rng.random() < 0.3 else ''
  vowel = _pick(rng, vowels) if vowels and rng.random() < 0.7 else ''
  final = _pick(rng, finals) if finals and rng.random() < 0.15 else ''
  if sub and len(parts[0]) + 2 <= max_chars:
    parts.append(khmer_normalizer.COENG + sub)
  for extra in (vowel, final):
    if extra and len(''.join(parts)) + 1 <= max_chars:
      parts.append(extra)
  return ''.join(parts)


def generate_text(rng: np.random.Generator, min_length: int, max_length: int,
                  *, allowed: Collection[str] | None = None) -> str:
  """Words of syllables separated by spaces, min..max code points long.

  Spaces are used only when allowed. The result is already normalised.
  """
  if not 1 <= min_length <= max_length:
    raise ValueError(f'bad length range {min_length}..{max_length}')
  target = int(rng.integers(min_length, max_length + 1))
  space_ok = allowed is None or ' ' in allowed
  text = ''
  while len(text) < target:
    room = target - len(text)
    if text and space_ok and room >= 2 and rng.random() < 0.3:
      text += ' '
      room -= 1
    text += generate_syllable(rng, allowed=allowed, max_chars=room)
  return text
