"""Texts of synthetic Khmer lines, drawn from one split of the corpus.

The corpus lines are those of `khmer_corpus` (the shipped Tesseract langdata
corpus), normalised and assigned to train / validation / test by the same
SHA-1 hash split (`khmer_corpus.line_split`), so a validation or test line never
feeds training. Every Khmer part of a text comes from lines of the requested
split only; numbers and Latin words are generated.

Kinds of text (`KINDS`):
  line     a whole corpus line;
  span     a random run of whole clusters of a line;
  concat   lines (or spans) joined by spaces;
  numbers  Khmer text with numbers, dates, times, prices, percentages and
           phone numbers in Khmer or ASCII digits; sometimes numbers only;
  latin    Khmer text with English words, names, acronyms, units and codes
           mixed in; sometimes Latin words only;
  mixed    both of the above;
  syllables procedural syllables (`syllables.generate_text`): every
           consonant, subscript and vowel, also those rare in the corpus.

Latin words come from /usr/share/dict/words (the Debian `wamerican` package)
when present, else from a small built-in list.

Every text is passed through `normalize_khmer`, characters outside the
'khmer' vocabulary and marks a shaper would draw on a dotted circle are
removed (`clean`), and it is cut at a cluster boundary to the requested
length, so it is always a valid, normalised label that renders as it reads.
"""

from collections.abc import Sequence
import functools
import os
import re

import numpy as np

from ocr_jax.data import khmer_corpus
from ocr_jax.data.datasets import syllables
from ocr_jax.text import charset
from ocr_jax.text import khmer_normalizer

SPLITS = khmer_corpus.SPLITS
KINDS = ('line', 'span', 'concat', 'numbers', 'latin', 'mixed', 'syllables')
# Share of each kind in `sample_text` (same order as KINDS).
KIND_WEIGHTS = (0.23, 0.2, 0.1, 0.17, 0.17, 0.08, 0.05)
WORDS_FILE = '/usr/share/dict/words'
VOCABULARY = charset.get_vocabulary('khmer')

_BUILTIN_WORDS = (
    'about account address after again agency agreement airport also animal '
    'annual answer area army art bank basic because before best bill board '
    'book border bridge budget building business call camera capital card '
    'care center change child city class client climate code coffee college '
    'company computer contract control country court credit culture data '
    'date day design development digital director district doctor document '
    'economy education election energy engine english event family farm '
    'field file finance food form forest free fund future garden general '
    'global government group health history home hospital hotel house '
    'human income industry internet island job justice king land language '
    'law letter library light line local market media meeting member model '
    'money month museum music nation network news number office online '
    'order page paper park party people phone photo plan police policy '
    'power press price project province public quality radio rate report '
    'research river road room rural school science service share society '
    'software station street student study system table team technology '
    'temple test time total tourism trade training travel union university '
    'user value village water website week world year young').split()
_BUILTIN_NAMES = (
    'Sok Dara Sophea Vannak Chenda Bopha Rithy Sokha Pisey Kosal Phnom Penh '
    'Siem Reap Battambang Kampot Kandal Takeo Angkor Mekong Tonle Sap John '
    'Mary David Sarah Michael Anna Peter Linda James Emma Paris London Tokyo '
    'Bangkok Hanoi Singapore Google Facebook Microsoft Toyota Samsung Apple '
    'Canon Honda Visa Mastercard').split()
_ACRONYMS = (
    'ASEAN UN UNESCO UNICEF WHO NGO USD KHR EU USA UK IMF ADB WTO GDP VAT '
    'ID PDF CEO IT ICT PC TV DVD SMS GPS ATM ABA ACLEDA COVID HIV AIDS API '
    'CPU USB HTTP HTML FAQ PhD MBA BA MSc ISO IBM BBC CNN RFA VOA AM PM OK '
    'Ltd Co Inc Dr Mr Mrs Ms No Tel Fax Email Wi-Fi e-mail').split()
_UNITS = (
    'kg g mg km m cm mm ml l L ha m² km² °C % GB MB KB TB GHz MHz kW kWh V '
    'W h min s km/h $ USD KHR').split()
