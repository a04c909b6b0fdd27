"""Tests for ocr_jax.reading.reader and .load: the Reader API on tiny random
models, and readers of run folders, exported files and pretrained names."""

import os

from configs import base
import jax
import numpy as np
import optax
from PIL import Image
import pytest

from ocr_jax import pretrained
from ocr_jax.data import image_io
from ocr_jax.data import preprocess
from ocr_jax.reading import export
from ocr_jax.reading import load
from ocr_jax.reading import reader as reader_lib
from ocr_jax.text import charset
from ocr_jax.training import run_folder
from ocr_jax.training import train

pytestmark = pytest.mark.usefixtures('fast_compile')


def perturb(reader, seed=0):
  """Output biases that favour digits over EOS: non-trivial readings."""
  rng = np.random.default_rng(seed)
  size = reader.spec.vocabulary.size

  def change(leaf):
    leaf = np.asarray(leaf)
    if leaf.shape != (size,):
      return leaf
    bias = leaf + rng.normal(0, 2.0, size).astype(np.float32)
    bias[charset.EOS_ID] -= 1.0
    bias[charset.BLANK_ID] += 2.0
    return bias

  reader.variables = {
      'params': jax.tree.map(change, reader.variables['params']),
      'batch_stats': reader.variables['batch_stats']}
  return reader


def write_run_folder(workdir, reader, epoch=3):
  """A training run folder with `reader`'s weights, saved as train.py does."""
  config = base.get_config('tiny')
  config.model = reader.spec.preset
  config.vocabulary = reader.spec.vocabulary.name
  config.max_label_length = reader.spec.max_label_length
  config.loss = 'ctc' if reader.spec.kind == 'ctc' else 'cross_entropy'
  state = train.TrainState.create(
      apply_fn=reader.model.apply, params=reader.variables['params'],
      batch_stats=reader.variables['batch_stats'], tx=optax.adam(1e-3))
  _, best = run_folder.create_checkpoint_managers(str(workdir), keep=1)
  run_folder.save_checkpoint(best, epoch, state, {'epoch': epoch}, config)
  best.wait_until_finished()
  return str(workdir)


def digit_image(text, width=128, height=64, seed=0):
  """A crude picture: one dark bar per digit (enough to vary the input)."""
  rng = np.random.default_rng(seed)
  pixels = np.full((height, width, 3), 230, np.uint8)
  for i, char in enumerate(text):
    x = 8 + i * 14
    level = 20 * ((ord(char) - 0x17E0) % 10)
    pixels[16:48, x:x + 8] = level
  noise = rng.integers(0, 20, pixels.shape, dtype=np.uint8)
  return pixels - noise


@pytest.fixture(scope='module')
def reader():
  return perturb(load.random_reader('tiny', batch_size=4))


@pytest.fixture(scope='module')
def ctc_reader():
  return perturb(load.random_reader('tiny_ctc', batch_size=4))


@pytest.fixture(scope='module')
def images_folder(tmp_path_factory):
  folder = tmp_path_factory.mktemp('images')
  for i, text in enumerate(['០១២', '៣៤', '៥៦៧៨', '៩', '០០០០០']):
    Image.fromarray(digit_image(text, seed=i)).save(folder / f'{i:02d}.png')
  (folder / 'labels.tsv').write_text('ignored\tby read\n')
  (folder / 'notes.txt').write_text('skipped\n')
  return folder


def test_read_one_list_and_folder_in_order(reader, images_folder):
  paths = sorted(str(p) for p in images_folder.glob('*.png'))
  one = reader.read(paths[0])
  assert isinstance(one, reader_lib.ReadResult) and one.ok
  assert one.source == paths[0]
  assert 0.0 <= one.confidence <= 1.0
  listed = reader.read(paths[::-1])
  assert [r.source for r in listed] == paths[::-1]
  folder = reader.read(str(images_folder))
  assert [r.source for r in folder] == paths  # Sorted; .tsv/.txt skipped.
  by_path = {r.source: r for r in folder}
  for result in listed:
    assert result.text == by_path[result.source].text
    np.testing.assert_allclose(result.confidence,
                               by_path[result.source].confidence, rtol=1e-5)
  assert len({r.text for r in folder}) >= 1


def test_inputs_of_every_kind_and_errors_do_not_stop_the_rest(reader,
                                                              images_folder):
  path = str(images_folder / '00.png')
  data = (images_folder / '00.png').read_bytes()
  with Image.open(path) as image:
    image.load()
  pixels = np.asarray(image)
  results = reader.read([path, data, pixels, image,
                         str(images_folder / 'missing.png'), b'not an image'])
  texts = [r.text for r in results[:4]]
  assert texts == [texts[0]] * 4
  assert results[4].error == 'no such file' and results[4].text == ''
  assert 'not an image' in results[5].error
  assert results[5].confidence is None


def test_batching_and_padding_give_the_same_readings(reader, images_folder):
  paths = sorted(str(p) for p in images_folder.glob('*.png'))
  together = reader.read(paths)  # Batches of 4 and 1 (padded).
  alone = [reader.read(p) for p in paths]
  for a, b in zip(together, alone):
    assert a.text == b.text
    np.testing.assert_allclose(a.confidence, b.confidence, rtol=1e-4)
  assert reader_lib.bucket_size(3, 4) == 4
  assert reader_lib.bucket_size(5, 32) == 8
  assert reader_lib.bucket_size(40, 32) == 32


