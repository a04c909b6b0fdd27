"""The run folder: layout, record reading and the errors of a bad workdir.

Saving and restoring checkpoints of a real run is tested in train_test.
"""

import json
import os

import pytest

from ocr_jax.training import run_folder


def test_paths_and_kinds_of_folder(tmp_path):
  workdir = str(tmp_path)
  assert run_folder.results_path(workdir) == str(tmp_path / 'results.json')
  assert run_folder.metrics_path(workdir) == str(tmp_path / 'metrics.jsonl')
  assert run_folder.status_path(workdir) == str(tmp_path / 'status.json')
  assert not run_folder.is_run_folder(workdir)
  assert not run_folder.has_records(workdir)
  run_folder.write_status(workdir, {'status': 'running'})
  assert run_folder.has_records(workdir) and not run_folder.is_run_folder(
      workdir)
  os.makedirs(run_folder.best_dir(workdir))
  assert run_folder.is_run_folder(workdir)


def test_records_read_back_and_missing_or_broken_files_read_as_none(
    tmp_path):
  workdir = str(tmp_path)
  assert run_folder.read_results(workdir) is None
  assert run_folder.read_status(workdir) is None
  assert run_folder.read_metrics(workdir) == []
  run_folder.write_results(workdir, {'status': 'finished', 'x': 1.5})
  assert run_folder.read_results(workdir) == {'status': 'finished', 'x': 1.5}
  with open(run_folder.results_path(workdir), 'w', encoding='utf-8') as f:
    f.write('{"status": "fini')  # Being written.
  assert run_folder.read_results(workdir) is None
  run_folder.write_status(workdir, ['not', 'a', 'dict'])
  assert run_folder.read_status(workdir) is None
  assert sorted(os.listdir(workdir)) == ['results.json', 'status.json']


def test_metrics_keep_the_last_record_of_each_epoch(tmp_path):
  # A resumed run repeats epoch 2; a killed one leaves half a line.
  workdir = str(tmp_path)
  for epoch, loss in [(1, 3.0), (2, 2.0), (2, 1.5), (3, 1.0)]:
    run_folder.append_metrics(workdir, {'epoch': epoch, 'loss': loss})
  with open(run_folder.metrics_path(workdir), 'a', encoding='utf-8') as f:
    f.write('{"epoch": 4, "lo')
  assert run_folder.read_metrics(workdir) == [
      {'epoch': 1, 'loss': 3.0}, {'epoch': 2, 'loss': 1.5},
      {'epoch': 3, 'loss': 1.0}]
  run_folder.rewrite_metrics(workdir, [{'epoch': 1, 'loss': 3.0}])
  with open(run_folder.metrics_path(workdir), encoding='utf-8') as f:
    assert [json.loads(line) for line in f] == [{'epoch': 1, 'loss': 3.0}]


def test_old_config_names_are_renamed():
  old = {'model': 'small', 'early_stopping_mode': 'min'}
  assert run_folder.upgrade_config(old) == {'model': 'small',
                                            'monitor_mode': 'min'}
  assert old == {'model': 'small', 'early_stopping_mode': 'min'}


def test_restoring_a_folder_without_checkpoints_says_so(tmp_path):
  with pytest.raises(FileNotFoundError, match='no checkpoint in'):
    run_folder.restore_variables(str(tmp_path))
  os.makedirs(run_folder.checkpoints_dir(str(tmp_path)))
  with pytest.raises(FileNotFoundError, match='for epoch 3'):
    run_folder.restore_variables(str(tmp_path), step=3)