_KHMER_MONTHS = ('មករា', 'កុម្ភៈ', 'មីនា', 'មេសា', 'ឧសភា', 'មិថុនា', 'កក្កដា',
                 'សីហា', 'កញ្ញា', 'តុលា', 'វិច្ឆិកា', 'ធ្នូ')
_ENGLISH_MONTHS = ('January', 'February', 'March', 'April', 'May', 'June',
                   'July', 'August', 'September', 'October', 'November',
                   'December', 'Jan', 'Feb', 'Mar', 'Apr', 'Jun', 'Jul', 'Aug',
                   'Sep', 'Oct', 'Nov', 'Dec')
_KHMER_CURRENCY_WORDS = ('រៀល', 'ដុល្លារ', 'ដុល្លារអាមេរិក', 'បាត')
_KHMER_NUMBER_PREFIXES = ('ថ្ងៃទី', 'លេខ', 'ទំព័រ', 'ម៉ោង', 'ឆ្នាំ', 'ចំនួន',
                          'តម្លៃ', 'ទូរស័ព្ទ', 'មាត្រា', 'ជំពូក')
_TO_KHMER_DIGITS = str.maketrans('0123456789', charset.KHMER_DIGITS)
_WORD_RE = re.compile(r'^[A-Za-z]{2,14}$')


def _split_id(split: str) -> int:
  if split not in SPLITS:
    raise ValueError(f'unknown split {split!r}; valid: {SPLITS}')
  return SPLITS.index(split)


@functools.lru_cache(maxsize=None)
def corpus_lines(split: str,
                 corpus_path: str = khmer_corpus.DEFAULT_CORPUS
                 ) -> tuple[str, ...]:
  """The normalised, in-vocabulary corpus lines of one split."""
  _split_id(split)
  lines = []
  for line in khmer_corpus.read_corpus(corpus_path):
    if khmer_corpus.line_split(line) != split:
      continue
    line = clean(line)
    if line:
      lines.append(line)
  if not lines:
    raise ValueError(f'the corpus {corpus_path} has no {split} line')
  return tuple(lines)


@functools.lru_cache(maxsize=None)
def _line_clusters(split: str) -> tuple[tuple[str, ...], ...]:
  return tuple(tuple(khmer_normalizer.split_clusters(line))
               for line in corpus_lines(split))


@functools.lru_cache(maxsize=None)
def latin_words() -> tuple[tuple[str, ...], tuple[str, ...]]:
  """(lower-case words, capitalised names) for mixing into Khmer."""
  words, names = [], []
  if os.path.exists(WORDS_FILE):
    with open(WORDS_FILE, encoding='utf-8', errors='ignore') as f:
      for word in f:
        word = word.strip()
        if _WORD_RE.match(word):
          (names if word[0].isupper() else words).append(word)
  if len(words) < 1000:
    words = list(_BUILTIN_WORDS)
  if len(names) < 100:
    names = list(_BUILTIN_NAMES)
  # Sorted so the choice never depends on the file's order.
  return tuple(sorted(set(words))), tuple(sorted(set(names)))


def drop_unshapable_marks(text: str) -> str:
  """Removes the marks a shaper would draw on a dotted circle.

  HarfBuzz draws a Khmer mark that has no base (after a space, a bracket, a
  digit) or a second dependent vowel in one cluster on a dotted circle
  U+25CC, which is not in the label. 85 corpus lines hold such typos;
  without their stray marks they render as their labels say. (Checked with
  HarfBuzz on the whole corpus: no dotted circle remains.)

  Args:
    text: normalised text.
  """
  out = []
  for cluster in khmer_normalizer.split_clusters(text):
    if khmer_normalizer.char_category(cluster[0]) != khmer_normalizer.BASE:
      out.append(cluster[0])  # Marks joined to a non-Khmer character.
      continue
    vowels = 0
    for char in cluster:
      if khmer_normalizer.char_category(char) == khmer_normalizer.VOWEL:
        vowels += 1
        if vowels > 1:
          continue
      out.append(char)
  return ''.join(out)


