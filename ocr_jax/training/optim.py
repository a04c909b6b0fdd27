"""Learning-rate schedules, the optimizer, reduce-on-plateau and early stopping.

`create_optimizer` wraps its chain in `optax.inject_hyperparams`, so the
optimizer state carries two float32 scalars:

  hyperparams['learning_rate']  the scheduled rate of the latest update
  hyperparams['lr_scale']       a multiplier of the rate, 1.0 at start

The reduce-on-plateau scale is computed on host at evaluation time by
`PlateauScheduler` and written into the state with `set_lr_scale`; it is
saved with the optimizer state, and `get_learning_rate` reports the effective
rate (schedule times scale). `optax.contrib.reduce_on_plateau` is not used: it
needs the metric at every update, which `TrainState.apply_gradients` does not
pass.

`PlateauScheduler` and `EarlyStopping` are plain Python with JSON-serialisable
`state_dict()`/`load_state_dict()` for checkpoints.
"""

import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

SCHEDULES = ('constant', 'cosine', 'step', 'plateau')
OPTIMIZERS = ('adam', 'adamw')
MODES = ('max', 'min')


def create_learning_rate_fn(
    config: ml_collections.ConfigDict, steps_per_epoch: int
) -> optax.Schedule:
  """Returns the learning rate as a function of the optimizer step.

  Schedules (config.schedule):
    constant: config.learning_rate throughout.
    cosine: linear warmup from 0 to learning_rate over config.warmup_epochs,
      then cosine decay reaching config.min_lr at config.num_epochs.
    step: learning_rate * step_decay_factor ** floor(epoch /
      step_decay_epochs).
    plateau: constant; the plateau scale is applied separately through
      `set_lr_scale`.

  Args:
    config: fields learning_rate, schedule, warmup_epochs, min_lr, num_epochs,
      step_decay_epochs, step_decay_factor.
    steps_per_epoch: optimizer steps per epoch.

  Raises:
    ValueError: unknown schedule name.
  """
  base_lr = config.learning_rate
  if config.schedule in ('constant', 'plateau'):
    return optax.constant_schedule(base_lr)
  if config.schedule == 'cosine':
    warmup_steps = int(round(config.warmup_epochs * steps_per_epoch))
    total_steps = int(round(config.num_epochs * steps_per_epoch))
    alpha = config.min_lr / base_lr if base_lr > 0 else 0.0
    cosine = optax.cosine_decay_schedule(
        init_value=base_lr,
        decay_steps=max(total_steps - warmup_steps, 1),
        alpha=alpha,
    )
    if warmup_steps <= 0:
      return cosine
    warmup = optax.linear_schedule(0.0, base_lr, warmup_steps)
    return optax.join_schedules([warmup, cosine], [warmup_steps])
  if config.schedule == 'step':
    every = max(int(round(config.step_decay_epochs * steps_per_epoch)), 1)
    return optax.exponential_decay(
        init_value=base_lr,
        transition_steps=every,
        decay_rate=config.step_decay_factor,
        staircase=True,
    )
  raise ValueError(
      f'unknown schedule {config.schedule!r}; valid: {", ".join(SCHEDULES)}'
  )


