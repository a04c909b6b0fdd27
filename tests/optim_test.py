"""ocr_jax.training.optim: schedules, optimizer, plateau scale, stopping."""

import json

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from ocr_jax.training import optim


def make_config(**overrides) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict(dict(
      learning_rate=1e-3,
      optimizer='adam',
      adam_b1=0.9,
      adam_b2=0.999,
      weight_decay=0.0,
      grad_clip_norm=0.0,
      schedule='constant',
      warmup_epochs=0.0,
      min_lr=1e-5,
      step_decay_epochs=2,
      step_decay_factor=0.5,
      plateau_patience=2,
      plateau_factor=0.5,
      plateau_min_delta=0.01,
      early_stopping_patience=3,
      early_stopping_min_delta=0.01,
      monitor_mode='max',
      num_epochs=10,
  ))
  config.update(overrides)
  return config


# --- Schedules ---


@pytest.mark.parametrize('schedule', ['constant', 'plateau'])
def test_constant_schedules(schedule):
  fn = optim.create_learning_rate_fn(make_config(schedule=schedule), 10)
  for step in (0, 5, 99, 1000):
    assert float(fn(step)) == pytest.approx(1e-3)


def test_cosine_with_warmup():
  config = make_config(schedule='cosine', warmup_epochs=1.0)
  fn = optim.create_learning_rate_fn(config, steps_per_epoch=10)
  assert float(fn(0)) == 0.0
  assert float(fn(5)) == pytest.approx(0.5e-3)
  assert float(fn(10)) == pytest.approx(1e-3)
  # Halfway through the 90 decay steps: midpoint of 1e-3 and min_lr.
  assert float(fn(55)) == pytest.approx((1e-3 + 1e-5) / 2, rel=1e-5)
  assert float(fn(100)) == pytest.approx(1e-5, rel=1e-5)
  assert float(fn(150)) == pytest.approx(1e-5, rel=1e-5)
  values = [float(fn(step)) for step in range(10, 101)]
  assert all(a >= b for a, b in zip(values, values[1:]))


def test_cosine_without_warmup():
  fn = optim.create_learning_rate_fn(make_config(schedule='cosine'), 10)
  assert float(fn(0)) == pytest.approx(1e-3)
  assert float(fn(100)) == pytest.approx(1e-5, rel=1e-5)


def test_step_decay():
  config = make_config(schedule='step', step_decay_epochs=2,
                       step_decay_factor=0.1)
  fn = optim.create_learning_rate_fn(config, steps_per_epoch=5)
  assert float(fn(0)) == pytest.approx(1e-3)
  assert float(fn(9)) == pytest.approx(1e-3)
  assert float(fn(10)) == pytest.approx(1e-4)
  assert float(fn(19)) == pytest.approx(1e-4)
  assert float(fn(20)) == pytest.approx(1e-5)


def test_unknown_names_raise():
  with pytest.raises(ValueError, match='constant, cosine, step, plateau'):
    optim.create_learning_rate_fn(make_config(schedule='linear'), 10)
  with pytest.raises(ValueError, match='adam, adamw'):
    optim.create_optimizer(make_config(optimizer='sgd'), lambda step: 1e-3)


# --- Optimizer and learning-rate scale ---


def first_update(config, grads, params, scale=None):
  tx = optim.create_optimizer(
      config, optim.create_learning_rate_fn(config, 10)
  )
  opt_state = tx.init(params)
  if scale is not None:
    opt_state = optim.set_lr_scale(opt_state, scale)
  updates, opt_state = jax.jit(tx.update)(grads, opt_state, params)
  return updates, opt_state


def test_set_lr_scale_scales_the_update():
  config = make_config()
  params = {'w': jnp.array([1.0, -2.0, 3.0])}
  grads = {'w': jnp.array([0.5, 0.5, -1.0])}
  plain, plain_state = first_update(config, grads, params)
  scaled, scaled_state = first_update(config, grads, params, scale=0.25)
  # First Adam step moves each weight by -lr * sign(grad).
  np.testing.assert_allclose(plain['w'], [-1e-3, -1e-3, 1e-3], rtol=1e-4)
  np.testing.assert_allclose(scaled['w'], 0.25 * plain['w'], rtol=1e-6)
  assert float(optim.get_lr_scale(plain_state)) == 1.0
  assert float(optim.get_lr_scale(scaled_state)) == 0.25
  assert float(optim.get_learning_rate(scaled_state)) == pytest.approx(
      0.25e-3)


def test_scale_survives_updates_and_learning_rate_follows_schedule():
  config = make_config(schedule='step', step_decay_epochs=1,
                       step_decay_factor=0.5)
  lr_fn = optim.create_learning_rate_fn(config, steps_per_epoch=1)
  tx = optim.create_optimizer(config, lr_fn)
  params = {'w': jnp.zeros(2)}
  opt_state = optim.set_lr_scale(tx.init(params), 0.5)
  update = jax.jit(tx.update)
  rates = []
  for _ in range(3):
    _, opt_state = update({'w': jnp.ones(2)}, opt_state, params)
    rates.append(float(optim.get_learning_rate(opt_state)))
  # Decay every step: 1e-3, 5e-4, 2.5e-4, times the 0.5 scale.
  np.testing.assert_allclose(rates, [5e-4, 2.5e-4, 1.25e-4], rtol=1e-5)
  assert optim.get_lr_scale(opt_state).dtype == jnp.float32


