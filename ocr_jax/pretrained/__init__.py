"""Registry of the models shipped with ocr_jax.

Each pretrained model is one `.ocrx` file (`ocr_jax.reading.ocrx`),
installed inside this package (pyproject package-data), and read with

  reader = ocr_jax.reading.reader.Reader.from_pretrained('khmer-digits')
  reader = ocr_jax.reading.load.load_reader('khmer-digits')
  python -m ocr_jax.predict --model=khmer-digits line.png

The environment variable OCR_JAX_PRETRAINED_DIR names a folder searched
before the package (to try a model without reinstalling).

To ship a model: export it (`python -m ocr_jax.export --model=RUN_FOLDER
--output=ocr_jax/pretrained/NAME.ocrx --weight_format=int8 --beam_sizes=1,5
--platforms=cpu,cuda`) and add a `PretrainedModel` entry to MODELS with its
file name, its SHA-256 (`sha256sum`), the training run it came from and its
test scores.

khmer-digits.ocrx was re-exported in format version 2 (one function per
platform, each traced for its own backend) from the version-1 file of
commit b594d4a, whose weights it keeps bit for bit (its int8 values and
scales are dequantized, then quantized again to the same values), by:

  git show b594d4a:ocr_jax/pretrained/khmer-digits.ocrx > /tmp/v1.ocrx
  python - <<'END'
  import json
  import numpy as np
  from ocr_jax import models
  from ocr_jax.reading import export, load, ocrx, reader
  from ocr_jax.training import run_folder
  old = np.load('/tmp/v1.ocrx')
  meta = json.loads(old['meta'].tobytes())
  config = run_folder.upgrade_config(meta['config'])
  config.pop('conv_impl')
  config['backend'] = 'auto'
  spec = reader.ReaderSpec.from_config(config, meta['kind'])
  model = models.create_model(spec.preset, vocab_size=spec.vocabulary.size,
                              dtype=config['dtype'], dropout_rate=0.0)
  export.export_reader(
      load.reader_from_model(model, spec, ocrx.arrays_to_weights(old)),
      'ocr_jax/pretrained/khmer-digits.ocrx', weight_format='int8',
      beam_sizes=(1, 5), platforms=('cpu', 'cuda'))
  END

On the 8 images of docs/examples/digits the new file's greedy and beam-5
readings (ids and confidences) equal the old file's. A rerun gives the same
weights but another SHA-256: np.savez stamps the time into the zip, and the
functions carry source locations.
"""

import dataclasses
import hashlib
import importlib.resources
import os
from typing import Any

ENV_DIR = 'OCR_JAX_PRETRAINED_DIR'


@dataclasses.dataclass(frozen=True)
class PretrainedModel:
  """One shipped model.

  Attributes:
    name: the name users pass (`--model=NAME`).
    filename: the exported file inside this package.
    description: what it reads and how it was trained.
    vocabulary: the vocabulary name ('digits' or 'khmer').
    sha256: hex digest of the file; checked on load when set.
    scores: test scores recorded at export time (cer, seq_accuracy, ...).
  """
  name: str
  filename: str
  description: str
  vocabulary: str
  sha256: str | None = None
  scores: dict[str, Any] = dataclasses.field(default_factory=dict)


MODELS: dict[str, PretrainedModel] = {
    'khmer-digits': PretrainedModel(
        name='khmer-digits',
        filename='khmer-digits.ocrx',
        description=(
            'Khmer digit strings (1-8 digits): the small attention model of '
            'configs/conservative_small.py (bfloat16 compute), trained on '
            'khmer_digits until early stopping at epoch 34 (best epoch 26), '
            'int8 weights; functions for cpu and cuda, beam sizes 1 and 5.'),
        vocabulary='digits',
        sha256=('ccb1fa789d45bc8cd7b1e011c17693863a'
                'dcd7b8c15357eb9e19cb732f3caa8c'),
        scores={'test_char_accuracy': 0.9980, 'test_seq_accuracy': 0.992,
                'val_char_accuracy': 0.9984, 'val_seq_accuracy': 0.993}),
    'khmer-text': PretrainedModel(
        name='khmer-text',
        filename='khmer-text.ocrx',
        description=(
            'Printed Khmer text lines with digits and Latin (khmer '
            'vocabulary): line_ctc (CNN + BiLSTM + CTC, 5.6 M parameters) of '
            'configs/khmer_lines_ctc.py after 7 epochs of 500 steps (3 in '
            'the first session, 4 warm-started from them), best validation '
            'CER 0.102; int8 weights; functions for cpu and cuda, beam '
            'sizes 1 and 5. Any line width and height (resized to 48 px).'),
        vocabulary='khmer',
        sha256=('a5936bdcecbbd9328a0acce5662fff13'
                '6d3f26183a023131b211b10450c322cf'),
        scores={'val_cer': 0.1019,
                'test_cer': 0.1057, 'test_exact': 0.090,
                'test_cer_clean': 0.0762, 'test_cer_scan': 0.2233,
                'test_cer_long': 0.0773,
                'benchmark': 'benchmarks/results/tesseract_compare.json'}),
}