def clean(text: str) -> str:
  """Normalises text; drops characters outside the 'khmer' vocabulary and
  marks that would be drawn on a dotted circle."""
  text = khmer_normalizer.normalize_khmer(text)
  if VOCABULARY.missing(text):
    text = ''.join(c for c in text if c in VOCABULARY)
    text = khmer_normalizer.normalize_khmer(text)
  fixed = drop_unshapable_marks(text)
  return khmer_normalizer.normalize_khmer(fixed) if fixed != text else text


def truncate(text: str, max_length: int) -> str:
  """Cuts text to at most max_length characters at a cluster boundary."""
  if len(text) <= max_length:
    return text
  out = ''
  for cluster in khmer_normalizer.split_clusters(text):
    if len(out) + len(cluster) > max_length:
      break
    out += cluster
  return out.strip()


def _pick(rng: np.random.Generator, items: Sequence[str]) -> str:
  return items[int(rng.integers(len(items)))]


def _span(rng: np.random.Generator, split: str, length: int) -> str:
  """A run of whole clusters of a random line, about `length` long.

  The start is drawn among the clusters that leave `length` characters to
  the end of the line (the whole line when it is shorter).
  """
  clusters = _pick(rng, _line_clusters(split))
  remaining = np.cumsum([len(c) for c in clusters[::-1]])[::-1]
  starts = [i for i, c in enumerate(clusters)
            if c != ' ' and remaining[i] >= min(length, remaining[0])]
  start = starts[int(rng.integers(len(starts)))] if starts else 0
  text = ''
  for cluster in clusters[start:]:
    if len(text) + len(cluster) > length and text:
      break
    text += cluster
  return text.strip() or ''.join(clusters).strip()


def _khmer_text(rng: np.random.Generator, split: str, length: int) -> str:
  """Khmer corpus text of about `length` characters (lines or spans)."""
  parts = []
  total = 0
  while total < length:
    if rng.random() < 0.6:
      part = _pick(rng, corpus_lines(split))
    else:
      part = _span(rng, split, max(4, length - total))
    parts.append(part)
    total += len(part) + 1
  return ' '.join(parts)


def _digits(rng: np.random.Generator, count: int) -> str:
  first = str(int(rng.integers(1, 10)))
  return first + ''.join(str(d) for d in rng.integers(0, 10, count - 1))


def _group(rng: np.random.Generator, number: str) -> str:
  """Thousands separators (',' '.' ' ') or none."""
  if len(number) < 4 or rng.random() < 0.4:
    return number
  sep = _pick(rng, (',', ',', '.', ' '))
  head = len(number) % 3 or 3
  groups = [number[:head]] + [number[i:i + 3]
                              for i in range(head, len(number), 3)]
  return sep.join(groups)