def test_adam_weight_decay_is_l2_and_adamw_is_decoupled():
  params = {'w': jnp.array([2.0])}
  zero_grads = {'w': jnp.array([0.0])}
  # Adam + L2: the decay term becomes the gradient, Adam normalises it.
  adam, _ = first_update(make_config(weight_decay=0.1), zero_grads, params)
  np.testing.assert_allclose(adam['w'], [-1e-3], rtol=1e-4)
  # AdamW: -lr * wd * param on top of the (zero) Adam direction.
  adamw, _ = first_update(
      make_config(optimizer='adamw', weight_decay=0.1), zero_grads, params
  )
  np.testing.assert_allclose(adamw['w'], [-1e-3 * 0.1 * 2.0], rtol=1e-4)


def test_gradient_clipping():
  config = make_config(optimizer='adamw', grad_clip_norm=1.0)
  tx = optim.create_optimizer(
      config, optim.create_learning_rate_fn(config, 10)
  )
  params = {'w': jnp.zeros(2)}
  # A gradient of norm 5 is clipped to [0.6, 0.8]; Adam's first moment is
  # then (1 - b1) times the clipped gradient.
  _, state = tx.update({'w': jnp.array([3.0, 4.0])}, tx.init(params), params)
  adam_state = state.inner_state[1][0]
  np.testing.assert_allclose(
      adam_state.mu['w'], 0.1 * np.array([0.6, 0.8]), rtol=1e-5
  )


def test_works_with_train_state():
  from flax.training import train_state  # pylint: disable=g-import-not-at-top

  config = make_config(schedule='plateau')
  tx = optim.create_optimizer(
      config, optim.create_learning_rate_fn(config, 10)
  )
  state = train_state.TrainState.create(
      apply_fn=None, params={'w': jnp.ones(3)}, tx=tx
  )
  state = state.replace(opt_state=optim.set_lr_scale(state.opt_state, 0.5))
  state = jax.jit(lambda s, g: s.apply_gradients(grads=g))(
      state, {'w': jnp.ones(3)}
  )
  np.testing.assert_allclose(state.params['w'], 1.0 - 0.5e-3, rtol=1e-6)


def test_get_lr_scale_rejects_foreign_state():
  with pytest.raises(TypeError):
    optim.get_lr_scale(optax.adam(1e-3).init({'w': jnp.zeros(1)}))


# --- Reduce on plateau ---


def test_plateau_reduces_after_patience_and_respects_floor():
  plateau = optim.PlateauScheduler(mode='max', patience=2, factor=0.5,
                                   min_delta=0.01, base_lr=1e-3,
                                   min_lr=3e-4)
  assert plateau.update(0.50) == 1.0  # first value is the best
  assert plateau.update(0.505) == 1.0  # below min_delta: bad 1
  assert plateau.update(0.40) == 1.0  # bad 2
  assert plateau.update(0.45) == 0.5  # bad 3 > patience: reduce
  assert plateau.update(0.60) == 0.5  # improvement resets
  for _ in range(3):
    scale = plateau.update(0.1)
  assert scale == pytest.approx(0.3)  # 0.25 floored at min_lr / base_lr
  for _ in range(6):
    scale = plateau.update(0.1)
  assert scale == pytest.approx(0.3)
  assert plateau.num_reductions == 2


def test_plateau_min_mode_and_state_round_trip():
  plateau = optim.PlateauScheduler(mode='min', patience=0, factor=0.1,
                                   min_delta=0.0, base_lr=1.0, min_lr=0.0)
  assert plateau.update(0.3) == 1.0
  assert plateau.update(0.2) == 1.0
  assert plateau.update(0.2) == pytest.approx(0.1)
  state = json.loads(json.dumps(plateau.state_dict()))
  restored = optim.PlateauScheduler(mode='min', patience=0, factor=0.1)
  restored.load_state_dict(state)
  assert restored.update(float('nan')) == pytest.approx(0.01)
  assert restored.best == 0.2


def test_plateau_from_config():
  plateau = optim.PlateauScheduler.from_config(make_config(min_lr=2e-4))
  assert plateau.mode == 'max' and plateau.patience == 2
  assert plateau.min_scale == pytest.approx(0.2)
  with pytest.raises(ValueError, match='max, min'):
    optim.PlateauScheduler(mode='up')


# --- Early stopping ---


def test_early_stopping_after_exactly_patience_bad_evals():
  stopper = optim.EarlyStopping(patience=3, min_delta=0.01, mode='max')
  assert not stopper.update(0.5)
  assert stopper.improved
  assert not stopper.update(0.505)  # not by min_delta: bad 1
  assert not stopper.improved
  assert not stopper.update(0.6)  # improves
  assert stopper.best == 0.6 and stopper.best_epoch == 3
  assert not stopper.update(0.55)  # bad 1
  assert not stopper.update(0.6)  # bad 2
  assert stopper.update(0.59)  # bad 3: stop
  assert stopper.best_epoch == 3 and stopper.num_updates == 6


def test_early_stopping_min_mode_epochs_and_round_trip():
  stopper = optim.EarlyStopping.from_config(
      make_config(monitor_mode='min', early_stopping_patience=2)
  )
  assert not stopper.update(0.5, epoch=5)
  assert not stopper.update(0.3, epoch=10)
  assert not stopper.update(0.35, epoch=15)
  state = json.loads(json.dumps(stopper.state_dict()))
  restored = optim.EarlyStopping(patience=2, mode='min')
  restored.load_state_dict(state)
  assert restored.best_epoch == 10
  assert restored.update(0.3, epoch=20)


def test_early_stopping_disabled():
  stopper = optim.EarlyStopping(patience=0)
  assert not any(stopper.update(0.1) for _ in range(20))
  assert stopper.best == 0.1
