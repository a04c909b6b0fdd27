"""Tests for the predict and evaluate command lines on tiny random models."""

import contextlib
import io
import json

from absl import app
from absl import flags
import jax
import numpy as np
from PIL import Image
import pytest

from ocr_jax import evaluate
from ocr_jax import predict
from ocr_jax.data import labeled_folder
from ocr_jax.reading import export
from ocr_jax.reading import load
from ocr_jax.reading import reader as reader_lib
from ocr_jax.text import char_lm
from ocr_jax.text import charset
# Sibling test modules (pytest puts tests/ on sys.path).
import image_io_test  # pylint: disable=g-bad-import-order
import reader_test  # pylint: disable=g-bad-import-order

pytestmark = pytest.mark.usefixtures('fast_compile')


def run_cli(module, *args) -> int:
  """Runs a command line's main on fresh flags, as `app.run` would."""
  flag_values = flags.FlagValues()
  module.define_flags(flag_values)
  return module.main(flag_values([module.__name__, *args]), flag_values)


@contextlib.contextmanager
def fast_compile():
  """conftest's `fast_compile`, for module fixtures (which run before it)."""
  previous = jax.config.read('jax_disable_most_optimizations')
  jax.config.update('jax_disable_most_optimizations', True)
  try:
    yield
  finally:
    jax.config.update('jax_disable_most_optimizations', previous)


@pytest.fixture(scope='module')
def model_file(tmp_path_factory):
  with fast_compile():
    reader = reader_test.perturb(load.random_reader('tiny'))
  path = tmp_path_factory.mktemp('model') / 'tiny.ocrx'
  return export.export_reader(reader, str(path), beam_sizes=(1, 2),
                              platforms=('cpu',))


@pytest.fixture(scope='module')
def ctc_model_file(tmp_path_factory):
  with fast_compile():
    reader = reader_test.perturb(load.random_reader('tiny_ctc',
                                                    batch_size=4))
  path = tmp_path_factory.mktemp('model') / 'tiny_ctc.ocrx'
  return export.export_reader(reader, str(path), beam_sizes=(1,),
                              platforms=('cpu',))


@pytest.fixture(scope='module')
def lm_file(tmp_path_factory):
  """A tiny digits LM, as `python -m ocr_jax.build_lm` would write one."""
  digits = charset.KHMER_DIGITS
  lm = char_lm.build([digits[:5], digits[2:9], digits * 2, digits[::-1]],
                     order=3, chars=digits)
  return lm.save(str(tmp_path_factory.mktemp('lm') / 'lm.npz'))


def _png(pixels, mode=None):
  image = Image.fromarray(pixels)
  if mode:
    image = image.convert(mode)
  buffer = io.BytesIO()
  image.save(buffer, 'TIFF' if mode == 'CMYK' else 'PNG')
  return buffer.getvalue()


@pytest.fixture
def mixed_folder(tmp_path):
  """Good images of several kinds and one bad file of each kind."""
  good = reader_test.digit_image('០១២')
  files = {
      'a_rgb.png': _png(good),
      'b_gray.png': _png(good, 'L'),
      'c_cmyk.tif': _png(good, 'CMYK'),
      'd_16bit.png': _png(good[..., 0].astype(np.uint16) * 257),
      'e_empty.png': b'',
      'f_truncated.png': _png(good)[:300],
      'g_corrupt.jpg': b'\xff\xd8\xff\xe0' + bytes(range(256)) * 8,
      'h_not_image.png': b'hello, world\n',
  }
  for name, data in files.items():
    (tmp_path / name).write_bytes(data)
  image_io_test.write_huge_png(tmp_path / 'i_huge.png')
  return tmp_path


def _rows(text):
  lines = text.splitlines()
  assert lines[0] == 'path\ttext\tconfidence\terror'
  return [line.split('\t') for line in lines[1:]]


