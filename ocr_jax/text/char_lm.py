"""A character n-gram language model for fusing into CTC beam search.

  from ocr_jax.text import char_lm
  lm = char_lm.build(texts, order=5)          # or char_lm.load('lm.npz')
  lm.log_probs('ព្រះរាជាណាចក្រ')             # log P(. | history), [symbols]
  lm.score('ព្រះរាជាណាចក្រកម្ពុជា')           # log P(text, end of line)
  lm.save('lm.npz')

The model is interpolated Kneser-Ney over characters (one absolute discount
per order, D = n1 / (n1 + 2 n2) from the count-of-counts, clipped to
[0.05, 0.95]; continuation counts below the highest order), interpolated
down to a uniform distribution over its symbols. Its symbols are `chars`
(by default the 'khmer' vocabulary's characters) plus `END`, the end of a
line, so every context's distribution is normalised over exactly
`len(chars) + 1` symbols and no symbol has probability 0. A history is the
text read so far on the line, left-padded with `START` (never predicted).

Training text goes through `normalize_khmer`; characters outside `chars`
are dropped. Which text trains it is the caller's business: the corpus
builder (`ocr_jax.data.lm_corpus`, CLI `python -m ocr_jax.build_lm`) uses
the training split only.

File format (`save`/`load`): a compressed numpy .npz (no pickle) holding
`meta` (JSON as uint8: format, version, order, chars, discounts and the
caller's provenance, e.g. the corpus SHA-1 and split) and, per order k
(context length k - 1), `contexts<k>` (the contexts joined into one string,
sorted), `offsets<k>` int64, `symbols<k>` int16 and `counts<k>` int32 (CSR
rows: the symbols seen after each context and their (continuation) counts).
This module needs numpy only.
"""

import collections
from collections.abc import Iterable
import json
import os
from typing import Any

import numpy as np

from ocr_jax.text import charset
from ocr_jax.text import khmer_normalizer

FORMAT = 'ocr_jax.char_lm'
VERSION = 1
START = '\x02'  # Left padding of histories; never predicted.
END = '\x03'    # End of line; the last symbol.
DEFAULT_ORDER = 5
_MIN_DISCOUNT, _MAX_DISCOUNT = 0.05, 0.95
_CACHE_SIZE = 65536


