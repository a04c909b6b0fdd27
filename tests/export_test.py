"""Tests for ocr_jax.reading.export, .ocrx and .quantize, the export
command line and benchmarks/quantize_benchmark.py."""

import json
import os
import subprocess
import sys

from absl import flags
import jax
import numpy as np
from PIL import Image
import pytest

from benchmarks import quantize_benchmark
from ocr_jax import export as export_cli
from ocr_jax.data import preprocess
from ocr_jax.reading import export
from ocr_jax.reading import load
from ocr_jax.reading import ocrx
from ocr_jax.reading import quantize
from ocr_jax.reading import reader as reader_lib
# Sibling test module (pytest puts tests/ on sys.path).
import reader_test  # pylint: disable=g-bad-import-order

pytestmark = pytest.mark.usefixtures('fast_compile')
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _inputs(reader, count=5):
  spec = reader.spec
  images, widths = [], []
  for i in range(count):
    pixels = reader_test.digit_image('០១២៣៤៥៦៧'[:i + 2], seed=i)
    image, width = preprocess.prepare(pixels, spec.image_height,
                                      spec.image_width, spec.variable_width)
    images.append(image)
    widths.append(width)
  return np.stack(images), np.asarray(widths, np.int32)


@pytest.fixture(scope='module')
def reader():
  return reader_test.perturb(load.random_reader('tiny', batch_size=8))


@pytest.mark.parametrize('preset', ['tiny', 'tiny_ctc'])
def test_export_round_trip_gives_the_same_ids(preset, request, tmp_path):
  reader = (request.getfixturevalue('reader') if preset == 'tiny' else
            reader_test.perturb(load.random_reader(preset, batch_size=8)))
  # The attention model is also exported for CUDA (only checked to build)
  # and with beam search (a CTC model's beam search runs on the host from
  # its exported frame function: tests/ctc_reader_test.py).
  attention = preset == 'tiny'
  platforms = ('cpu', 'cuda') if attention else ('cpu',)
  beam_sizes = (1, 2) if attention else (1,)
  path = export.export_reader(reader, str(tmp_path / 'm.ocrx'),
                              beam_sizes=beam_sizes, platforms=platforms)
  loaded = reader_lib.Reader.from_export(path, batch_size=8)
  assert loaded.model is None
  assert sorted(loaded.predict_fns.functions) == sorted(
      (p, b) for p in platforms for b in beam_sizes)
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
  if attention:
    with pytest.raises(ValueError, match='beam sizes'):
      loaded.predict_batch(images, widths, beam_size=3)


def test_export_runs_without_the_model_code(reader, tmp_path):
  path = export.export_reader(reader, str(tmp_path / 'm.ocrx'),
                              platforms=('cpu',))
  code = (
      'import sys\n'
      'import numpy as np\n'
      # Importing any of these would fail.
      'for name in ("ocr_jax.models", "ocr_jax.models.decode",\n'
      '             "ocr_jax.training", "orbax", "orbax.checkpoint",\n'
      '             "tensorflow"):\n'
      '  sys.modules[name] = None\n'
      'from ocr_jax.reading import reader as reader_lib\n'
      'reader = reader_lib.Reader.from_export(sys.argv[1])\n'
      'result = reader.read(np.full((64, 128, 3), 200, np.uint8))\n'
      'print(result.ok, result.confidence is not None)\n')
  out = subprocess.run([sys.executable, '-c', code, path], check=True,
                       capture_output=True, text=True, cwd=REPO)
  assert out.stdout.split() == ['True', 'True']


def test_meta_describes_the_model(reader, tmp_path):
  path = export.export_reader(reader, str(tmp_path / 'm.ocrx'),
                              platforms=('cpu',))
  meta = ocrx.read_meta(path)
  assert meta['format'] == ocrx.FORMAT and meta['version'] == 2
  assert meta['platforms'] == ['cpu']
  assert 'conv_impl' not in meta
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
  ratio = ocrx.read_weight_bytes(small) / ocrx.read_weight_bytes(full)
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


def _run_export_cli(*args):
  flag_values = flags.FlagValues()
  export_cli.define_flags(flag_values)
  return export_cli.main(flag_values(['export', *args]), flag_values)