def test_predict_mixed_folder_reports_each_bad_file(model_file, mixed_folder,
                                                    capsys):
  run_cli(predict, f'--model={model_file}', str(mixed_folder / 'a_rgb.png'))
  capsys.readouterr()
  measured = image_io_test.reset_peak_memory()
  before = image_io_test.peak_memory_mb() if measured else 0.0
  status = run_cli(predict, f'--model={model_file}', str(mixed_folder))
  after = image_io_test.peak_memory_mb() if measured else 0.0
  assert status == predict.EXIT_SOME_FAILED
  rows = _rows(capsys.readouterr().out)
  names = [row[0].rsplit('/', 1)[-1] for row in rows]
  assert names == sorted(p.name for p in mixed_folder.iterdir())
  assert all(len(row) == 4 for row in rows)
  by_name = dict(zip(names, rows))
  for name in ('a_rgb.png', 'b_gray.png', 'c_cmyk.tif', 'd_16bit.png'):
    _, _, confidence, error = by_name[name]
    assert error == '' and 0.0 <= float(confidence) <= 1.0, name
  reasons = {'e_empty.png': 'empty', 'f_truncated.png': 'truncated',
             'g_corrupt.jpg': 'corrupt', 'h_not_image.png': 'not an image',
             'i_huge.png': 'too large'}
  for name, reason in reasons.items():
    _, text, confidence, error = by_name[name]
    assert reason in error and text == '' and confidence == '', name
  # A decoded 20000 x 20000 image would add 1.2 GB to the peak.
  assert after - before < 300, (before, after)


def test_predict_all_good_to_a_file_with_beam_search(model_file, mixed_folder,
                                                     tmp_path):
  output = tmp_path / 'out.tsv'
  paths = [str(mixed_folder / 'b_gray.png'), str(mixed_folder / 'a_rgb.png')]
  assert run_cli(predict, f'--model={model_file}', '--beam_size=2',
                 f'--output={output}', *paths) == predict.EXIT_OK
  rows = _rows(output.read_text(encoding='utf-8'))
  assert [row[0] for row in rows] == paths  # Input order.


def test_predict_char_confidences_column(model_file, mixed_folder, capsys):
  assert run_cli(predict, f'--model={model_file}', '--char_confidences',
                 str(mixed_folder / 'a_rgb.png')) == 0
  header, row = capsys.readouterr().out.splitlines()
  assert header.endswith('\tcharacters')
  characters = json.loads(row.split('\t')[4])
  assert ''.join(c for c, _ in characters) == row.split('\t')[1]


def test_predict_bad_model_and_missing_path(model_file, tmp_path, capsys):
  assert run_cli(predict, '--model=/no/such/model', 'x.png') == 1
  assert run_cli(predict, f'--model={model_file}',
                 str(tmp_path / 'missing.png')) == 3
  assert 'no such file' in capsys.readouterr().out


def test_usage_errors_exit_2(model_file):
  for module, args in ((predict, [f'--model={model_file}']),  # No path.
                       (predict, ['--beam_size=0', f'--model={model_file}',
                                  'x.png']),
                       (evaluate, [f'--model={model_file}']),  # No data.
                       (evaluate, [f'--model={model_file}', '--data=a',
                                   '--tfds=b:c'])):
    with pytest.raises(app.UsageError) as error:
      run_cli(module, *args)
    assert error.value.exitcode == 2, args


def _labeled(tmp_path, texts, widths=None):
  lines = []
  for i, text in enumerate(texts):
    width = widths[i] if widths else 128
    Image.fromarray(reader_test.digit_image(text, width=width, seed=i)).save(
        tmp_path / f'{i}.png')
    lines.append(f'{i}.png\t{text}')
  (tmp_path / 'labels.tsv').write_text('\n'.join(lines) + '\n',
                                       encoding='utf-8')
  return str(tmp_path)


