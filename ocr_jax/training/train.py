"""Training and evaluation loop: `train_and_evaluate(config, workdir)`.

One epoch = `steps_per_epoch` jitted training steps on data drawn from a
pipeline seeded by (seed, epoch), then a full validation pass. Checkpoints are
written at epoch ends (every `checkpoint_every_epochs`) and inside epochs
(every `checkpoint_every_steps`, and when SIGTERM arrives: `preemption`),
with the position in the epoch. A killed run resumes from its latest
checkpoint and replays exactly the same steps: same data order (the stream
restarted at the position), same dropout keys (folded from the step), same
schedule, plateau and early-stopping state.

Several devices and processes: data parallel over a 1-D mesh (`sharding`);
`config.batch_size` is the global batch. Evaluation sums its counts over the
processes, so every process takes the same decisions; only process 0 writes
the record files (metrics.jsonl, results.json, samples.png).
"""

import functools
import json
import os
import time
from typing import Any, Callable

from absl import logging
from clu import metric_writers
from flax.training import train_state
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from ocr_jax import models
from ocr_jax.data import input_pipeline
from ocr_jax.data import line_pipeline
from ocr_jax.models import decode
from ocr_jax.text import charset
from ocr_jax.training import evaluation
from ocr_jax.training import losses
from ocr_jax.training import optim
from ocr_jax.training import preemption
from ocr_jax.training import run_folder
from ocr_jax.training import sample_sheet
from ocr_jax.training import sharding
from ocr_jax.training import warm_start


class TrainState(train_state.TrainState):
  batch_stats: Any


class NonFiniteLossError(FloatingPointError):
  """The training loss became NaN or infinite."""


# --- Step functions -----------------------------------------------------------


def compute_loss(logits, paddings, batch, config, kind):
  """Mean training loss of one batch.

  Args:
    logits: [batch, steps, vocab] model outputs.
    paddings: [batch, time] CTC frame paddings (None for attention models).
    batch: dict with 'labels' [batch, max_len + 1] and 'label_length' [batch].
    config: the loss fields of the experiment config.
    kind: 'attention' or 'ctc'.
  """
  labels, lengths = batch['labels'], batch['label_length']
  if kind == 'ctc':
    per_example = losses.ctc_loss(logits, paddings, labels, lengths,
                                  blank_id=charset.BLANK_ID)
    return jnp.mean(per_example)
  # Attention targets are the characters followed by EOS.
  positions = jnp.arange(labels.shape[1])[None, :]
  mask = (positions <= lengths[:, None]).astype(jnp.float32)
  if config.loss == 'focal':
    loss_sum, weight = losses.focal_loss(logits, labels, mask,
                                         alpha=config.focal_alpha,
                                         gamma=config.focal_gamma)
  else:
    loss_sum, weight = losses.masked_cross_entropy(
        logits, labels, mask, label_smoothing=config.label_smoothing)
  return loss_sum / jnp.maximum(weight, 1.0)


def decoder_inputs_for(labels):
  """Teacher-forcing inputs: BOS followed by the targets shifted right."""
  bos = jnp.full((labels.shape[0], 1), charset.BOS_ID, labels.dtype)
  return jnp.concatenate([bos, labels[:, :-1]], axis=1)


def train_step(state, batch, rng, *, model, config, kind, learning_rate_fn):
  """One optimisation step; returns the new state and scalar metrics."""
  dropout_rng = jax.random.fold_in(rng, state.step)
  decoder_inputs = (decoder_inputs_for(batch['labels'])
                    if kind == 'attention' else None)

  def loss_fn(params):
    (logits, paddings), updates = model.apply(
        {'params': params, 'batch_stats': state.batch_stats},
        batch['image'], batch['width'], decoder_inputs, train=True,
        rngs={'dropout': dropout_rng},
        mutable=['batch_stats', 'intermediates'])
    loss = compute_loss(logits, paddings, batch, config, kind)
    if kind == 'attention' and config.ctc_aux_weight > 0:
      (ctc_logits, ctc_paddings), = updates['intermediates']['ctc']
      per_char = losses.ctc_loss(
          ctc_logits, ctc_paddings, batch['labels'], batch['label_length'],
          blank_id=charset.BLANK_ID) / jnp.maximum(batch['label_length'], 1)
      loss = loss + config.ctc_aux_weight * jnp.mean(per_char)
    return loss, updates['batch_stats']

  (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params)
  new_state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
  lr = learning_rate_fn(state.step) * optim.get_lr_scale(state.opt_state)
  metrics = {'loss': loss, 'grad_norm': optax.tree.norm(grads),
             'learning_rate': lr}
  return new_state, metrics


