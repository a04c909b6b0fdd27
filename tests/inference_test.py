"""Tests for ocr_jax.reading.reader: the Reader API on tiny random models."""

import os

import jax
import numpy as np
from PIL import Image
import pytest

from ocr_jax.text import charset
from ocr_jax.reading import reader as reader_lib
from ocr_jax import pretrained

jax.config.update('jax_disable_most_optimizations', True)


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


def write_workdir(workdir, reader, epoch=3):
  """A training workdir with `reader`'s weights, saved as train.py does."""
  import optax  # pylint: disable=g-import-not-at-top
  from configs import base  # pylint: disable=g-import-not-at-top
  from ocr_jax.training import train  # pylint: disable=g-import-not-at-top
  config = base.get_config('tiny')
  config.model = reader.spec.preset
  config.vocabulary = reader.spec.vocabulary.name
  config.max_label_length = reader.spec.max_label_length
  config.loss = 'ctc' if reader.spec.kind == 'ctc' else 'cross_entropy'
  state = train.TrainState.create(
      apply_fn=reader.model.apply, params=reader.variables['params'],
      batch_stats=reader.variables['batch_stats'], tx=optax.adam(1e-3))
  _, best = train.create_checkpoint_managers(str(workdir), config)
  train.save_checkpoint(best, epoch, state, {'epoch': epoch}, config)
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
  return perturb(reader_lib.Reader.random('tiny', batch_size=4))


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


def test_char_confidences_multiply_to_the_line_confidence(reader,
                                                          images_folder):
  result = reader.read(str(images_folder / '02.png'), char_confidences=True)
  assert ''.join(c for c, _ in result.characters) == result.text
  product = np.prod([p for _, p in result.characters])
  # The line confidence also includes the probability of EOS.
  assert result.confidence <= product + 1e-6
  assert all(0.0 <= p <= 1.0 for _, p in result.characters)


def test_beam_search_reads(reader, images_folder):
  results = reader.read(str(images_folder), beam_size=2,
                        char_confidences=True)
  assert all(r.ok and 0.0 <= r.confidence <= 1.0 for r in results)
  assert all(len(r.characters) == len(r.text) for r in results)


def test_from_workdir_restores_the_weights(reader, images_folder, tmp_path):
  workdir = write_workdir(tmp_path / 'run', reader)
  restored = reader_lib.load_reader(workdir, batch_size=4)
  assert restored.spec.preset == 'tiny'
  assert restored.spec.vocabulary.name == 'digits'
  assert not restored.spec.variable_width
  jax.tree.map(np.testing.assert_array_equal, restored.variables,
               jax.device_get(reader.variables))
  paths = sorted(str(p) for p in images_folder.glob('*.png'))
  assert ([r.text for r in restored.read(paths)] ==
          [r.text for r in reader.read(paths)])


def test_load_reader_dispatch_and_errors(reader, tmp_path, monkeypatch):
  from ocr_jax.reading import export  # pylint: disable=g-import-not-at-top
  path = export.export_reader(reader, str(tmp_path / 'm.ocrx'),
                              platforms=('cpu',))
  assert reader_lib.load_reader(path).spec.preset == 'tiny'
  monkeypatch.setitem(pretrained.MODELS, 'test-digits',
                      pretrained.PretrainedModel(
                          name='test-digits', filename='m.ocrx',
                          description='test', vocabulary='digits'))
  monkeypatch.setenv(pretrained.ENV_DIR, str(tmp_path))
  assert reader_lib.load_reader('test-digits').spec.vocabulary.name == (
      'digits')
  monkeypatch.setitem(pretrained.MODELS, 'damaged',
                      pretrained.PretrainedModel(
                          name='damaged', filename='m.ocrx',
                          description='test', vocabulary='digits',
                          sha256='0' * 64))
  with pytest.raises(OSError, match='SHA-256'):
    reader_lib.load_reader('damaged')
  with pytest.raises(ValueError, match='pretrained names'):
    reader_lib.load_reader('no-such-model')
  os.makedirs(tmp_path / 'plain')
  with pytest.raises(ValueError, match='not a training workdir'):
    reader_lib.load_reader(str(tmp_path / 'plain'))


def test_variable_width_spec_from_the_dataset():
  config = {'model': 'tiny', 'vocabulary': 'khmer', 'image_height': 64,
            'image_width': 512, 'max_label_length': 30,
            'dataset': 'khmer_text/lines'}
  spec = reader_lib.ModelSpec.from_config(config, 'attention')
  assert spec.variable_width and spec.vocabulary.name == 'khmer'
  config['dataset'] = 'khmer_digits'
  assert not reader_lib.ModelSpec.from_config(config, 'ctc').variable_width


def test_workdir_from_older_model_code_still_reads(reader, images_folder,
                                                   tmp_path, caplog):
  params = dict(reader.variables['params'])
  assert params.pop('ctc_head', None) is not None  # An auxiliary head.
  older = reader_lib.Reader(reader.spec, {
      'params': params, 'batch_stats': reader.variables['batch_stats']},
                           reader.predict_fns, model=reader.model)
  workdir = write_workdir(tmp_path / 'old', older)
  restored = reader_lib.load_reader(workdir)
  assert 'another version of the model code' in caplog.text
  assert "['params']['ctc_head']" in caplog.text
  path = str(images_folder / '00.png')
  assert restored.read(path).text == reader.read(path).text
