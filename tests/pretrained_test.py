"""The shipped models: checksums, format, and the README's commands."""

import csv
import hashlib
import io
import os
import subprocess
import sys

import pytest

from ocr_jax import pretrained
from ocr_jax.data import khmer_corpus
from ocr_jax.data.datasets import khmer_pages
from ocr_jax.pages import detector
from ocr_jax.pages import layout
from ocr_jax.reading import load
from ocr_jax.reading import ocrx
from ocr_jax.text import char_lm
from ocr_jax.training import metrics

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join('docs', 'examples', 'digits')
TEXT_EXAMPLES = os.path.join(REPO, 'docs', 'examples', 'text')


def _labels(folder=EXAMPLES):
  with open(os.path.join(REPO, folder, 'labels.tsv'),
            encoding='utf-8') as f:
    return dict(line.rstrip('\n').split('\t', 1) for line in f if line.strip())


def test_readme_predict_command_reads_every_image():
  # The README's command, run as a user runs it.
  out = subprocess.run(
      [sys.executable, '-m', 'ocr_jax.predict', '--model=khmer-digits',
       EXAMPLES], cwd=REPO, capture_output=True, text=True, check=False)
  assert out.returncode == 0, out.stderr
  rows = list(csv.DictReader(io.StringIO(out.stdout), delimiter='\t'))
  expected = _labels()
  assert len(expected) == 8
  read = {os.path.basename(row['path']): row['text'] for row in rows}
  assert read == expected
  assert all(0.0 < float(row['confidence']) <= 1.0 for row in rows)


@pytest.mark.parametrize('name', sorted(pretrained.MODELS))
def test_shipped_file_matches_its_checksum(name):
  model = pretrained.MODELS[name]
  path = pretrained.model_path(name)  # Also checks the digest.
  with open(path, 'rb') as f:
    digest = hashlib.sha256(f.read()).hexdigest()
  assert digest == model.sha256
  assert len(model.sha256) == 64
  assert os.path.getsize(path) < 20 * 1024 * 1024


@pytest.mark.parametrize('name', sorted(pretrained.MODELS))
def test_shipped_file_is_the_current_format_for_cpu_and_cuda(name):
  meta = ocrx.read_meta(pretrained.model_path(name))
  assert meta['version'] == ocrx.VERSION
  assert meta['platforms'] == ['cpu', 'cuda']
  assert meta['beam_sizes'] == [1, 5]
  assert meta['weight_format'] == 'int8'


def test_khmer_text_reads_the_example_lines():
  # Six test-split lines (text never trained on), two in held-out fonts;
  # a model that had not learnt to read would score a CER near 1.
  expected = _labels(TEXT_EXAMPLES)
  names = sorted(expected)
  reader = load.load_reader('khmer-text')
  results = reader.read([os.path.join(TEXT_EXAMPLES, n) for n in names])
  errors = sum(metrics.edit_distance(r.text, expected[n])
               for r, n in zip(results, names))
  assert errors / sum(len(expected[n]) for n in names) < 0.35


def test_shipped_lm_is_the_corpus_training_split_and_helps_read():
  path = pretrained.lm_path('khmer')
  assert os.path.isfile(path)
  assert pretrained.lm_path('my_lm.npz') == 'my_lm.npz'  # Files as given.
  lm = char_lm.load(path)
  assert lm.meta['split'] == 'train'
  assert lm.meta['corpus_sha1'] == khmer_corpus.corpus_sha1(None)
  # Fused into the beam, it reads the example lines at least as well as
  # the model alone (their text is from the test split, never in the LM).
  expected = _labels(TEXT_EXAMPLES)
  names = sorted(expected)
  paths = [os.path.join(TEXT_EXAMPLES, n) for n in names]
  reader = load.load_reader('khmer-text')
  def errors(results):
    return sum(metrics.edit_distance(r.text, expected[n])
               for r, n in zip(results, names))
  alone = errors(reader.read(paths, beam_size=5))
  fused = errors(reader.use_lm('khmer').read(paths, beam_size=5))
  assert fused <= alone


def test_shipped_detector_finds_the_lines_of_a_page():
  # A held-out synthetic page (test split; clean, so not skewed).
  page = khmer_pages.make_page(1, 0, 'test', dpi=150, degrade=False)
  found = [line.box for line in detector.load_detector().detect(page.image)]
  hits = layout.match_boxes(found, page.boxes.tolist())
  assert hits >= 0.8 * len(page.boxes), (hits, len(found), len(page.boxes))
  assert hits >= 0.8 * len(found)