def create_optimizer(
    config: ml_collections.ConfigDict, learning_rate_fn: optax.Schedule
) -> optax.GradientTransformation:
  """Returns clip -> Adam/AdamW, with an injected learning rate and scale.

  'adam' with weight_decay > 0 adds `weight_decay * param` to the gradient
  before Adam (L2, as PyTorch Adam's weight_decay); 'adamw' decays decoupled
  (optax.adamw, decay multiplied by the learning rate as in PyTorch AdamW).

  Args:
    config: fields optimizer, adam_b1, adam_b2, weight_decay, grad_clip_norm
      (0 disables clipping).
    learning_rate_fn: schedule from `create_learning_rate_fn`.

  Raises:
    ValueError: unknown optimizer name.
  """
  name = config.optimizer
  if name not in OPTIMIZERS:
    raise ValueError(
        f'unknown optimizer {name!r}; valid: {", ".join(OPTIMIZERS)}'
    )
  b1, b2 = config.adam_b1, config.adam_b2
  weight_decay = config.weight_decay
  clip_norm = config.grad_clip_norm

  def make_chain(learning_rate, lr_scale):
    rate = learning_rate * lr_scale
    parts = []
    if clip_norm > 0:
      parts.append(optax.clip_by_global_norm(clip_norm))
    if name == 'adam':
      if weight_decay > 0:
        parts.append(optax.add_decayed_weights(weight_decay))
      parts.append(optax.adam(rate, b1=b1, b2=b2))
    else:
      parts.append(
          optax.adamw(rate, b1=b1, b2=b2, weight_decay=weight_decay)
      )
    return optax.chain(*parts)

  return optax.inject_hyperparams(make_chain, hyperparam_dtype=jnp.float32)(
      learning_rate=learning_rate_fn, lr_scale=1.0
  )


def _hyperparams(opt_state: Any) -> dict[str, jax.Array]:
  hyperparams = getattr(opt_state, 'hyperparams', None)
  if hyperparams is None or 'lr_scale' not in hyperparams:
    raise TypeError(
        'opt_state does not come from ocr_jax.training.optim.create_optimizer: '
        f'{type(opt_state).__name__}'
    )
  return hyperparams


def set_lr_scale(opt_state: Any, scale: float) -> Any:
  """Returns `opt_state` with the learning-rate multiplier set to `scale`.

  Keeps the dtype and sharding of the stored scalar. Call it outside jit,
  e.g. `state = state.replace(opt_state=set_lr_scale(state.opt_state, s))`.
  """
  hyperparams = dict(_hyperparams(opt_state))
  old = hyperparams['lr_scale']
  new = jnp.asarray(scale, dtype=old.dtype)
  if isinstance(old, jax.Array):
    new = jax.device_put(new, old.sharding)
  hyperparams['lr_scale'] = new
  return opt_state._replace(hyperparams=hyperparams)


def get_lr_scale(opt_state: Any) -> jax.Array:
  """The learning-rate multiplier, a float32 scalar (works inside jit)."""
  return _hyperparams(opt_state)['lr_scale']


def get_learning_rate(opt_state: Any) -> jax.Array:
  """The effective learning rate (schedule times scale), float32 scalar.

  After an update it is the rate that update used; right after `init` it is
  the rate of step 0. Works inside jit.
  """
  hyperparams = _hyperparams(opt_state)
  return hyperparams['learning_rate'] * hyperparams['lr_scale']


def _check_mode(mode: str):
  if mode not in MODES:
    raise ValueError(f'unknown mode {mode!r}; valid: {", ".join(MODES)}')


def _improves(value: float, best: float | None, mode: str, delta: float):
  """Whether `value` beats `best` by more than `delta` (NaN never does)."""
  if math.isnan(value):
    return False
  if best is None:
    return True
  if mode == 'max':
    return value > best + delta
  return value < best - delta


