"""End-to-end training on the tiny preset: learning, resuming, aborting.

The short runs compile with `fast_compile`; the learning runs, hundreds of
steps long, keep XLA's optimisations.
"""

import json
import os

import jax
import numpy as np
import pytest

from configs import base
from ocr_jax.training import run_folder
from ocr_jax.training import train


def tiny_config(data_dir, **overrides):
  config = base.get_config('tiny')
  config.data_dir = data_dir
  config.update(overrides)
  return config


def read_results(workdir):
  results = run_folder.read_results(workdir)
  assert results is not None, f'no results.json in {workdir}'
  return results


@pytest.mark.usefixtures('fast_compile')
def test_training_writes_results_metrics_and_samples(khmer_digits_dir,
                                                     tmp_path):
  workdir = str(tmp_path / 'run')
  state = train.train_and_evaluate(tiny_config(khmer_digits_dir), workdir)
  results = read_results(workdir)
  assert results['status'] == 'finished'
  assert results['epochs_run'] == 2
  assert results['test']['n'] == 21
  assert results['best_validation']['n'] == 37
  assert results['parameters'] > 0
  for key in ('cer', 'char_accuracy', 'seq_accuracy', 'mean_ned',
              'by_length'):
    assert key in results['test']
  records = run_folder.read_metrics(workdir)
  assert [r['epoch'] for r in records] == [1, 2]
  assert records == results['history']
  assert os.path.exists(os.path.join(workdir, 'samples.png'))
  # Times: training loops summed; elapsed since the start, evaluation
  # included. No plateau schedule, so no learning-rate scale.
  epoch_seconds = [r['epoch_seconds'] for r in records]
  assert results['train_seconds'] == pytest.approx(sum(epoch_seconds))
  assert epoch_seconds[0] < records[0]['elapsed_seconds']
  assert (records[0]['elapsed_seconds'] < records[1]['elapsed_seconds'] <
          results['elapsed_seconds'])
  assert 'wall_seconds' not in results and 'lr_scale' not in records[0]
  # The reader's restore: the config and the weights of an epoch (the
  # last one here, from checkpoints/ unless it is also the best).
  assert run_folder.is_run_folder(workdir)
  config, variables = run_folder.restore_variables(workdir, step=2)
  assert (config['model'], config['monitor_mode']) == ('tiny', 'max')
  jax.tree.map(np.testing.assert_array_equal, variables,
               jax.device_get({'params': state.params,
                               'batch_stats': state.batch_stats}))
  _, best = run_folder.restore_variables(workdir)  # The best epoch's.
  assert jax.tree.structure(best) == jax.tree.structure(variables)
  with pytest.raises(FileNotFoundError, match='epoch 7'):
    run_folder.restore_variables(workdir, step=7)


def test_tiny_model_learns_the_digits(khmer_digits_dir, tmp_path):
  # The tiny task: read the 96 training images back (scored on the train
  # split itself), which a working model and loss learn within 480 steps.
  config = tiny_config(khmer_digits_dir, num_epochs=4, steps_per_epoch=120,
                       batch_size=32, learning_rate=3e-3, augment=False,
                       eval_split='train', test_split='validation')
  train.train_and_evaluate(config, str(tmp_path))
  history = read_results(str(tmp_path))['history']
  assert history[-1]['train_loss'] < 0.6 * history[0]['train_loss']
  assert history[-1]['val_char_accuracy'] > 0.5
  assert (history[-1]['val_char_accuracy'] >
          history[0]['val_char_accuracy'] + 0.3)


def test_ctc_tiny_model_learns_the_digits(khmer_digits_dir, tmp_path):
  # As above for the CTC head and loss: read the training images back.
  config = tiny_config(khmer_digits_dir, model='tiny_ctc', loss='ctc',
                       num_epochs=4, steps_per_epoch=120, batch_size=32,
                       learning_rate=3e-3, augment=False,
                       eval_split='train', test_split='validation')
  train.train_and_evaluate(config, str(tmp_path))
  history = read_results(str(tmp_path))['history']
  # Measured: loss 12.3 -> 0.49, char accuracy 0.7 % -> 100 %, sequence
  # accuracy 0 -> 100 %.
  assert history[-1]['train_loss'] < 0.1 * history[0]['train_loss']
  assert history[0]['val_char_accuracy'] < 0.2
  assert history[-1]['val_char_accuracy'] > 0.9
  assert history[-1]['val_seq_accuracy'] > 0.7


class SimulatedCrash(Exception):
  pass


@pytest.mark.usefixtures('fast_compile')
def test_killed_run_resumes_bit_exactly(khmer_digits_dir, tmp_path):
  # Checkpoints at epochs 2 and 4; the crash after epoch 3 loses epoch 3,
  # which the resumed run must replay identically.
  # The plateau schedule (patience 0) also exercises restoring its state.
  config = tiny_config(khmer_digits_dir, num_epochs=4,
                       checkpoint_every_epochs=2, schedule='plateau',
                       plateau_patience=0)
  reference = train.train_and_evaluate(config, str(tmp_path / 'whole'))

  def crash_after_third_epoch(epoch):
    if epoch == 3:
      raise SimulatedCrash()

  resumed_dir = str(tmp_path / 'resumed')
  with pytest.raises(SimulatedCrash):
    train.train_and_evaluate(config, resumed_dir,
                             epoch_callback=crash_after_third_epoch)
  resumed = train.train_and_evaluate(config, resumed_dir)
  for a, b in zip(jax.tree.leaves(reference.params),
                  jax.tree.leaves(resumed.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  whole = read_results(str(tmp_path / 'whole'))
  again = read_results(resumed_dir)
  assert whole['test'] == again['test']
  assert [r['train_loss'] for r in whole['history']] == [
      r['train_loss'] for r in again['history']]
  assert [r['lr_scale'] for r in whole['history']] == [
      r['lr_scale'] for r in again['history']]
  with open(os.path.join(resumed_dir, 'metrics.jsonl'),
            encoding='utf-8') as f:
    assert [json.loads(line)['epoch'] for line in f] == [1, 2, 3, 4]


@pytest.mark.usefixtures('fast_compile')
def test_non_finite_loss_aborts_and_keeps_the_last_checkpoint(
    khmer_digits_dir, tmp_path):
  workdir = str(tmp_path)
  train.train_and_evaluate(tiny_config(khmer_digits_dir, num_epochs=1),
                           workdir)
  broken = tiny_config(khmer_digits_dir, num_epochs=2,
                       learning_rate=float('nan'))
  with pytest.raises(train.NonFiniteLossError, match='checkpoint'):
    train.train_and_evaluate(broken, workdir)
  assert os.listdir(run_folder.checkpoints_dir(workdir)) == ['1']


@pytest.mark.usefixtures('fast_compile')
def test_unknown_names_fail_before_any_work(tmp_path):
  for field, value in [('model', 'smal'), ('optimizer', 'sgdd'),
                       ('schedule', 'cosinus'), ('vocabulary', 'latin'),
                       ('loss', 'hinge')]:
    config = base.get_config('tiny')
    config[field] = value
    with pytest.raises(ValueError, match=value):
      train.train_and_evaluate(config, str(tmp_path / field))
    assert not os.path.exists(tmp_path / field / 'checkpoints')