# The line detector of `ocr_jax.read_pages` (not a line model: a
# `pages.detector.LearnedDetector` file): configs/line_detector.py after
# epoch 1 of 40 (250 steps of 4 pages, about 45 min on 2 shared cores;
# epoch 2 found lines worse on validation pages and training was stopped),
# with the map threshold 0.8 chosen on validation pages (seed 3; 0.7 before
# the post-processing of ocr_jax.pages.layout changed). Written by
#   python -c "from ocr_jax.pages import detector; detector.export_run_folder(
#       'runs/line_detector', 'ocr_jax/pretrained/line-detector.msgpack',
#       epoch=1, threshold=0.8)"
DETECTOR_FILENAME = 'line-detector.msgpack'

# Character LMs for CTC beam search (`--lm=NAME`), by name. khmer-lm.npz is
# the order-5 LM of the corpus's training split plus generated number and
# Latin texts (no validation or test line), written by
#   python -m ocr_jax.build_lm --output=ocr_jax/pretrained/khmer-lm.npz
LANGUAGE_MODELS = {'khmer': 'khmer-lm.npz'}


def register(model: PretrainedModel) -> None:
  """Adds a model to the registry (tests and plugins use this)."""
  MODELS[model.name] = model


def model_path(name: str) -> str:
  """The file of a pretrained model.

  Raises:
    ValueError: the name is not registered (the message lists the names).
    FileNotFoundError: the file is not installed.
    OSError: the file does not match its recorded SHA-256.
  """
  if name not in MODELS:
    raise ValueError(f'unknown pretrained model {name!r}; available: '
                     f'{sorted(MODELS) or "(none shipped yet)"}')
  model = MODELS[name]
  candidates = []
  if os.environ.get(ENV_DIR):
    candidates.append(os.path.join(os.environ[ENV_DIR], model.filename))
  candidates.append(
      str(importlib.resources.files(__name__).joinpath(model.filename)))
  if os.path.isabs(model.filename):
    candidates.insert(0, model.filename)
  path = next((p for p in candidates if os.path.isfile(p)), None)
  if path is None:
    raise FileNotFoundError(
        f'pretrained model {name!r}: {model.filename} is not installed '
        f'(looked in {", ".join(candidates)}); reinstall ocr_jax or set '
        f'{ENV_DIR}')
  if model.sha256:
    digest = _sha256(path)
    if digest != model.sha256:
      raise OSError(f'{path} has SHA-256 {digest}, expected {model.sha256}: '
                    'the file is damaged or from another version')
  return path


def _installed_file(filename: str, what: str) -> str:
  """A file shipped in this package (OCR_JAX_PRETRAINED_DIR first).

  Raises:
    FileNotFoundError: naming `what` and the places looked in.
  """
  candidates = [str(importlib.resources.files(__name__).joinpath(filename))]
  if os.environ.get(ENV_DIR):
    candidates.insert(0, os.path.join(os.environ[ENV_DIR], filename))
  path = next((p for p in candidates if os.path.isfile(p)), None)
  if path is None:
    raise FileNotFoundError(
        f'{what} is not installed (looked in {", ".join(candidates)}); '
        f'reinstall ocr_jax or set {ENV_DIR}')
  return path


def detector_path() -> str:
  """The shipped line detector file (OCR_JAX_PRETRAINED_DIR first)."""
  return _installed_file(DETECTOR_FILENAME,
                         f'the line detector {DETECTOR_FILENAME}')


def lm_path(spec: str) -> str:
  """The file of a shipped LM name (`LANGUAGE_MODELS`); other specs as given.

  Raises:
    FileNotFoundError: a shipped name whose file is not installed.
  """
  if spec not in LANGUAGE_MODELS:
    return spec
  filename = LANGUAGE_MODELS[spec]
  return _installed_file(filename, f'the LM {spec!r} ({filename})')


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()