def test_evaluate_folder_prints_one_json_object(model_file, tmp_path,
                                                capsys):
  folder = _labeled(tmp_path, ['០១២', '៣៤', '៥៦៧៨', '៩'])
  assert run_cli(evaluate, f'--model={model_file}', f'--data={folder}',
                 '--num_worst=2') == 0
  out = capsys.readouterr().out
  report = json.loads(out)
  assert out.count('\n') == 1
  for key in ('cer', 'char_accuracy', 'seq_accuracy', 'mean_ned', 'n',
              'by_length', 'worst_errors'):
    assert key in report
  assert report['n'] == 4
  assert sorted(report['by_length']) == ['1', '2', '3', '4']
  assert len(report['worst_errors']) <= 2
  for error in report['worst_errors']:
    assert set(error) == {'path', 'reference', 'prediction', 'distance'}


def test_evaluate_reports_invalid_labels(model_file, tmp_path, capsys):
  folder = _labeled(tmp_path, ['០១', 'abc'])
  assert run_cli(evaluate, f'--model={model_file}', f'--data={folder}') == 1
  assert 'line 2' in capsys.readouterr().err
  assert run_cli(evaluate, f'--model={model_file}', f'--data={folder}',
                 '--skip_invalid') == 0
  assert json.loads(capsys.readouterr().out)['n'] == 1


def test_evaluate_tfds_split(model_file, tmp_path, capsys):
  (tmp_path / 'lines').mkdir()
  folder = _labeled(tmp_path / 'lines', ['០១២', '៣៤', '៥'])
  data_dir = str(tmp_path / 'tfds')
  labeled_folder.build_tfds('predict_test_digits', {'test': folder},
                            data_dir=data_dir, vocabulary='digits',
                            fixed_width=128)
  capsys.readouterr()
  assert run_cli(evaluate, f'--model={model_file}',
                 '--tfds=predict_test_digits:test',
                 f'--data_dir={data_dir}') == 0
  report = json.loads(capsys.readouterr().out)
  assert report['n'] == 3 and report['data'] == 'predict_test_digits:test'
  # The same images through the folder path score the same.
  assert run_cli(evaluate, f'--model={model_file}', f'--data={folder}') == 0
  assert json.loads(capsys.readouterr().out)['cer'] == pytest.approx(
      report['cer'])


def test_evaluate_tfds_reads_lines_at_their_true_widths(tmp_path):
  # A variable-width model: buckets of 128 and 256 columns.
  reader = reader_test.perturb(load.random_reader(
      'tiny_ctc', dataset='predict_test_lines', image_width=256,
      batch_size=2))
  assert reader.spec.bucket_widths == (128, 256)
  (tmp_path / 'lines').mkdir()
  folder = _labeled(tmp_path / 'lines', ['០១២៣៤', '៦៧', '៨៩០១៥៦', '១'],
                    widths=[100, 60, 120, 80])
  data_dir = str(tmp_path / 'tfds')
  labeled_folder.build_tfds('predict_test_lines', {'test': folder},
                            data_dir=data_dir, vocabulary='digits')
  calls = []
  predict_batch = reader.predict_batch

  def recording_predict_batch(images, widths, **kwargs):
    calls.append((images.shape[2], [int(w) for w in widths]))
    return predict_batch(images, widths, **kwargs)

  reader.predict_batch = recording_predict_batch
  report = evaluate.evaluate_tfds(reader, 'predict_test_lines:test',
                                  data_dir=data_dir)
  # Cropped, the lines fit the 128 bucket, not the config's 256 (and the
  # reader takes them in order of width).
  assert calls == [(128, [60, 80]), (128, [100, 120])]
  # The same readings as the Reader API gives the original files.
  calls.clear()
  direct = evaluate.evaluate_folder(reader, folder)
  assert calls == [(128, [60, 80]), (128, [100, 120])]
  assert report['n'] == direct['n'] == 4
  assert report['cer'] == pytest.approx(direct['cer'])
  assert report['worst_errors']
  assert _pairs(report) == _pairs(direct)


