"""Tesseract 5 with its `khm` model, the reference every reading benchmark
times in the same run as ocr_jax (Debian: tesseract-ocr, tesseract-ocr-khm).
"""

import shutil
import subprocess


def missing(binary: str = 'tesseract') -> str | None:
  """None when `binary` can read Khmer, else why not (for the report)."""
  if shutil.which(binary) is None:
    return f'{binary} is not installed (Debian: tesseract-ocr)'
  langs = subprocess.run([binary, '--list-langs'], capture_output=True,
                         text=True, check=False).stdout.split()
  if 'khm' not in langs:
    return 'Tesseract has no khm data (Debian: tesseract-ocr-khm)'
  return None


def read(path: str, *, psm: int = 7, binary: str = 'tesseract') -> str:
  """The text of an image file: one line (psm 7) or a page (psm 3).

  Runs of whitespace become one space for a line; a page keeps its lines.
  """
  out = subprocess.run([binary, path, 'stdout', '-l', 'khm', '--psm',
                        str(psm)], capture_output=True, text=True,
                       check=False)
  if psm == 7:
    return ' '.join(out.stdout.split())
  return out.stdout