class PlateauScheduler:
  """Host-side reduce-on-plateau: the learning-rate scale from eval metrics.

  Like PyTorch ReduceLROnPlateau (absolute threshold, no cooldown): a value
  improves when it beats the best by more than `min_delta`; after more than
  `patience` consecutive non-improving values (i.e. at the `patience + 1`-th)
  the scale is multiplied by `factor` and the count restarts. The scale never
  goes below `min_lr / base_lr`.
  """

  def __init__(
      self,
      mode: str = 'max',
      patience: int = 5,
      factor: float = 0.5,
      min_delta: float = 1e-4,
      base_lr: float = 1e-3,
      min_lr: float = 0.0,
  ):
    _check_mode(mode)
    if not 0.0 < factor < 1.0:
      raise ValueError(f'factor must be in (0, 1), got {factor}')
    self.mode = mode
    self.patience = patience
    self.factor = factor
    self.min_delta = min_delta
    self.min_scale = min(min_lr / base_lr, 1.0) if base_lr > 0 else 0.0
    self.best = None
    self.num_bad = 0
    self.scale = 1.0
    self.num_reductions = 0

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> 'PlateauScheduler':
    """Uses plateau_*, learning_rate, min_lr and monitor_mode."""
    return cls(
        mode=config.monitor_mode,
        patience=config.plateau_patience,
        factor=config.plateau_factor,
        min_delta=config.plateau_min_delta,
        base_lr=config.learning_rate,
        min_lr=config.min_lr,
    )

  def update(self, value: float) -> float:
    """Records one evaluation of the monitored metric; returns the scale."""
    value = float(value)
    if _improves(value, self.best, self.mode, self.min_delta):
      self.best = value
      self.num_bad = 0
      return self.scale
    self.num_bad += 1
    if self.num_bad > self.patience:
      new_scale = max(self.scale * self.factor, self.min_scale)
      if new_scale < self.scale:
        self.scale = new_scale
        self.num_reductions += 1
      self.num_bad = 0
    return self.scale

  def state_dict(self) -> dict[str, Any]:
    """JSON-serialisable state (not the constructor settings)."""
    return {
        'best': self.best,
        'num_bad': self.num_bad,
        'scale': self.scale,
        'num_reductions': self.num_reductions,
    }

  def load_state_dict(self, state: dict[str, Any]):
    """Restores the state written by `state_dict`."""
    best = state['best']
    self.best = None if best is None else float(best)
    self.num_bad = int(state['num_bad'])
    self.scale = float(state['scale'])
    self.num_reductions = int(state['num_reductions'])


class EarlyStopping:
  """Host-side early stopping on the monitored evaluation metric.

  A value improves when it beats the best by more than `min_delta`; `update`
  returns True once `patience` consecutive evaluations have not improved.
  `patience <= 0` disables stopping (the best is still tracked).

  Attributes:
    best: best value so far (None before the first update).
    best_epoch: `epoch` of the best value (see `update`).
    improved: whether the latest update set a new best.
    num_bad: consecutive non-improving evaluations.
    num_updates: evaluations recorded.
    should_stop: the latest result of `update`.
  """

  def __init__(self, patience: int = 8, min_delta: float = 0.0,
               mode: str = 'max'):
    _check_mode(mode)
    self.patience = patience
    self.min_delta = min_delta
    self.mode = mode
    self.best = None
    self.best_epoch = None
    self.num_bad = 0
    self.num_updates = 0
    self.improved = False
    self.should_stop = False

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> 'EarlyStopping':
    """Uses early_stopping_patience, early_stopping_min_delta, monitor_mode."""
    return cls(
        patience=config.early_stopping_patience,
        min_delta=config.early_stopping_min_delta,
        mode=config.monitor_mode,
    )

  def update(self, value: float, epoch: int | None = None) -> bool:
    """Records one evaluation; returns whether training should stop.

    Args:
      value: the monitored metric.
      epoch: epoch of the evaluation, stored as `best_epoch` when it is the
        best; defaults to the number of evaluations so far (1-based).
    """
    value = float(value)
    self.num_updates += 1
    self.improved = _improves(value, self.best, self.mode, self.min_delta)
    if self.improved:
      self.best = value
      self.best_epoch = self.num_updates if epoch is None else epoch
      self.num_bad = 0
    else:
      self.num_bad += 1
    self.should_stop = 0 < self.patience <= self.num_bad
    return self.should_stop

  def state_dict(self) -> dict[str, Any]:
    """JSON-serialisable state (not the constructor settings)."""
    return {
        'best': self.best,
        'best_epoch': self.best_epoch,
        'num_bad': self.num_bad,
        'num_updates': self.num_updates,
        'improved': self.improved,
        'should_stop': self.should_stop,
    }

  def load_state_dict(self, state: dict[str, Any]):
    """Restores the state written by `state_dict`."""
    best = state['best']
    self.best = None if best is None else float(best)
    self.best_epoch = state['best_epoch']
    self.num_bad = int(state['num_bad'])
    self.num_updates = int(state['num_updates'])
    self.improved = bool(state.get('improved', False))
    self.should_stop = bool(state['should_stop'])