def number_expression(rng: np.random.Generator) -> str:
  """A number, date, time, price, percentage, phone number or code."""
  kind = int(rng.integers(10))
  if kind == 0:  # Integer, maybe grouped.
    text = _group(rng, _digits(rng, int(rng.integers(1, 9))))
  elif kind == 1:  # Decimal.
    text = (_digits(rng, int(rng.integers(1, 5))) + _pick(rng, '.,') +
            ''.join(str(d) for d in rng.integers(0, 10,
                                                 int(rng.integers(1, 4)))))
  elif kind == 2:  # Date.
    d, m, y = (int(rng.integers(1, 32)), int(rng.integers(1, 13)),
               int(rng.integers(1950, 2040)))
    style = int(rng.integers(5))
    if style == 0:
      text = f'{d:02d}{_pick(rng, "/-.")}{m:02d}{_pick(rng, "/-.")}{y}'
    elif style == 1:
      text = f'{y}-{m:02d}-{d:02d}'
    elif style == 2:
      text = f'ថ្ងៃទី{d} ខែ{_KHMER_MONTHS[m - 1]} ឆ្នាំ{y}'
    elif style == 3:
      text = f'{d} {_pick(rng, _ENGLISH_MONTHS)} {y}'
    else:
      text = f'{d}/{m}/{y % 100:02d}'
  elif kind == 3:  # Time.
    text = f'{int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}'
    if rng.random() < 0.3:
      text += _pick(rng, (' AM', ' PM', 'h', ' ម៉ោង'))
  elif kind == 4:  # Price.
    amount = _group(rng, _digits(rng, int(rng.integers(1, 8))))
    if rng.random() < 0.3:
      amount += '.' + ''.join(str(d) for d in rng.integers(0, 10, 2))
    style = int(rng.integers(6))
    text = (('$' + amount, amount + '$', '៛' + amount, amount + '៛',
             amount + ' ' + _pick(rng, _KHMER_CURRENCY_WORDS),
             _pick(rng, ('USD ', 'KHR ', '€', '£', '¥')) + amount)[style])
  elif kind == 5:  # Percentage.
    text = _digits(rng, int(rng.integers(1, 3)))
    if rng.random() < 0.4:
      text += '.' + str(int(rng.integers(0, 10)))
    text += _pick(rng, ('%', '%', ' %', ' ភាគរយ'))
  elif kind == 6:  # Phone number.
    text = _pick(rng, ('0', '+855 ', '(+855) ', '855-')) + ' '.join(
        _digits(rng, n) for n in (2, 3, 3))
  elif kind == 7:  # Numbered item.
    text = _pick(rng, _KHMER_NUMBER_PREFIXES) + _pick(rng, ('', ' ')) + (
        _digits(rng, int(rng.integers(1, 5))))
  elif kind == 8:  # Range, fraction or ratio.
    a, b = _digits(rng, int(rng.integers(1, 4))), _digits(
        rng, int(rng.integers(1, 4)))
    text = a + _pick(rng, ('-', '/', ':', ' - ', '~', 'x', '×')) + b
  else:  # Ordinal list marker or a section number.
    text = '.'.join(str(int(rng.integers(1, 20)))
                    for _ in range(int(rng.integers(1, 4))))
    text += _pick(rng, ('.', ')', '', ' -'))
  if rng.random() < 0.5:
    text = text.translate(_TO_KHMER_DIGITS)
  return text


def latin_expression(rng: np.random.Generator) -> str:
  """An English word or phrase, a name, an acronym, a unit or a code."""
  words, names = latin_words()
  kind = int(rng.integers(9))
  if kind <= 2:  # Words.
    count = int(rng.integers(1, 4))
    text = ' '.join(_pick(rng, words) for _ in range(count))
    style = rng.random()
    if style < 0.2:
      text = text.capitalize()
    elif style < 0.3:
      text = text.upper()
    elif style < 0.4:
      text = text.title()
  elif kind <= 4:  # Names.
    text = ' '.join(_pick(rng, names if rng.random() < 0.7 else
                          _BUILTIN_NAMES)
                    for _ in range(int(rng.integers(1, 3))))
  elif kind == 5:  # Acronym.
    if rng.random() < 0.6:
      text = _pick(rng, _ACRONYMS)
    else:
      text = ''.join(chr(c) for c in rng.integers(
          ord('A'), ord('Z') + 1, int(rng.integers(2, 6))))
  elif kind == 6:  # Quantity with a unit.
    number = _digits(rng, int(rng.integers(1, 5)))
    text = number + _pick(rng, ('', ' ')) + _pick(rng, _UNITS)
  elif kind == 7:  # Codes: model numbers, references, web and mail.
    style = int(rng.integers(4))
    word = _pick(rng, words).lower()
    if style == 0:
      text = (_pick(rng, _ACRONYMS) + _pick(rng, ('-', ' ', '')) +
              _digits(rng, int(rng.integers(1, 5))))
    elif style == 1:
      text = f'www.{word}.{_pick(rng, ("com", "org", "gov.kh", "com.kh"))}'
    elif style == 2:
      domain = _pick(rng, ('gmail.com', 'yahoo.com', 'mail.gov.kh'))
      text = f'{word}{int(rng.integers(100))}@{domain}'
    else:
      text = (''.join(chr(c) for c in rng.integers(ord('A'), ord('Z') + 1, 2))
              + _digits(rng, int(rng.integers(3, 7))))
  else:  # Upper-case or mixed-case brand-like word.
    word = _pick(rng, words)
    text = word.upper() if rng.random() < 0.5 else word[0].upper() + word[1:]
  return text