def _pairs(report):
  return sorted((e['reference'], e['prediction'])
                for e in report['worst_errors'])


def test_lm_flags_reach_the_reader(ctc_model_file, lm_file, tmp_path,
                                   capsys):
  folder = _labeled(tmp_path, ['០១២', '៣៤', '៥៦៧៨'])
  paths = [f'{folder}/{i}.png' for i in range(3)]
  reader = load.load_reader(ctc_model_file)
  plain = [r.text for r in reader.read(paths, beam_size=4)]
  readings = []
  for flags_given, weight, bonus in (
      ([], reader_lib.DEFAULT_LM_WEIGHT, reader_lib.DEFAULT_LENGTH_BONUS),
      (['--lm_weight=2', '--length_bonus=0.5'], 2.0, 0.5)):
    assert run_cli(predict, f'--model={ctc_model_file}', '--beam_size=4',
                   f'--lm={lm_file}', *flags_given, *paths) == 0
    texts = [row[1] for row in _rows(capsys.readouterr().out)]
    reader.use_lm(lm_file, weight, bonus)
    assert texts == [r.text for r in reader.read(paths, beam_size=4)]
    readings.append(texts)
    assert run_cli(evaluate, f'--model={ctc_model_file}', '--beam_size=4',
                   f'--data={folder}', f'--lm={lm_file}',
                   *flags_given) == 0
    report = json.loads(capsys.readouterr().out)
    assert report['lm'] == lm_file
    assert (report['lm_weight'], report['length_bonus']) == (weight, bonus)
    expected = evaluate.evaluate_folder(reader, folder, beam_size=4)
    assert report['worst_errors'] == expected['worst_errors']
    assert report['cer'] == pytest.approx(expected['cer'])
  # Each setting changes the readings: the flags were not ignored.
  assert plain != readings[0] != readings[1] != plain


def test_lm_usage_errors_exit_2(model_file, ctc_model_file, lm_file,
                                tmp_path):
  folder = _labeled(tmp_path, ['០១'])
  for module, args, message in (
      (predict, [f'--model={ctc_model_file}', 'x.png'], 'beam_size'),
      (evaluate, [f'--model={ctc_model_file}', f'--data={folder}'],
       'beam_size'),
      (predict, [f'--model={model_file}', '--beam_size=2', 'x.png'], 'CTC'),
      (evaluate, [f'--model={model_file}', '--beam_size=2',
                  f'--data={folder}'], 'CTC')):
    with pytest.raises(app.UsageError, match=message) as error:
      run_cli(module, f'--lm={lm_file}', *args)
    assert error.value.exitcode == 2, args


def test_bad_lm_file_is_a_load_error(ctc_model_file, lm_file, tmp_path,
                                     capsys):
  folder = _labeled(tmp_path, ['០១'])
  with open(lm_file, 'rb') as f:
    truncated = f.read()[:200]
  bad = {'truncated.npz': truncated, 'text.npz': b'hello, world\n',
         'empty.npz': b''}
  for name, data in bad.items():
    (tmp_path / name).write_bytes(data)
  np.savez(tmp_path / 'other.npz', counts=np.zeros(3))
  for name in (*bad, 'other.npz', 'missing.npz'):
    lm = str(tmp_path / name)
    assert run_cli(predict, f'--model={ctc_model_file}', '--beam_size=2',
                   f'--lm={lm}', f'{folder}/0.png') == predict.EXIT_LOAD_ERROR
    assert run_cli(evaluate, f'--model={ctc_model_file}', '--beam_size=2',
                   f'--lm={lm}', f'--data={folder}') == (
                       evaluate.EXIT_LOAD_ERROR)
    captured = capsys.readouterr()
    assert captured.out == '', name
    assert captured.err.count(f'error: cannot load LM {lm!r}') == 2, name
