"""Khmer text normalisation: one canonical code point sequence per spelling.

The same Khmer syllable can be typed in several orders that HarfBuzz shapes
to the same picture (a subscript typed after the vowel, a register shifter
after the subscript, a split vowel typed as its two halves, ...). An OCR
model only sees the picture, so every label goes through `normalize_khmer`
and two spellings that render identically get one label.

Steps, in order:
  1. Unicode NFC.
  2. Remove invisible characters: zero-width space/non-joiner/joiner, BOM,
     and the inherent vowels U+17B4/U+17B5.
  3. Collapse whitespace runs to one space and strip the ends.
  4. Replace deprecated letters by their visual equivalents:
     U+17A3 -> U+17A2, U+17A4 -> U+17A2 U+17B6.
  5. Reorder each syllable cluster into the canonical (Unicode chapter 16.4)
     order:
       base (consonant or independent vowel)
       register shifters U+17C9/U+17CA, then robat U+17CC
       subscripts COENG+consonant (COENG+RO last among them)
       dependent vowels U+17B6..U+17C5 (by code point)
       other signs U+17C6..U+17D1 and U+17D3, U+17DD (above marks before
       the spacing REAHMUK U+17C7 and YUUKALEAPINTU U+17C8)
     A COENG binds to the next consonant of its cluster even when a vowel or
     sign was typed between them (`ម្េត` -> `ម្តេ`). A COENG with no
     consonant to bind to is dropped (it has no visible form).
  6. Remove exact duplicate marks in a cluster and compose split vowels that
     every KhmerOS font draws identically: U+17C1+U+17B8 -> U+17BE,
     U+17C1+U+17B6 -> U+17C4.
  7. Subscript DA (U+17D2 U+178A) becomes subscript TA (U+17D2 U+178F):
     the two glyphs are identical in all KhmerOS fonts, so the choice cannot
     be read off an image.

The result is idempotent: normalize_khmer(normalize_khmer(x)) equals
normalize_khmer(x).
"""

import dataclasses
import re
import unicodedata

COENG = '\u17d2'
RO = '\u179a'
DA = '\u178a'
TA = '\u178f'
ROBAT = '\u17cc'

_INVISIBLE = re.compile('[\u200b\u200c\u200d\ufeff\u17b4\u17b5]')
_WHITESPACE = re.compile(r'\s+')
_DEPRECATED = {'\u17a3': '\u17a2', '\u17a4': '\u17a2\u17b6'}
# Split vowels drawn identically to their precomposed form: pairs of
# (first, second) -> composed, applied after the vowels are sorted.
_VOWEL_COMPOSITIONS = {
    frozenset('\u17c1\u17b8'): '\u17be',
    frozenset('\u17c1\u17b6'): '\u17c4',
}
# Above/below signs first, then the spacing signs drawn after the cluster.
_SIGN_ORDER = ('\u17c6\u17cb\u17cd\u17ce\u17cf\u17d0\u17d1\u17d3\u17dd'
               '\u17c7\u17c8')
_SIGN_RANK = {c: i for i, c in enumerate(_SIGN_ORDER)}

BASE, SHIFTER, COENG_CAT, VOWEL, SIGN, OTHER = range(6)


def char_category(char: str) -> int:
  """Returns the cluster role of a character (BASE, SHIFTER, ...)."""
  code = ord(char)
  if 0x1780 <= code <= 0x17B3 or code == 0x17DC:
    return BASE
  if char in '\u17c9\u17ca\u17cc':
    return SHIFTER
  if char == COENG:
    return COENG_CAT
  if 0x17B6 <= code <= 0x17C5:
    return VOWEL
  if char in _SIGN_RANK:
    return SIGN
  return OTHER


@dataclasses.dataclass
class _Cluster:
  """The parts of one syllable cluster while it is being read."""
  base: str = ''
  shifters: list[str] = dataclasses.field(default_factory=list)
  subscripts: list[str] = dataclasses.field(default_factory=list)
  vowels: list[str] = dataclasses.field(default_factory=list)
  signs: list[str] = dataclasses.field(default_factory=list)
  pending_coeng: bool = False

  def render(self) -> str:
    """The cluster in canonical order, duplicates removed."""
    shifters = sorted(set(self.shifters))
    # Stable sort: the order of non-RO subscripts is visible (stacking).
    subscripts = sorted(self.subscripts, key=lambda c: c == RO)
    vowels = _compose_vowels(sorted(set(self.vowels)))
    signs = sorted(set(self.signs), key=_SIGN_RANK.__getitem__)
    parts = [self.base, *shifters]
    parts += [COENG + (TA if c == DA else c) for c in subscripts]
    return ''.join(parts + vowels + signs)


def _compose_vowels(vowels: list[str]) -> list[str]:
  """Replaces split-vowel pairs by the precomposed vowel."""
  for pair, composed in _VOWEL_COMPOSITIONS.items():
    if pair <= set(vowels):
      vowels = [v for v in vowels if v not in pair] + [composed]
  return sorted(set(vowels))


def _reorder_clusters(text: str) -> str:
  """Splits text into syllable clusters and writes each in canonical order."""
  out = []
  cluster = _Cluster()

  def flush():
    nonlocal cluster
    out.append(cluster.render())
    cluster = _Cluster()

  for char in text:
    category = char_category(char)
    if category == BASE and cluster.pending_coeng:
      cluster.subscripts.append(char)
      cluster.pending_coeng = False
    elif category == BASE:
      flush()
      cluster.base = char
    elif category == COENG_CAT:
      cluster.pending_coeng = True
    elif category == SHIFTER:
      cluster.shifters.append(char)
    elif category == VOWEL:
      cluster.vowels.append(char)
    elif category == SIGN:
      cluster.signs.append(char)
    else:
      flush()
      out.append(char)
  flush()
  return ''.join(out)


def normalize_khmer(text: str) -> str:
  """Returns the canonical form of a Khmer label (see the module docstring).

  Args:
    text: any Unicode string; non-Khmer characters pass through unchanged
      apart from NFC and whitespace collapsing.

  Returns:
    The normalised string.
  """
  text = unicodedata.normalize('NFC', text)
  text = _INVISIBLE.sub('', text)
  text = _WHITESPACE.sub(' ', text).strip()
  for old, new in _DEPRECATED.items():
    text = text.replace(old, new)
  return _reorder_clusters(text)


def split_clusters(text: str) -> list[str]:
  """Splits already normalised text into clusters (one base + its marks).

  Characters that are not part of a Khmer cluster (spaces, digits,
  punctuation) are clusters of their own.
  """
  clusters = []
  for char in text:
    category = char_category(char)
    joins = bool(clusters) and (
        category in (SHIFTER, VOWEL, SIGN, COENG_CAT) or
        (category == BASE and clusters[-1].endswith(COENG)))
    if joins:
      clusters[-1] += char
    else:
      clusters.append(char)
  return clusters
