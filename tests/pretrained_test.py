"""The shipped khmer-digits model reads the README's example images."""

import csv
import io
import os

from ocr_jax import pretrained
from ocr_jax import predict

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'docs',
                        'examples', 'digits')


def _labels():
  with open(os.path.join(EXAMPLES, 'labels.tsv'), encoding='utf-8') as f:
    return dict(line.rstrip('\n').split('\t', 1) for line in f if line.strip())


def test_readme_predict_example_reads_every_image(capsys):
  # The README's command: python -m ocr_jax.predict --model=khmer-digits
  # docs/examples/digits
  status = predict.main(['--model=khmer-digits', EXAMPLES])
  rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out),
                             delimiter='\t'))
  assert status == 0
  expected = _labels()
  assert len(expected) == 8
  read = {os.path.basename(row['path']): row['text'] for row in rows
          if row['path'].endswith('.png')}
  assert read == expected
  assert all(0.0 < float(row['confidence']) <= 1.0 for row in rows)


def test_shipped_file_matches_its_checksum():
  path = pretrained.model_path('khmer-digits')  # raises on a mismatch
  assert os.path.getsize(path) < 20 * 1024 * 1024
