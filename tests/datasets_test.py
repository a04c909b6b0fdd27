"""Tests of the TFDS builders khmer_digits, khmer_text and khmer_pages, and
syllables."""

import glob
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from ocr_jax.text import charset
from ocr_jax.text import khmer_normalizer
from ocr_jax.data import khmer_corpus
from ocr_jax.data import render
from ocr_jax.pages import layout
from ocr_jax.data.datasets import khmer_digits
from ocr_jax.data.datasets import khmer_pages
from ocr_jax.data.datasets import khmer_text
from ocr_jax.data.datasets import syllables


def _examples(name, data_dir, split):
  builder = tfds.builder(name, data_dir=data_dir)
  return list(tfds.as_numpy(builder.as_dataset(split=split,
                                               shuffle_files=False)))


def _record_bytes(data_dir, dataset='khmer_digits'):
  files = sorted(glob.glob(os.path.join(data_dir, dataset, '*',
                                        '*.tfrecord*')))
  assert len(files) == 3
  contents = {}
  for path in files:
    with open(path, 'rb') as f:
      contents[os.path.basename(path)] = f.read()
  return contents


def test_digits_build_is_byte_identical(khmer_digits_dir, tmp_path,
                                        build_dataset, digits_split_sizes):
  build_dataset('khmer_digits', tmp_path, split_sizes=digits_split_sizes)
  assert _record_bytes(str(tmp_path)) == _record_bytes(khmer_digits_dir)


def test_digits_seed_changes_data(khmer_digits_dir, tmp_path, build_dataset,
                                 digits_split_sizes):
  build_dataset('khmer_digits', tmp_path, seed=1,
                split_sizes=digits_split_sizes)
  assert _record_bytes(str(tmp_path)) != _record_bytes(khmer_digits_dir)


def test_digits_examples(khmer_digits_dir, digits_split_sizes):
  builder = tfds.builder('khmer_digits', data_dir=khmer_digits_dir)
  for split, size in digits_split_sizes.items():
    assert builder.info.splits[split].num_examples == size
  examples = _examples('khmer_digits', khmer_digits_dir, 'train')
  lengths = set()
  for example in examples:
    text = example['text'].decode()
    assert example['image'].shape == (64, 128, 3)
    assert example['image'].dtype == np.uint8
    assert 1 <= len(text) <= 8 and len(text) == example['length']
    assert set(text) <= set(charset.KHMER_DIGITS)
    assert example['font'].decode() in render.KHMEROS_FONTS
    lengths.add(len(text))
  assert lengths == set(range(1, 9))


def test_digits_example_is_a_function_of_seed_split_index():
  fonts = render.khmeros_fonts()
  first = khmer_digits.make_example(0, 'test', 5, fonts)
  again = khmer_digits.make_example(0, 'test', 5, fonts)
  np.testing.assert_array_equal(first['image'], again['image'])
  assert first['text'] == again['text']
  other = khmer_digits.make_example(0, 'validation', 5, fonts)
  assert not np.array_equal(first['image'], other['image'])


def test_text_stage1_uses_top_30_characters(khmer_text_dir, corpus_path):
  ranking = khmer_text.char_ranking(khmer_corpus.read_corpus(corpus_path))
  for split in ('train', 'test'):
    for example in _examples('khmer_text/stage1', khmer_text_dir, split):
      text = example['text'].decode()
      assert set(text) <= set(ranking[:30]), text
      assert 1 <= len(text) <= 5 and example['length'] == len(text)
      assert khmer_normalizer.normalize_khmer(text) == text
      assert example['image'].shape == (64, example['width'], 3)


def test_text_lines_split_by_line_hash(khmer_text_dir, text_split_sizes):
  texts = {}
  for split in ('train', 'validation', 'test'):
    examples = _examples('khmer_text/lines', khmer_text_dir, split)
    texts[split] = {e['text'].decode() for e in examples}
    assert len(texts[split]) == text_split_sizes[split]
    assert all(khmer_corpus.line_split(t) == split for t in texts[split])
  assert not texts['test'] & texts['train']
  assert not texts['validation'] & texts['train']


def test_text_metadata_records_corpus(khmer_text_dir, corpus_path):
  builder = tfds.builder('khmer_text/lines', data_dir=khmer_text_dir)
  assert builder.info.metadata['corpus_sha1'] == khmer_corpus.corpus_sha1(
      corpus_path)