# --- State ------------------------------------------------------------------


def create_train_state(config, model, rng, learning_rate_fn):
  """Initialises parameters, batch statistics and the optimizer."""
  inputs = models.dummy_inputs(config.image_height, config.image_width,
                               config.max_label_length)
  params_rng, dropout_rng = jax.random.split(rng)
  variables = jax.jit(functools.partial(model.init, train=False))(
      {'params': params_rng, 'dropout': dropout_rng}, *inputs)
  return TrainState.create(
      apply_fn=model.apply, params=variables['params'],
      batch_stats=variables.get('batch_stats', {}),
      tx=optim.create_optimizer(config, learning_rate_fn))


# --- Logging helpers ----------------------------------------------------------


def elapsed_seconds(record):
  """A history record's time since the start (older runs: wall_seconds)."""
  return record.get('elapsed_seconds', record.get('wall_seconds'))


def format_eta(seconds):
  seconds = int(max(seconds, 0))
  return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s'


def check_finite(loss, step, workdir):
  if not np.isfinite(loss):
    raise NonFiniteLossError(
        f'non-finite training loss {loss} at step {step}; training stopped. '
        f'The last good checkpoint is intact in '
        f'{run_folder.checkpoints_dir(workdir)}; lower the learning rate or '
        'enable gradient clipping, then rerun to resume from it.')


LOSSES = ('cross_entropy', 'focal', 'ctc')
# config.dataset of synthetic lines rendered on the fly (line_pipeline); any
# other name is a TFDS dataset.
SYNTH_LINES = 'synth_lines'


def validate_config(config):
  """Rejects unknown names and mismatches before any work is done."""
  kind = models.model_kind(config.model)  # Lists the valid presets.
  charset.get_vocabulary(config.vocabulary)
  if config.loss not in LOSSES:
    raise ValueError(f'unknown loss {config.loss!r}; valid: {list(LOSSES)}')
  if (kind == 'ctc') != (config.loss == 'ctc'):
    raise ValueError(f'config.loss={config.loss!r} does not fit the '
                     f'{kind} model {config.model!r}; CTC models need '
                     "loss='ctc' and attention models 'cross_entropy' or "
                     "'focal'")
  # Building the schedule and optimizer checks their names.
  optim.create_optimizer(config, optim.create_learning_rate_fn(config, 1))
  if config.dataset == SYNTH_LINES and config.steps_per_epoch <= 0:
    raise ValueError(f'{SYNTH_LINES} is endless: set steps_per_epoch > 0 '
                     f'(got {config.steps_per_epoch})')
  for field in ('batch_size', 'eval_batch_size'):
    if config[field] % jax.device_count():
      raise ValueError(f'{field} {config[field]} is not divisible by the '
                       f'{jax.device_count()} devices')


# --- Scores of several evaluation sets ---------------------------------------


def mix_scores(results: list[dict]) -> dict:
  """The scores of several sets' lines taken together.

  Recovers each set's summed counts from its per-length scores
  (`metrics.OcrScores.result`): characters = length x lines, distance =
  cer x characters (cer is the distance itself when there are none).
  """
  lines = distance = chars = exact = 0
  ned = 0.0
  by_length = {}
  for result in results:
    ned += result['mean_ned'] * result['n'] if result['n'] else 0.0
    for length, scores in result['by_length'].items():
      n = scores['n']
      counts = by_length.setdefault(length, [0, 0, 0, 0])
      set_chars = length * n
      counts[0] += n
      counts[1] += round(scores['cer'] * max(set_chars, 1))
      counts[2] += set_chars
      counts[3] += round(scores['seq_accuracy'] * n)
  mixed_by_length = {}
  for length in sorted(by_length):
    n, d, c, e = by_length[length]
    lines, distance, chars, exact = (lines + n, distance + d, chars + c,
                                     exact + e)
    mixed_by_length[length] = {'n': n, **_rates(n, d, c, e)}
  return {**_rates(lines, distance, chars, exact),
          'mean_ned': ned / lines if lines else float('nan'), 'n': lines,
          'by_length': mixed_by_length}