def _insert(rng: np.random.Generator, text: str, tokens: Sequence[str]) -> str:
  """Inserts tokens into text at cluster boundaries, usually spaced."""
  clusters = khmer_normalizer.split_clusters(text)
  for token in tokens:
    at = int(rng.integers(len(clusters) + 1))
    spaced = rng.random() < 0.85
    clusters.insert(at, f' {token} ' if spaced else token)
  return ''.join(clusters)


def _mixed(rng: np.random.Generator, split: str, length: int,
           makers: Sequence) -> str:
  """Khmer text with generated tokens inserted (or only tokens, at times)."""
  if rng.random() < 0.12:
    tokens = []
    while sum(len(t) + 1 for t in tokens) < max(3, length // 2):
      tokens.append(_pick(rng, makers)(rng))
    return ' '.join(tokens)
  khmer = _khmer_text(rng, split, max(1, int(length * rng.uniform(0.4, 0.9))))
  khmer = truncate(khmer, max(4, length))
  tokens = [_pick(rng, makers)(rng)
            for _ in range(int(rng.integers(1, 4)))]
  return _insert(rng, khmer, tokens)


def sample_text(rng: np.random.Generator, split: str, *,
                min_length: int = 1, max_length: int = 70,
                kind: str | None = None) -> str:
  """A normalised, in-vocabulary text of the split.

  Args:
    rng: the source of randomness.
    split: 'train', 'validation' or 'test'.
    min_length: the shortest text wanted (texts of one line or span may be
      shorter when `kind` is 'line' or 'span').
    max_length: the longest text; longer draws are cut at a cluster
      boundary.
    kind: one of `KINDS`, or None to draw one with `KIND_WEIGHTS`.

  Returns:
    The text: non-empty, normalised, every character in the 'khmer'
    vocabulary.
  """
  _split_id(split)
  if kind is None:
    kind = KINDS[int(rng.choice(len(KINDS), p=KIND_WEIGHTS))]
  # The length aimed at: uniform up to max_length; a tenth are short (a
  # word, a number, a table cell: up to 8 characters).
  low = max(1, min_length)
  high = max(low, max_length)
  if low <= 8 and rng.random() < 0.1:
    target = int(rng.integers(low, min(high, 8) + 1))
  else:
    target = int(rng.integers(min(high, max(low, 8)), high + 1))
  if kind == 'line':
    text = _pick(rng, corpus_lines(split))
  elif kind == 'span':
    text = _span(rng, split, target)
  elif kind == 'concat':
    text = _khmer_text(rng, split, target)
  elif kind == 'numbers':
    text = _mixed(rng, split, target, (number_expression,))
  elif kind == 'latin':
    text = _mixed(rng, split, target, (latin_expression,))
  elif kind == 'mixed':
    text = _mixed(rng, split, target, (number_expression, latin_expression))
  elif kind == 'syllables':
    text = syllables.generate_text(rng, min(target, 4), target)
  else:
    raise ValueError(f'unknown kind {kind!r}; valid: {KINDS}')
  text = truncate(clean(text), max_length)
  # Too short for the request: extend with more corpus text of the split.
  while len(text) < min_length:
    more = _khmer_text(rng, split, min_length - len(text))
    text = truncate(clean(text + ' ' + more), max_length)
  if not text:
    text = truncate(_pick(rng, corpus_lines(split)), max_length)
  return text


def long_text(rng: np.random.Generator, split: str, min_length: int = 70,
              max_length: int = 140) -> str:
  """A long line (min_length-max_length characters) of mixed kinds."""
  kind = KINDS[int(rng.choice(len(KINDS), p=KIND_WEIGHTS))]
  if kind in ('line', 'span'):
    kind = 'concat'
  return sample_text(rng, split, min_length=min_length,
                     max_length=max_length, kind=kind)
