"""Tests for ocr_jax.reading.export and ocr_jax.reading.quantize."""

import json
import os

import jax
import numpy as np
from PIL import Image
import pytest

from ocr_jax.reading import export
from ocr_jax.data import image_io
from ocr_jax.reading import reader as reader_lib
from ocr_jax.reading import quantize
# Sibling test module (pytest puts tests/ on sys.path).
import inference_test  # pylint: disable=g-bad-import-order

jax.config.update('jax_disable_most_optimizations', True)


def _inputs(reader, count=5):
  spec = reader.spec
  images, widths = [], []
  for i in range(count):
    pixels = inference_test.digit_image('០១២៣៤៥៦៧'[:i + 2], seed=i)
    image, width = image_io.preprocess(pixels, spec.image_height,
                                       spec.image_width, spec.variable_width)
    images.append(image)
    widths.append(width)
  return np.stack(images), np.asarray(widths, np.int32)


@pytest.fixture(scope='module')
def reader():
  return inference_test.perturb(reader_lib.Reader.random('tiny',
                                                        batch_size=8))


@pytest.mark.parametrize('preset', ['tiny', 'tiny_ctc'])
def test_export_round_trip_gives_the_same_ids(preset, request, tmp_path):
  reader = (request.getfixturevalue('reader') if preset == 'tiny' else
            inference_test.perturb(reader_lib.Reader.random(preset,
                                                           batch_size=8)))
  # The attention model is also lowered for CUDA (only checked to build)
  # and with beam search (CTC beam search is its greedy path).
  attention = preset == 'tiny'
  platforms = ('cpu', 'cuda') if attention else ('cpu',)
  beam_sizes = (1, 2) if attention else (1,)
  path = export.export_reader(reader, str(tmp_path / 'm.ocrx'),
                              beam_sizes=beam_sizes, platforms=platforms)
  loaded = reader_lib.Reader.from_export(path, batch_size=8)
  assert loaded.model is None
  assert loaded.spec.vocabulary == reader.spec.vocabulary
  images, widths = _inputs(reader)
  for beam_size in beam_sizes:
    ids, lines, probs = reader.predict_batch(images, widths,
                                             beam_size=beam_size)
    ids2, lines2, probs2 = loaded.predict_batch(images, widths,
                                                beam_size=beam_size)
    np.testing.assert_array_equal(ids, ids2)
    np.testing.assert_allclose(lines, lines2, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(probs, probs2, rtol=1e-5, atol=1e-7)
  # Every batch size runs on the one exported (symbolic-batch) function.
  ids3, _, _ = loaded.predict_batch(images[:3], widths[:3])
  np.testing.assert_array_equal(ids3, reader.predict_batch(images, widths)[0][
      :3])
  with pytest.raises(ValueError, match='beam sizes'):
    loaded.predict_batch(images, widths, beam_size=3)


def test_export_runs_without_the_model_code(reader, tmp_path):
  path = export.export_reader(reader, str(tmp_path / 'm.ocrx'),
                              platforms=('cpu',))
  code = (
      'import sys\n'
      'import numpy as np\n'
      'sys.modules["ocr_jax.models"] = None\n'  # Importing it would fail.
      'sys.modules["ocr_jax.models.decode"] = None\n'
      'sys.modules["ocr_jax.training.train"] = None\n'
      'from ocr_jax.reading import reader as reader_lib\n'
      'reader = reader_lib.Reader.from_export(sys.argv[1])\n'
      'result = reader.read(np.full((64, 128, 3), 200, np.uint8))\n'
      'print(result.ok, result.confidence is not None)\n')
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  out = subprocess.run([sys.executable, '-c', code, path], check=True,
                       capture_output=True, text=True,
                       cwd=os.path.dirname(os.path.dirname(__file__)))
  assert out.stdout.split() == ['True', 'True']


def test_meta_describes_the_model(reader, tmp_path):
  path = export.export_reader(reader, str(tmp_path / 'm.ocrx'),
                              platforms=('cpu',))
  meta = export.read_meta(path)
  assert meta['format'] == export.FORMAT and meta['version'] == 1
  assert meta['model'] == reader.spec.preset
  assert meta['vocabulary_chars'] == reader.spec.vocabulary.chars
  assert meta['image_height'] == 64 and meta['image_width'] == 128
  assert meta['beam_sizes'] == [1]
  json.dumps(meta)


def test_quantized_weights_dequantize_within_tolerance():
  rng = np.random.default_rng(0)
  kernel = rng.normal(0, 0.1, (3, 3, 16, 32)).astype(np.float32)
  kernel[..., 5] = 0.0  # An all-zero channel keeps a usable scale.
  quantized = quantize.quantize_array(kernel)
  assert quantized.values.dtype == np.int8
  assert quantized.scale.shape == (1, 1, 1, 32)
  restored = np.asarray(quantized.dequantize())
  error = np.abs(restored - kernel)
  assert np.all(error <= quantized.scale / 2 + 1e-7)
  assert np.all(restored[..., 5] == 0.0)
  tree = {'conv': {'kernel': kernel, 'bias': np.ones(32, np.float32)},
          'embed': {'embedding': rng.normal(size=(40, 64)).astype(
              np.float32)}}
  converted = quantize.quantize_int8(tree)
  assert isinstance(converted['conv']['kernel'], quantize.QuantizedArray)
  assert converted['conv']['bias'].dtype == np.float32  # Too small.
  assert converted['embed']['embedding'].scale.shape == (40, 1)  # Per row.
  largest = max(float(np.max(np.abs(x))) for x in jax.tree.leaves(tree))
  assert quantize.max_abs_error(tree, converted) <= largest / 254 + 1e-6
  assert quantize.tree_nbytes(converted) < quantize.tree_nbytes(tree) / 3


@pytest.mark.parametrize('weight_format', ['int8', 'bfloat16'])
def test_smaller_formats_load_and_read(reader, tmp_path, weight_format):
  full = export.export_reader(reader, str(tmp_path / 'f.ocrx'),
                              platforms=('cpu',))
  small = export.export_reader(reader, str(tmp_path / 's.ocrx'),
                               weight_format=weight_format,
                               platforms=('cpu',))
  ratio = export.read_weight_bytes(small) / export.read_weight_bytes(full)
  assert ratio < (0.45 if weight_format == 'int8' else 0.55), ratio
  loaded = reader_lib.Reader.from_export(small)
  original = jax.device_get(reader.variables)
  loaded_weights = jax.device_get(loaded.variables)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(
      a, b, atol=float(np.max(np.abs(a))) / 100 + 1e-6), original,
               loaded_weights)
  # The model's output distributions barely move (random weights make
  # greedy readings themselves too fragile to compare).
  images, widths = _inputs(reader)
  length = reader.spec.max_label_length + 1
  decoder_inputs = np.full((len(images), length), 5, np.int32)

  @jax.jit
  def probabilities(variables):
    logits, _ = reader.model.apply(variables, images, widths, decoder_inputs)
    return jax.nn.softmax(logits, axis=-1)

  difference = np.abs(np.asarray(probabilities(loaded.variables)) -
                      np.asarray(probabilities(reader.variables)))
  assert difference.max() < 0.05, difference.max()
  assert loaded.read(images[0] * 0 + 255).ok