def _rates(n, distance, chars, exact):
  if not n:
    return {'cer': float('nan'), 'char_accuracy': float('nan'),
            'seq_accuracy': float('nan')}
  cer = distance / max(chars, 1)
  return {'cer': cer, 'char_accuracy': 1.0 - cer, 'seq_accuracy': exact / n}


def evaluate_sets(evaluate_one, sets: dict, num_samples: int):
  """Scores named evaluation sets apart and mixed.

  Args:
    evaluate_one: (dataset, num_samples) -> (scores, samples), as
      `evaluation.evaluate`.
    sets: name -> dataset.
    num_samples: samples kept in all (shared between the sets).

  Returns:
    (the mixed scores, plus '<set>_cer' and '<set>_seq_accuracy' of each
    set and 'sets': {name: its scores}; the samples).
  """
  per_set, samples = {}, []
  share = max(1, num_samples // max(len(sets), 1))
  for name, dataset in sets.items():
    per_set[name], set_samples = evaluate_one(dataset, share)
    samples += [dict(sample, set=name) for sample in set_samples]
  scores = mix_scores(list(per_set.values()))
  for name, result in per_set.items():
    scores[f'{name}_cer'] = result['cer']
    scores[f'{name}_seq_accuracy'] = result['seq_accuracy']
  scores['sets'] = per_set
  return scores, samples[:num_samples]


# --- Data position and resuming -----------------------------------------------


def create_train_batches(config, epoch: int, start_step: int):
  """This process's TFDS training batches of `epoch`, from its `start_step`-th.

  The epoch's stream is a pure function of (seed, epoch), so skipping the
  first `start_step` batches restores a mid-epoch position exactly (it costs
  running the input pipeline for them, not the model).
  """
  batches = input_pipeline.create_train_iterator(
      config, data_dir=config.data_dir, seed=config.seed * 100003 + epoch)
  for _ in range(start_step):
    next(batches)
  return batches


def resume_point(recent_mgr, mid_mgr, steps_per_epoch: int):
  """(manager, step) of the latest checkpoint to resume from, or None.

  checkpoints/ counts epochs, mid_epoch/ global steps: the mid-epoch one
  wins when it lies past the last saved epoch.
  """
  epoch, mid_step = recent_mgr.latest_step(), mid_mgr.latest_step()
  if mid_step is not None and mid_step > (epoch or 0) * steps_per_epoch:
    return mid_mgr, mid_step
  return None if epoch is None else (recent_mgr, epoch)


def save_mid_epoch(mid_mgr, state, host, config, *, epoch, steps_done,
                   loss_sum):
  """Checkpoints the state with the position: `steps_done` steps of `epoch`.

  The RNG state needs nothing more: dropout keys fold the step into the
  seed's key, and the data stream restarts from (seed, epoch, position).
  """
  position = {'epoch': epoch, 'step': steps_done,
              'loss_sum': float(jax.device_get(loss_sum))}
  run_folder.save_checkpoint(mid_mgr, int(state.step), state,
                             dict(host, position=position), config)


# --- Main loop ----------------------------------------------------------------


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       epoch_callback: Callable[[int], None] | None = None
                       ) -> TrainState:
  """Trains `config.model` on `config.dataset`, evaluating every epoch.

  Args:
    config: an experiment configuration (see configs/base.py).
    workdir: where checkpoints, logs, metrics.jsonl and results.json go; an
      existing workdir is resumed from its latest checkpoint.
    epoch_callback: called with the epoch number after each epoch's
      checkpoint (tests use it to simulate a crash).

  Returns:
    The final training state.
  """
  validate_config(config)
  os.makedirs(workdir, exist_ok=True)
  vocab = charset.get_vocabulary(config.vocabulary)
  kind = models.model_kind(config.model)
  model = models.create_model(
      config.model, vocab_size=vocab.size, dtype=jnp.dtype(config.dtype),
      backend=config.backend, dropout_rate=config.dropout_rate)
  writer = metric_writers.create_default_writer(
      workdir, just_logging=jax.process_index() > 0)

  # --- Data ---
  line_stream = None  # Synthetic lines: batches by step (line_pipeline).
  if config.dataset == SYNTH_LINES:
    steps_per_epoch = config.steps_per_epoch
    line_stream = line_pipeline.TrainStream(config)
    # Name -> set of lines (tier and font group), scored apart and mixed.
    eval_data = {split: line_pipeline.create_eval_sets(config, split)
                 for split in (config.eval_split, config.test_split)}
  else:
    builder = input_pipeline.ensure_built(config, data_dir=config.data_dir)
    num_train = builder.info.splits[config.train_split].num_examples
    steps_per_epoch = (config.steps_per_epoch if config.steps_per_epoch > 0
                       else num_train // config.batch_size)
    eval_data = {
        split: input_pipeline.create_eval_dataset(config, split,
                                                  data_dir=config.data_dir)
        for split in (config.eval_split, config.test_split)}
  total_steps = steps_per_epoch * config.num_epochs

  # --- State, resumed when the workdir has a checkpoint ---
  mesh = sharding.create_mesh()
  rng = jax.random.key(config.seed)
  learning_rate_fn = optim.create_learning_rate_fn(config, steps_per_epoch)
  state = create_train_state(config, model, rng, learning_rate_fn)
  param_count = sum(x.size for x in jax.tree.leaves(state.params))
  plateau = optim.PlateauScheduler.from_config(config)
  stopper = optim.EarlyStopping.from_config(config)
  recent_mgr, best_mgr = run_folder.create_checkpoint_managers(
      workdir, config.keep_checkpoints)
  mid_mgr = run_folder.create_mid_epoch_manager(workdir)
  host = {'epoch': 0, 'history': [], 'epoch_seconds': [],
          'compile_seconds': None, 'best': None,
          'plateau': plateau.state_dict(),
          'early_stopping': stopper.state_dict()}
  resume = resume_point(recent_mgr, mid_mgr, steps_per_epoch)
  if resume is None and config.init_from:
    variables = warm_start.warm_start(
        {'params': state.params, 'batch_stats': state.batch_stats},
        config.init_from)
    state = state.replace(params=variables['params'],
                          batch_stats=variables['batch_stats'])
  # Restored onto the mesh, so that every process reads its own shards.
  state = sharding.replicate(state, mesh)
  if resume is not None:
    state, host = run_folder.restore_checkpoint(*resume, state)
    plateau.load_state_dict(host['plateau'])
    stopper.load_state_dict(host['early_stopping'])
    # Epochs after the checkpoint are replayed: drop their old records.
    if jax.process_index() == 0:
      run_folder.rewrite_metrics(workdir, host['history'])
    logging.info('Resumed from epoch %d, step %d in %s', host['epoch'],
                 int(state.step), workdir)
  # Set when resuming inside an epoch: {'epoch', 'step', 'loss_sum'}.
  position = host.pop('position', None)
  # Made on the mesh: every process holds the same replicated key.
  rng = jax.jit(lambda: jax.random.key(config.seed),
                out_shardings=sharding.replicated(mesh))()
  logging.info('Model %s: %d parameters; %d steps per epoch', config.model,
               param_count, steps_per_epoch)

  train_step_fn = jax.jit(
      functools.partial(train_step, model=model, config=config, kind=kind,
                        learning_rate_fn=learning_rate_fn),
      donate_argnums=0)
  predict_fns = {}  # beam size -> jitted decode.make_predict_fn

  def evaluate_split(split, state, beam_size=1):
    if beam_size not in predict_fns:
      predict = decode.make_predict_fn(model, kind, config.max_label_length,
                                       beam_size)
      # Ids and line confidences only: XLA drops the unused rescoring.
      # Split like the batch, so each process scores its own rows.
      predict_fns[beam_size] = jax.jit(
          lambda *args: predict(*args)[:2],
          out_shardings=sharding.batch_sharding(mesh))
    variables = {'params': state.params, 'batch_stats': state.batch_stats}

    def predict_batch(batch):
      batch = sharding.shard_batch(batch, mesh)
      return predict_fns[beam_size](variables, batch['image'], batch['width'])

    if isinstance(eval_data[split], dict):
      return evaluate_sets(
          lambda data, count: evaluation.evaluate(predict_batch, data, vocab,
                                                  num_samples=count),
          eval_data[split], config.num_samples)
    return evaluation.evaluate(predict_batch, eval_data[split], vocab,
                               num_samples=config.num_samples)

  # --- Training loop ---
  start_epoch = host['epoch']
  stop = host.get('stopped_early', False)
  # Elapsed time continues across resumes (from the restored history).
  train_start = time.time() - (elapsed_seconds(host['history'][-1])
                               if host['history'] else 0.0)
  with preemption.PreemptionWatch() as watch:
    for epoch in range(start_epoch + 1, config.num_epochs + 1):
      if stop:
        break
      epoch_start = time.time()
      # Summed on device (no host sync per step) for the epoch's mean loss.
      start_step, loss_sum = 0, 0.0
      if position is not None:  # Resumed inside this epoch.
        start_step = position['step']
        loss_sum = np.float32(position['loss_sum'])
        position = None
      if line_stream is not None:
        batches = line_stream.iterate((epoch - 1) * steps_per_epoch +
                                      start_step)
      else:
        batches = create_train_batches(config, epoch, start_step)
      window_start, window_steps = time.time(), 0
      for step_in_epoch in range(start_step, steps_per_epoch):
        batch = sharding.shard_batch(next(batches), mesh)
        step = (epoch - 1) * steps_per_epoch + step_in_epoch
        state, step_metrics = train_step_fn(state, batch, rng)
        loss_sum = loss_sum + step_metrics['loss']
        preempted = watch.reached(step + 1)
        if preempted or (config.checkpoint_every_steps and
                         (step + 1) % config.checkpoint_every_steps == 0 and
                         step_in_epoch + 1 < steps_per_epoch):
          save_mid_epoch(mid_mgr, state, host, config, epoch=epoch,
                         steps_done=step_in_epoch + 1, loss_sum=loss_sum)
          if preempted:
            mid_mgr.wait_until_finished()
            raise preemption.Preempted(step + 1, workdir)
        if host['compile_seconds'] is None:
          jax.block_until_ready(step_metrics)
          host['compile_seconds'] = time.time() - epoch_start
          window_start = time.time()
          continue
        window_steps += 1
        if (step + 1) % config.log_every_steps == 0:
          scalars = jax.device_get(step_metrics)
          check_finite(float(scalars['loss']), step + 1, workdir)
          rate = window_steps / (time.time() - window_start)
          remaining = total_steps - (step + 1)
          writer.write_scalars(step + 1, {**scalars, 'steps_per_sec': rate})
          logging.info('epoch %d/%d step %d/%d loss %.4f lr %.2e %.2f '
                       'steps/s ETA %s', epoch, config.num_epochs, step + 1,
                       total_steps, scalars['loss'], scalars['learning_rate'],
                       rate, format_eta(remaining / max(rate, 1e-9)))
          window_start, window_steps = time.time(), 0
      train_loss = float(jax.device_get(loss_sum)) / steps_per_epoch
      check_finite(train_loss, int(state.step), workdir)
      train_seconds = time.time() - epoch_start
      host['epoch_seconds'].append(train_seconds)

      # --- Evaluation, schedule, early stopping ---
      scores, samples = evaluate_split(config.eval_split, state)
      value = scores[config.monitor_metric]
      record = {'epoch': epoch, 'step': int(state.step),
                'train_loss': train_loss, 'epoch_seconds': train_seconds}
      if config.schedule == 'plateau':
        record['lr_scale'] = plateau.update(value)
        state = state.replace(
            opt_state=optim.set_lr_scale(state.opt_state, record['lr_scale']))
      stop = stopper.update(value, epoch=epoch)
      improved = stopper.improved
      record.update(elapsed_seconds=time.time() - train_start,
                    **{f'val_{k}': v for k, v in scores.items()
                       if not isinstance(v, (dict, list))})
      host['history'].append(record)
      if jax.process_index() == 0:
        run_folder.append_metrics(workdir, record)
      writer.write_scalars(int(state.step), {
          k: v for k, v in record.items() if k not in ('epoch', 'step')})
      writer.write_texts(int(state.step), {
          'samples': sample_sheet.format_samples(samples)})
      logging.info('epoch %d: val char_accuracy %.4f seq_accuracy %.4f '
                   '(%.1f s/epoch)%s', epoch, scores['char_accuracy'],
                   scores['seq_accuracy'], train_seconds,
                   ' best' if improved else '')
      host.update(epoch=epoch, plateau=plateau.state_dict(),
                  early_stopping=stopper.state_dict(), stopped_early=stop)
      if improved:
        host['best'] = {'epoch': epoch, **record}
        run_folder.save_checkpoint(best_mgr, epoch, state, host, config)
      # SIGTERM during the evaluation: save this epoch and stop.
      preempted = watch.requested_between_steps() and not (
          stop or epoch == config.num_epochs)
      if (epoch % config.checkpoint_every_epochs == 0 or stop
          or epoch == config.num_epochs or preempted):
        run_folder.save_checkpoint(recent_mgr, epoch, state, host, config)
      writer.flush()
      if preempted:
        recent_mgr.wait_until_finished()
        best_mgr.wait_until_finished()
        raise preemption.Preempted(int(state.step), workdir)
      if epoch_callback is not None:
        recent_mgr.wait_until_finished()
        best_mgr.wait_until_finished()
        epoch_callback(epoch)

  recent_mgr.wait_until_finished()
  best_mgr.wait_until_finished()
  results = final_evaluation(config, workdir, state, host, best_mgr,
                             evaluate_split, param_count, train_start)
  # Closed on every process: orbax's background threads and barriers must
  # not outlive the run, or a process that leaves first strands the others
  # at jax.distributed's shutdown barrier.
  for manager in (recent_mgr, best_mgr, mid_mgr):
    manager.close()
  writer.close()
  logging.info('Results: %s', json.dumps(results['best_validation']))
  return state


def final_evaluation(config, workdir, state, host, best_mgr, evaluate_split,
                     param_count, train_start):
  """Scores the final and the best state; writes results.json and samples.

  Times in results.json: `train_seconds` is the sum of the epochs' training
  loops (compilation included, evaluation not); `elapsed_seconds` runs from
  the start of the first epoch to the end of this final evaluation.
  """
  final_val, _ = evaluate_split(config.eval_split, state, config.beam_size)
  best_state = state
  if best_mgr.latest_step() is not None:
    best_state, _ = run_folder.restore_checkpoint(
        best_mgr, best_mgr.latest_step(), state)
  best_val, _ = evaluate_split(config.eval_split, best_state, config.beam_size)
  test, samples = evaluate_split(config.test_split, best_state,
                                 config.beam_size)
  if jax.process_index() == 0:
    sample_sheet.save_samples_png(samples, run_folder.samples_path(workdir))
  seconds = host['epoch_seconds']
  results = {
      'experiment': config.get('name', None) or os.path.basename(
          os.path.normpath(workdir)),
      'config': config.to_dict(),
      'status': 'finished',
      'epochs_run': host['epoch'],
      'stopped_early': bool(host.get('stopped_early', False)),
      'best_epoch': best_mgr.latest_step(),
      'best_validation': best_val,
      'final_validation': final_val,
      'test': test,
      'seconds_per_epoch': float(np.median(seconds)) if seconds else None,
      'compile_seconds': host['compile_seconds'],
      'train_seconds': float(sum(seconds)),
      'elapsed_seconds': time.time() - train_start,
      'parameters': int(param_count),
      'history': host['history'],
  }
  if jax.process_index() == 0:
    run_folder.write_results(workdir, results)
  sharding.wait_for_all_processes('ocr_jax:results_written')
  return results
