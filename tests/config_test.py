"""Configuration files: every grid experiment loads, errors name the problem."""

import importlib.util
import os
import subprocess
import sys

import pytest

from configs import base
from configs import grid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(name, arg=None):
  path = os.path.join(ROOT, 'configs', f'{name}.py')
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def test_experiments_have_the_prototype_hyperparameters():
  small = load_config('conservative_small')
  assert (small.model, small.batch_size, small.learning_rate) == (
      'small', 32, 1e-3)
  assert (small.optimizer, small.schedule, small.label_smoothing) == (
      'adam', 'plateau', 0.05)
  assert (small.plateau_patience, small.plateau_factor, small.min_lr) == (
      5, 0.5, 1e-7)
  ctc = load_config('ctc_alignment_free')
  assert (ctc.model, ctc.loss, ctc.batch_size, ctc.num_epochs) == (
      'ctc_small', 'ctc', 64, 45)
  large = load_config('large_model_regularized')
  assert (large.grad_clip_norm, large.early_stopping_patience,
          large.early_stopping_min_delta) == (0.5, 6, 0.0005)
  fast = load_config('fast_convergence')
  assert (fast.learning_rate, fast.batch_size, fast.warmup_epochs) == (
      0.005, 96, 2.0)


@pytest.mark.parametrize('name', grid.EXPERIMENTS)
def test_every_experiment_defines_only_base_keys(name):
  config = load_config(name)
  assert set(config.keys()) == set(base.get_config().keys())
  tiny = load_config(name, 'tiny')
  assert tiny.model == ('tiny_ctc' if tiny.loss == 'ctc' else 'tiny')


def test_unknown_config_argument_is_rejected():
  with pytest.raises(ValueError, match='huge'):
    base.get_config('huge')


def run_main(*flags):
  return subprocess.run(
      [sys.executable, '-m', 'ocr_jax.main', *flags], cwd=ROOT,
      capture_output=True, text=True, timeout=120)


def test_misspelt_override_key_is_an_error_naming_it(tmp_path):
  result = run_main('--config=configs/conservative_small.py',
                    f'--workdir={tmp_path}', '--config.batch_sise=16')
  assert result.returncode != 0
  assert 'batch_sise' in result.stderr


def test_unknown_preset_fails_listing_the_valid_names(tmp_path):
  result = run_main('--config=configs/base.py:tiny', f'--workdir={tmp_path}',
                    '--config.model=smal')
  assert result.returncode != 0
  assert 'smal' in result.stderr and 'conservative' not in result.stderr
  assert 'small' in result.stderr and 'ctc_small' in result.stderr