class CharLM:
  """An interpolated Kneser-Ney character n-gram model (see module doc).

  Attributes:
    order: n (a symbol is predicted from the n - 1 before it).
    chars: the characters it predicts, besides END.
    symbols: chars + END; `log_probs` is indexed like it.
    discounts: [order] the discount of each order (index k - 1).
    meta: provenance (JSON-serialisable), saved with the model.
  """

  def __init__(self, order: int, chars: str, tables, discounts,
               meta: dict[str, Any] | None = None):
    """Wraps count tables (use `build` or `load`).

    Args:
      order: n.
      chars: the predicted characters (END excluded).
      tables: per order k = 1..n, (contexts list[str] of length k - 1,
        offsets [rows + 1], symbols [nnz], counts [nnz]).
      discounts: [order] floats.
      meta: provenance.
    """
    if order < 1:
      raise ValueError(f'order must be >= 1, got {order}')
    if START in chars or END in chars or len(set(chars)) != len(chars):
      raise ValueError('chars must be distinct and exclude START and END')
    self.order = order
    self.chars = chars
    self.symbols = chars + END
    self.discounts = np.asarray(discounts, np.float64)
    self.meta = dict(meta or {})
    self._index = {c: i for i, c in enumerate(self.symbols)}
    self._tables = []
    for contexts, offsets, symbols, counts in tables:
      offsets = np.asarray(offsets, np.int64)
      counts = np.asarray(counts, np.float64)
      symbols = np.asarray(symbols, np.int64)
      nonempty = offsets[1:] > offsets[:-1]
      totals = np.zeros(len(contexts))
      types = np.zeros(len(contexts))
      if len(counts):
        starts = offsets[:-1][nonempty]
        totals[nonempty] = np.add.reduceat(counts, starts)
        types[nonempty] = np.add.reduceat(np.ones_like(counts), starts)
      self._tables.append(({c: i for i, c in enumerate(contexts)}, offsets,
                           symbols, counts, totals, types))
    self._cache = collections.OrderedDict()

  @property
  def size(self) -> int:
    """Number of symbols (len(chars) + 1)."""
    return len(self.symbols)

  def index(self, symbol: str) -> int | None:
    """The position of a character (or END) in `symbols`, else None."""
    return self._index.get(symbol)

  def context(self, history: str) -> str:
    """The last order - 1 symbols of the START-padded history."""
    if self.order == 1:
      return ''
    return (START * (self.order - 1) + history)[-(self.order - 1):]

  def log_probs(self, history: str) -> np.ndarray:
    """log P(symbol | history) for every symbol, float64 [size].

    Characters of the history outside `chars` are kept in the context (it
    then backs off to the contexts after them).
    """
    context = self.context(history)
    cached = self._cache.get(context)
    if cached is not None:
      self._cache.move_to_end(context)
      return cached
    probs = np.full(self.size, 1.0 / self.size)
    for k in range(1, self.order + 1):
      index, offsets, symbols, counts, totals, types = self._tables[k - 1]
      row = index.get(context[len(context) - (k - 1):] if k > 1 else '')
      if row is None:
        break  # A longer context is unseen too: it has no counts.
      discount = self.discounts[k - 1]
      total = totals[row]
      lo, hi = offsets[row], offsets[row + 1]
      probs = probs * (discount * types[row] / total)
      probs[symbols[lo:hi]] += np.maximum(counts[lo:hi] - discount,
                                          0.0) / total
    log_probs = np.log(probs)
    log_probs.setflags(write=False)
    self._cache[context] = log_probs
    if len(self._cache) > _CACHE_SIZE:
      self._cache.popitem(last=False)
    return log_probs

  def log_prob(self, history: str, symbol: str) -> float:
    """log P(symbol | history); symbol is a character of `chars` or END."""
    i = self._index.get(symbol)
    if i is None:
      raise ValueError(f'{symbol!r} is not a symbol of this model')
    return float(self.log_probs(history)[i])

  def score(self, text: str, end: bool = True) -> float:
    """log P(text), plus log P(END | text) when `end` (natural log).

    Every character must be in `chars`.
    """
    total = sum(self.log_prob(text[:i], c) for i, c in enumerate(text))
    return total + (self.log_prob(text, END) if end else 0.0)

  def count(self, ngram: str) -> int:
    """The stored count of an n-gram (len 1..order; continuation counts
    below the highest order), 0 if unseen."""
    k = len(ngram)
    if not 1 <= k <= self.order:
      raise ValueError(f'an n-gram has 1..{self.order} symbols')
    index, offsets, symbols, counts, _, _ = self._tables[k - 1]
    row, i = index.get(ngram[:-1]), self._index.get(ngram[-1])
    if row is None or i is None:
      return 0
    lo, hi = offsets[row], offsets[row + 1]
    found = np.nonzero(symbols[lo:hi] == i)[0]
    return int(counts[lo + found[0]]) if len(found) else 0

  # --- Files ---

  def save(self, path: str) -> str:
    """Writes the model as a compressed .npz (atomically); returns path."""
    meta = {'format': FORMAT, 'version': VERSION, 'order': self.order,
            'chars': self.chars, 'discounts': self.discounts.tolist(),
            'meta': self.meta}
    entries = {'meta': np.frombuffer(json.dumps(
        meta, ensure_ascii=False).encode('utf-8'), np.uint8)}
    for k, (index, offsets, symbols, counts, _, _) in enumerate(
        self._tables, start=1):
      contexts = sorted(index, key=index.get)
      entries[f'contexts{k}'] = np.array(''.join(contexts))
      entries[f'offsets{k}'] = offsets
      entries[f'symbols{k}'] = symbols.astype(np.int16)
      entries[f'counts{k}'] = counts.astype(np.int32)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = path + '.tmp'
    with open(temporary, 'wb') as f:
      np.savez_compressed(f, **entries)
    os.replace(temporary, path)
    return path