def test_reexport_converts_an_exported_file(reader, tmp_path):
  path = export.export_reader(reader, str(tmp_path / 'f.ocrx'),
                              platforms=('cpu',))
  assert export.main([f'--model={path}', f'--output={tmp_path / "q.ocrx"}',
                      '--weight_format=int8']) == 0
  assert export.read_meta(str(tmp_path / 'q.ocrx'))['weight_format'] == 'int8'


def test_flatten_round_trip():
  tree = {'a': {'b': np.ones(2), 'c': {'d': np.zeros(3)}}, 'e': np.ones(1)}
  flat = export.flatten(tree)
  assert sorted(flat) == ['a/b', 'a/c/d', 'e']
  jax.tree.map(np.testing.assert_array_equal, export.unflatten(flat), tree)


def test_compare_formats_reports_cer_size_and_speed(reader, tmp_path):
  model = export.export_reader(reader, str(tmp_path / 'm.ocrx'),
                               platforms=('cpu',))
  folder = tmp_path / 'data'
  folder.mkdir()
  lines = []
  for i, text in enumerate(['០១២', '៣៤']):
    Image.fromarray(inference_test.digit_image(text, seed=i)).save(
        folder / f'{i}.png')
    lines.append(f'{i}.png\t{text}')
  (folder / 'labels.tsv').write_text('\n'.join(lines) + '\n',
                                     encoding='utf-8')
  report = quantize.compare_formats(model, data=str(folder),
                                    formats=('float32', 'int8'))
  assert set(report['formats']) == {'float32', 'int8'}
  for entry in report['formats'].values():
    assert entry['n'] == 2 and entry['file_bytes'] > 0
    assert entry['ms_per_image'] > 0
  assert 'cer_increase_int8' in report and 'int8_within_0.2_points' in report
  assert report['size_ratio_int8'] < 0.6