def test_default_corpus_builds_the_same_data(khmer_text_dir, tmp_path,
                                             build_dataset,
                                             text_split_sizes):
  """No corpus_path gives the records that the explicit path gives."""
  builder = build_dataset('khmer_text/stage1', tmp_path,
                          split_sizes=text_split_sizes)
  assert builder.corpus_path == khmer_corpus.DEFAULT_CORPUS
  assert builder.info.metadata['corpus_sha1'] == khmer_corpus.corpus_sha1(None)
  stage1 = os.path.join('khmer_text', 'stage1')
  assert (_record_bytes(str(tmp_path), stage1) ==
          _record_bytes(khmer_text_dir, stage1))


def test_generated_text_without_corpus(tmp_path, build_dataset):
  builder = build_dataset('khmer_text/stage2', tmp_path,
                          corpus_path=khmer_text.GENERATOR,
                          split_sizes={'train': 24, 'validation': 4,
                                       'test': 4})
  assert builder.corpus_path == khmer_text.GENERATOR == ''
  assert builder.info.metadata['corpus_sha1'] == ''
  allowed = set(syllables.DEFAULT_CHAR_RANKING[:60])
  for example in _examples('khmer_text/stage2', str(tmp_path), 'train'):
    text = example['text'].decode()
    assert set(text) <= allowed and 1 <= len(text) <= 10
    assert khmer_normalizer.normalize_khmer(text) == text


def test_syllables_are_canonical_and_sized():
  rng = np.random.default_rng(0)
  for _ in range(300):
    text = syllables.generate_text(rng, 3, 20)
    assert 3 <= len(text) <= 20
    assert khmer_normalizer.normalize_khmer(text) == text
    assert not text.startswith(' ') and not text.endswith(' ')
  allowed = set(syllables.DEFAULT_CHAR_RANKING[:30])
  for _ in range(100):
    assert set(syllables.generate_text(rng, 1, 5, allowed=allowed)) <= allowed


def test_text_builder_skips_fonts_without_glyphs(monkeypatch, tmp_path):
  if not render.font_covers(
      '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', '12'):
    pytest.skip('DejaVu Sans not installed')
  dejavu = render.Font('DejaVu Sans',
                       '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf')
  khmer = render.khmeros_fonts()[0]
  monkeypatch.setattr(render, 'khmeros_fonts', lambda: [dejavu, khmer])
  builder = tfds.builder('khmer_text/stage1', data_dir=str(tmp_path))
  # pylint: disable-next=protected-access
  examples = dict(builder._generate_examples(
      'train', ['\u1780\u17b6'] * 12 + ['12'] * 12))
  fonts = [examples[i]['font'] for i in sorted(examples)]
  assert set(fonts[:12]) == {khmer.family}
  assert set(fonts[12:]) == {khmer.family, dejavu.family}


def test_pages_build_is_deterministic_with_boxes_on_the_page(tmp_path,
                                                           build_dataset):
  # Two pages at 40 dpi (331 x 468): train 0 has one column, validation 0
  # two; both are skewed (degrade=True), so boxes are rotated ones.
  sizes = {'train': 1, 'validation': 1, 'test': 0}
  builds = [build_dataset('khmer_pages', tmp_path / name, dpi=40,
                          split_sizes=sizes) for name in ('a', 'b')]
  for builder in builds:
    assert set(builder.info.splits) == {'train', 'validation'}
  examples = {split: [list(tfds.as_numpy(b.as_dataset(split=split)))
                      for b in builds] for split in ('train', 'validation')}
  for first, second in examples.values():
    assert len(first) == len(second) == 1
    assert first[0].keys() == second[0].keys()
    for key in first[0]:
      np.testing.assert_array_equal(first[0][key], second[0][key])
  # The records are the pages `make_page` renders.
  page = khmer_pages.make_page(0, 0, 'validation', dpi=40)
  record = examples['validation'][0][0]
  np.testing.assert_array_equal(record['image'], page.image)
  np.testing.assert_array_equal(record['boxes'], page.boxes)
  assert [t.decode() for t in record['texts']] == page.texts
  columns = []
  for (example,), _ in examples.values():
    height, width = example['image'].shape[:2]
    assert (height, width) == (468, 331)
    assert example['angle'] != 0.0
    columns.append(int(example['columns']))
    texts, boxes = example['texts'], example['boxes']
    straight = example['straight_boxes']
    assert len(texts) == len(boxes) == len(straight) > 3
    assert all(texts)
    for b in (boxes, straight):
      assert (b[:, :2] >= 0).all() and (b[:, 2] <= width).all()
      assert (b[:, 3] <= height).all()
      assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
    # Stored in reading order (that of the page reader).
    assert layout.reading_order(straight) == list(range(len(straight)))
  assert sorted(columns) == [1, 2]