@pytest.mark.parametrize('kind', ['attention', 'ctc'])
def test_char_confidences_multiply_to_the_line_confidence(
    kind, request, images_folder):
  reader = request.getfixturevalue('reader' if kind == 'attention'
                                   else 'ctc_reader')
  path = str(images_folder / '02.png')
  result = reader.read(path, char_confidences=True)
  assert result.text  # Else the product is 1 for nothing.
  assert ''.join(c for c, _ in result.characters) == result.text
  assert all(0.0 < p <= 1.0 for _, p in result.characters)
  # Greedy: the line is the product of the characters' probabilities and,
  # when EOS was chosen within the length, of EOS's (attention; CTC appends
  # EOS with probability 1).
  image, width = preprocess.prepare(
      image_io.read_image(path), reader.spec.image_height,
      reader.spec.image_width, reader.spec.variable_width)
  ids, _, probs = reader.predict_batch(image[None], np.array([width]))
  count = len(result.characters)
  np.testing.assert_allclose([p for _, p in result.characters],
                             probs[0, :count], rtol=1e-6)
  eos = [float(probs[0, count])] if count < ids.shape[1] else []
  if eos:
    assert ids[0, count] == charset.EOS_ID
  product = np.prod([p for _, p in result.characters] + eos,
                    dtype=np.float64)
  np.testing.assert_allclose(result.confidence, product, rtol=1e-5)


def test_beam_search_and_greedy_give_a_line_one_probability(
    reader, images_folder):
  greedy = reader.read(str(images_folder), char_confidences=True)
  beam = reader.read(str(images_folder), beam_size=2, char_confidences=True)
  same = 0
  for g, b in zip(greedy, beam):
    assert b.ok and 0.0 <= b.confidence <= 1.0
    assert ''.join(c for c, _ in b.characters) == b.text
    if b.text == g.text:
      # One line, two decoders: beam search's exp(log-probability) equals
      # greedy's product of token probabilities, and its rescored
      # character probabilities are greedy's.
      same += 1
      np.testing.assert_allclose(b.confidence, g.confidence, rtol=1e-5)
      np.testing.assert_allclose([p for _, p in b.characters],
                                 [p for _, p in g.characters], rtol=1e-5)
  assert same  # Else the comparison above never ran.


def test_run_folder_restores_the_weights(reader, images_folder, tmp_path):
  workdir = write_run_folder(tmp_path / 'run', reader)
  restored = load.load_reader(workdir, batch_size=4)
  assert restored.spec.preset == 'tiny'
  assert restored.spec.vocabulary.name == 'digits'
  assert not restored.spec.variable_width
  jax.tree.map(np.testing.assert_array_equal, restored.variables,
               jax.device_get(reader.variables))
  paths = sorted(str(p) for p in images_folder.glob('*.png'))
  assert ([r.text for r in restored.read(paths)] ==
          [r.text for r in reader.read(paths)])


def test_load_reader_dispatch_and_errors(reader, tmp_path, monkeypatch):
  path = export.export_reader(reader, str(tmp_path / 'm.ocrx'),
                              platforms=('cpu',))
  assert load.load_reader(path).spec.preset == 'tiny'
  monkeypatch.setitem(pretrained.MODELS, 'test-digits',
                      pretrained.PretrainedModel(
                          name='test-digits', filename='m.ocrx',
                          description='test', vocabulary='digits'))
  monkeypatch.setenv(pretrained.ENV_DIR, str(tmp_path))
  assert load.load_reader('test-digits').spec.vocabulary.name == (
      'digits')
  monkeypatch.setitem(pretrained.MODELS, 'damaged',
                      pretrained.PretrainedModel(
                          name='damaged', filename='m.ocrx',
                          description='test', vocabulary='digits',
                          sha256='0' * 64))
  with pytest.raises(OSError, match='SHA-256'):
    load.load_reader('damaged')
  with pytest.raises(ValueError, match='pretrained names'):
    load.load_reader('no-such-model')
  os.makedirs(tmp_path / 'plain')
  with pytest.raises(ValueError, match='not a training run folder'):
    load.load_reader(str(tmp_path / 'plain'))


def test_variable_width_spec_from_the_dataset():
  config = {'model': 'tiny', 'vocabulary': 'khmer', 'image_height': 64,
            'image_width': 512, 'max_label_length': 30,
            'dataset': 'khmer_text/lines'}
  spec = reader_lib.ReaderSpec.from_config(config, 'attention')
  assert spec.variable_width and spec.vocabulary.name == 'khmer'
  config['dataset'] = 'khmer_digits'
  assert not reader_lib.ReaderSpec.from_config(config, 'ctc').variable_width


def test_run_folder_from_older_model_code_still_reads(reader, images_folder,
                                                   tmp_path, caplog):
  params = dict(reader.variables['params'])
  assert params.pop('ctc_head', None) is not None  # An auxiliary head.
  older = reader_lib.Reader(reader.spec, {
      'params': params, 'batch_stats': reader.variables['batch_stats']},
                            reader.predict_fns, model=reader.model)
  workdir = write_run_folder(tmp_path / 'old', older)
  restored = load.load_reader(workdir)
  assert 'another version of the model code' in caplog.text
  assert "['params']['ctc_head']" in caplog.text
  path = str(images_folder / '00.png')
  assert restored.read(path).text == reader.read(path).text
