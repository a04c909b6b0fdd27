"""Tests of ocr_jax.data.labeled_folder: validation, errors, TFDS export."""

import os

from absl import app
from absl import flags
import numpy as np
from PIL import Image
import pytest

from ocr_jax.text import charset
from ocr_jax.data import labeled_folder

DIGITS = charset.KHMER_DIGITS


def _write_image(path, width=60, height=20):
  image = Image.new('RGB', (width, height), 'white')
  image.paste((0, 0, 0), (5, 5, width - 5, height - 5))
  image.save(path)


def _run_cli(*args) -> int:
  """Runs the command line's main on fresh flags, as `app.run` would."""
  flag_values = flags.FlagValues()
  labeled_folder.define_flags(flag_values)
  return labeled_folder.main(flag_values(['labeled_folder', *args]),
                             flag_values)


def make_folder(root, lines, images=()):
  os.makedirs(root, exist_ok=True)
  for name in images:
    _write_image(os.path.join(root, name))
  with open(os.path.join(root, 'labels.tsv'), 'w', encoding='utf-8') as f:
    f.write('\n'.join(lines) + '\n')
  return str(root)


def test_valid_folder_in_file_order_with_normalised_labels(tmp_path):
  folder = make_folder(tmp_path, [
      'filename\ttext',
      f'b.png\t{DIGITS[:3]}',
      '# a comment',
      '',
      f'sub/a.png\t  {DIGITS[5:8]} \u200b',
  ], images=['b.png'])
  os.makedirs(tmp_path / 'sub')
  _write_image(tmp_path / 'sub' / 'a.png')
  examples = labeled_folder.read_labeled_folder(folder, 'digits')
  assert [os.path.relpath(e.path, folder) for e in examples] == [
      'b.png', os.path.join('sub', 'a.png')]
  assert [e.text for e in examples] == [DIGITS[:3], DIGITS[5:8]]
  assert [e.line for e in examples] == [2, 5]


def test_all_problems_reported_at_once_with_line_numbers(tmp_path):
  folder = make_folder(tmp_path, [
      f'ok.png\t{DIGITS[:2]}',
      'no_tab_here.png',
      f'missing.png\t{DIGITS[:2]}',
      'empty_label.png\t  ',
      'ok2.png\tabc',
      f'corrupt.png\t{DIGITS[1]}',
      f'ok.png\t{DIGITS[3]}',
      f'long.png\t{DIGITS * 2}',
  ], images=['ok.png', 'empty_label.png', 'ok2.png', 'long.png'])
  (tmp_path / 'corrupt.png').write_bytes(b'\x89PNG\r\n\x1a\n garbage')
  with pytest.raises(labeled_folder.LabeledFolderError) as info:
    labeled_folder.read_labeled_folder(folder, 'digits', max_length=8)
  problems = dict(info.value.problems)
  assert sorted(problems) == [2, 3, 4, 5, 6, 7, 8]
  assert 'no tab' in problems[2]
  assert 'not found' in problems[3]
  assert 'empty label' in problems[4]
  assert "'a' (U+0061)" in problems[5] and 'vocabulary' in problems[5]
  assert 'unreadable image' in problems[6]
  assert 'listed twice (first on line 1)' in problems[7]
  assert 'over the maximum of 8' in problems[8]
  message = str(info.value)
  assert '7 invalid line(s)' in message and 'line 6:' in message


def test_skip_invalid_keeps_the_good_lines(tmp_path, caplog):
  folder = make_folder(tmp_path, [f'ok.png\t{DIGITS[:2]}', 'x.png\tabc'],
                       images=['ok.png', 'x.png'])
  examples = labeled_folder.read_labeled_folder(folder, 'digits',
                                                skip_invalid=True)
  assert [e.text for e in examples] == [DIGITS[:2]]
  assert 'Skipping 1 invalid line' in caplog.text


def test_no_valid_line_or_no_labels_file_is_an_error(tmp_path):
  folder = make_folder(tmp_path / 'a', ['x.png\tabc'], images=['x.png'])
  with pytest.raises(labeled_folder.LabeledFolderError):
    labeled_folder.read_labeled_folder(folder, 'digits', skip_invalid=True)
  os.makedirs(tmp_path / 'b')
  with pytest.raises(FileNotFoundError, match='labels.tsv'):
    labeled_folder.read_labeled_folder(str(tmp_path / 'b'))


def test_any_character_without_a_vocabulary(tmp_path):
  folder = make_folder(tmp_path, ['x.png\tabc'], images=['x.png'])
  assert labeled_folder.read_labeled_folder(folder)[0].text == 'abc'


def test_tfds_dataset_feeds_the_training_pipeline(tmp_path):
  pytest.importorskip('tensorflow_datasets')
  from configs import base  # pylint: disable=g-import-not-at-top
  from ocr_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
  names = [f'{i}.png' for i in range(5)]
  folder = make_folder(tmp_path / 'lines',
                       [f'{n}\t{DIGITS[:i + 1]}' for i, n in enumerate(names)],
                       images=names)
  data_dir = str(tmp_path / 'tfds')
  assert _run_cli(
      '--name=test_lines_ocr_jax', f'--data_dir={data_dir}',
      '--vocabulary=digits', f'--train={folder}',
      f'--validation={folder}') == 0
  with pytest.raises(app.UsageError, match='at least one of'):
    _run_cli('--name=other', f'--data_dir={data_dir}')
  # The same name again: an error naming the existing dataset, status 1.
  assert _run_cli('--name=test_lines_ocr_jax', f'--data_dir={data_dir}',
                  '--vocabulary=digits', f'--train={folder}') == 1
  config = base.get_config('tiny')
  config.update(dataset='test_lines_ocr_jax', data_dir=data_dir,
                image_width=256, batch_size=2, eval_batch_size=4)
  batch = next(input_pipeline.create_train_iterator(config,
                                                    data_dir=data_dir))
  assert batch['image'].shape == (2, 64, 256, 3)
  assert set(batch) == {'image', 'width', 'labels', 'label_length', '_mask'}
  batches = list(input_pipeline.create_eval_dataset(config, 'validation',
                                                    data_dir=data_dir))
  mask = np.concatenate([b['_mask'] for b in batches])
  lengths = np.concatenate([b['label_length'] for b in batches])[mask]
  widths = np.concatenate([b['width'] for b in batches])[mask]
  assert sorted(lengths.tolist()) == [1, 2, 3, 4, 5]
  assert np.all(widths == 192)  # 60 x 20 images resized to height 64.