def test_reexport_converts_an_exported_file(reader, tmp_path, capsys):
  path = export.export_reader(reader, str(tmp_path / 'f.ocrx'),
                              platforms=('cpu',))
  assert _run_export_cli(f'--model={path}', f'--output={tmp_path / "q.ocrx"}',
                         '--weight_format=int8') == 0
  printed = json.loads(capsys.readouterr().out)
  assert printed['platforms'] == ['cpu'] and printed['beam_sizes'] == [1]
  assert ocrx.read_meta(str(tmp_path / 'q.ocrx'))['weight_format'] == 'int8'
  # The file has no 'cuda' function to reuse.
  assert _run_export_cli(f'--model={path}', f'--output={tmp_path / "c.ocrx"}',
                         '--platforms=cpu,cuda') == 1
  assert "('cuda', 1)" in capsys.readouterr().err


def _conv_layers(variables) -> int:
  """Convolution kernels: [kh, kw, in, out], and the attention's location
  filter [9, 1, features]; dense kernels are 2-D."""
  return sum(leaf.ndim >= 3 for path, leaf in
             jax.tree_util.tree_leaves_with_path(variables['params'])
             if path[-1].key == 'kernel')


@pytest.mark.parametrize('platforms', [('cpu', 'cuda'), ('tpu',)])
def test_gpu_and_tpu_functions_use_native_convolutions(reader, tmp_path,
                                                       platforms):
  path = export.export_reader(reader, str(tmp_path / 'm.ocrx'),
                              platforms=platforms)
  functions = reader_lib.Reader.from_export(path).predict_fns.functions
  assert sorted(functions) == sorted((p, 1) for p in platforms)
  convolutions = {
      platform: jax.export.deserialize(bytearray(data)).mlir_module().count(
          'stablehlo.convolution')
      for (platform, _), data in functions.items()}
  layers = _conv_layers(reader.variables)
  assert layers == 14  # 13 in the tiny ResNet, 1 location filter.
  for platform in platforms:
    if platform == 'cpu':  # im2col products for most layers.
      assert convolutions[platform] < layers
    else:  # One lax convolution per layer: no im2col code.
      assert convolutions[platform] == layers


def test_other_platforms_and_old_versions_are_refused(reader, tmp_path):
  path = export.export_reader(reader, str(tmp_path / 'tpu.ocrx'),
                              platforms=('tpu',))
  loaded = reader_lib.Reader.from_export(path)
  with pytest.raises(ValueError, match="exported for platforms.*'cpu'"):
    loaded.read(np.zeros((64, 128, 3), np.uint8))
  meta = dict(ocrx.read_meta(path), version=1)
  old = str(tmp_path / 'old.ocrx')
  with open(old, 'wb') as f:
    np.savez(f, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
  with pytest.raises(ValueError, match='version 1.*Re-export'):
    reader_lib.Reader.from_export(old)


def test_flatten_round_trip():
  tree = {'a': {'b': np.ones(2), 'c': {'d': np.zeros(3)}}, 'e': np.ones(1)}
  flat = ocrx.flatten(tree)
  assert sorted(flat) == ['a/b', 'a/c/d', 'e']
  jax.tree.map(np.testing.assert_array_equal, ocrx.unflatten(flat), tree)


def test_compare_formats_reports_cer_size_and_speed(reader, tmp_path):
  model = export.export_reader(reader, str(tmp_path / 'm.ocrx'),
                               platforms=('cpu',))
  folder = tmp_path / 'data'
  folder.mkdir()
  lines = []
  for i, text in enumerate(['០១២', '៣៤']):
    Image.fromarray(reader_test.digit_image(text, seed=i)).save(
        folder / f'{i}.png')
    lines.append(f'{i}.png\t{text}')
  (folder / 'labels.tsv').write_text('\n'.join(lines) + '\n',
                                     encoding='utf-8')
  report = quantize_benchmark.compare_formats(model, data=str(folder),
                                              formats=('float32', 'int8'))
  assert set(report['formats']) == {'float32', 'int8'}
  for entry in report['formats'].values():
    assert entry['n'] == 2 and entry['file_bytes'] > 0
    assert entry['ms_per_image'] > 0
  assert 'cer_increase_int8' in report and 'int8_within_0.2_points' in report
  assert report['size_ratio_int8'] < 0.6