def load(path: str) -> CharLM:
  """Reads a model written by `CharLM.save`."""
  with np.load(path, allow_pickle=False) as archive:
    if 'meta' not in archive.files:
      raise ValueError(f'{path} is not a character LM (no meta entry)')
    meta = json.loads(archive['meta'].tobytes().decode('utf-8'))
    if meta.get('format') != FORMAT or meta.get('version') != VERSION:
      raise ValueError(f'{path}: not a version {VERSION} {FORMAT} file')
    order = meta['order']
    tables = []
    for k in range(1, order + 1):
      joined = str(archive[f'contexts{k}'])
      offsets = archive[f'offsets{k}']
      width = k - 1
      rows = len(offsets) - 1
      contexts = ([joined[i * width:(i + 1) * width] for i in range(rows)]
                  if width else [''] * rows)
      tables.append((contexts, offsets, archive[f'symbols{k}'],
                     archive[f'counts{k}']))
  return CharLM(order, meta['chars'], tables, meta['discounts'],
                meta.get('meta'))


def prepare_text(text: str, chars: str) -> str:
  """Normalised text with the characters outside `chars` dropped."""
  allowed = set(chars)
  return ''.join(c for c in khmer_normalizer.normalize_khmer(text)
                 if c in allowed)


def build(texts: Iterable[str], order: int = DEFAULT_ORDER,
          chars: str | None = None,
          meta: dict[str, Any] | None = None) -> CharLM:
  """Counts a model from lines of text.

  Args:
    texts: the training lines (normalised here; characters outside `chars`
      dropped; empty lines skipped).
    order: n.
    chars: the predicted characters; None: the 'khmer' vocabulary's.
    meta: provenance to store with the model (JSON-serialisable).
  """
  if order < 1:
    raise ValueError(f'order must be >= 1, got {order}')
  chars = charset.get_vocabulary('khmer').chars if chars is None else chars
  index = {c: i for i, c in enumerate(chars + END)}
  # The highest order: raw counts of (context, symbol).
  top = collections.Counter()
  lines = 0
  for text in texts:
    text = prepare_text(text, chars)
    if not text:
      continue
    lines += 1
    padded = START * (order - 1) + text + END
    for i in range(order - 1, len(padded)):
      top[padded[i - order + 1:i + 1]] += 1
  if not top:
    raise ValueError('no training text')
  counts_by_order = {order: top}
  # Lower orders: continuation counts, the number of distinct symbols seen
  # before each (k)-gram in the (k + 1)-grams.
  for k in range(order - 1, 0, -1):
    lower = collections.Counter()
    for gram in counts_by_order[k + 1]:
      lower[gram[1:]] += 1
    counts_by_order[k] = lower
  tables, discounts = [], []
  for k in range(1, order + 1):
    counts = counts_by_order[k]
    n1 = sum(1 for c in counts.values() if c == 1)
    n2 = sum(1 for c in counts.values() if c == 2)
    discount = n1 / (n1 + 2 * n2) if n1 + n2 else 0.5
    discounts.append(min(max(discount, _MIN_DISCOUNT), _MAX_DISCOUNT))
    rows = collections.defaultdict(list)
    for gram, count in counts.items():
      rows[gram[:-1]].append((index[gram[-1]], count))
    contexts = sorted(rows)
    offsets, symbols, values = [0], [], []
    for context in contexts:
      for symbol, count in sorted(rows[context]):
        symbols.append(symbol)
        values.append(count)
      offsets.append(len(symbols))
    tables.append((contexts, offsets, symbols, values))
  meta = dict(meta or {})
  meta.setdefault('lines', lines)
  return CharLM(order, chars, tables, discounts, meta)
