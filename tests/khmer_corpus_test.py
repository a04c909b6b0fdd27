"""Tests of ocr_jax.data.khmer_corpus: the shipped corpus and its split."""

import hashlib
import os
import subprocess
import sys

from ocr_jax.data import khmer_corpus


def test_shipped_corpus_is_the_default(corpus_path):
  assert os.path.samefile(khmer_corpus.DEFAULT_CORPUS, corpus_path)
  assert khmer_corpus.resolve_corpus(None) == khmer_corpus.DEFAULT_CORPUS
  assert khmer_corpus.resolve_corpus('') == ''
  # The Tesseract langdata subset, byte for byte (see corpus/README.md).
  shipped = 'ac4bc1ddfbcb5204327707ce3c0aa850430a73a7'
  assert khmer_corpus.corpus_sha1(None) == shipped
  assert khmer_corpus.corpus_sha1(corpus_path) == shipped
  assert khmer_corpus.corpus_sha1('') == ''
  readme = os.path.join(os.path.dirname(corpus_path), 'README.md')
  with open(readme, encoding='utf-8') as f:
    assert 'Apache' in f.read()


def test_read_corpus_normalises_and_drops_empty_and_repeated(tmp_path):
  path = tmp_path / 'corpus.txt'
  # U+17C1 U+17B8 (e + ii) is the composed vowel U+17BE once normalised.
  path.write_text('ab\n\n\u1780\u17c1\u17b8\nab\n\u1780\u17be\ncd\n',
                  encoding='utf-8')
  assert khmer_corpus.read_corpus(str(path)) == ['ab', '\u1780\u17be', 'cd']


def test_line_split_is_the_sha1_bucket():
  # SHA-1('a') = 86f7e437faa5a7fc...; 0x86f7e437faa5a7fc % 100 = 8 -> train.
  assert hashlib.sha1(b'a').hexdigest().startswith('86f7e437faa5a7fc')
  assert int('86f7e437faa5a7fc', 16) % 100 == 8
  assert khmer_corpus.line_split('a') == 'train'
  # Buckets 93 ('8', validation: 90-94) and 95 ('26', test: 95-99).
  for text, bucket, split in (('8', 93, 'validation'), ('26', 95, 'test')):
    digest = hashlib.sha1(text.encode()).digest()[:8]
    assert int.from_bytes(digest, 'big') % 100 == bucket
    assert khmer_corpus.line_split(text) == split


def test_shipped_corpus_splits_as_before_the_move():
  """The split of every shipped line is the one khmer_text gave.

  The numbers were computed with `khmer_text.line_split` and
  `khmer_text.read_corpus` before they moved here.
  """
  lines = khmer_corpus.read_corpus(khmer_corpus.DEFAULT_CORPUS)
  splits = [khmer_corpus.line_split(line) for line in lines]
  assert len(lines) == 5493
  assert {s: splits.count(s) for s in khmer_corpus.SPLITS} == {
      'train': 4984, 'validation': 261, 'test': 248}
  assert lines[0] == 'និងស្ទឹងត្រែងមានអាយុពី' and splits[0] == 'train'
  assert lines[10] == 'ព្រះពិស្នុរការ និង' and splits[10] == 'test'
  assert lines[31] == 'ដើម្បីសំដែងនូវឆន្ទះសញ្ជេតនា'
  assert splits[31] == 'validation'
  assert (splits[37], splits[45]) == ('test', 'validation')
  # Line by line: the first letters of all 5,493 splits, hashed.
  assert hashlib.sha1(''.join(s[0] for s in splits).encode()).hexdigest() == (
      '4efdd90f83db83da4d29c16f40a84df3158fd044')


def test_importing_it_registers_no_dataset():
  """A plain module: neither TFDS nor any builder comes with it."""
  code = ('import sys; import ocr_jax.data.khmer_corpus; '
          'print(sorted(m for m in sys.modules if m.startswith('
          '("tensorflow", "ocr_jax.data.datasets"))))')
  out = subprocess.run([sys.executable, '-c', code], check=True,
                       capture_output=True, text=True).stdout
  assert out.strip() == '[]'
