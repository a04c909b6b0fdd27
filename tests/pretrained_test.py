"""The shipped khmer-digits model: its checksum, and the README's command."""

import csv
import hashlib
import io
import os
import subprocess
import sys

from ocr_jax import pretrained
from ocr_jax.reading import ocrx

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join('docs', 'examples', 'digits')


def _labels():
  with open(os.path.join(REPO, EXAMPLES, 'labels.tsv'),
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


def test_shipped_file_matches_its_checksum():
  model = pretrained.MODELS['khmer-digits']
  path = pretrained.model_path('khmer-digits')  # Also checks the digest.
  with open(path, 'rb') as f:
    digest = hashlib.sha256(f.read()).hexdigest()
  assert digest == model.sha256
  assert len(model.sha256) == 64
  assert os.path.getsize(path) < 20 * 1024 * 1024


def test_shipped_file_is_the_current_format_for_cpu_and_cuda():
  meta = ocrx.read_meta(pretrained.model_path('khmer-digits'))
  assert meta['version'] == ocrx.VERSION
  assert meta['platforms'] == ['cpu', 'cuda']
  assert meta['beam_sizes'] == [1, 5]
  assert meta['weight_format'] == 'int8'
