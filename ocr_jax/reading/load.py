"""Builds Readers: from a run folder, an exported file, a pretrained name, or
random weights (tests and speed benchmarks).

  from ocr_jax.reading import load
  reader = load.load_reader('runs/baseline')   # run folder, .ocrx or name
  reader = load.random_reader('small')         # random weights

A run folder's model is built here, in process, for the local platform
(`backend='auto'`, see `ocr_jax.models.backend`); every backend reads the
same weights.
"""

import functools
import os
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp

from ocr_jax import models
from ocr_jax import pretrained
from ocr_jax.models import decode
from ocr_jax.reading import reader as reader_lib
from ocr_jax.training import run_folder


def load_reader(spec: str, *, batch_size: int = 32,
                backend: str = 'auto', lm_path: str | None = None,
                lm_weight: float = reader_lib.DEFAULT_LM_WEIGHT,
                length_bonus: float = reader_lib.DEFAULT_LENGTH_BONUS
                ) -> reader_lib.Reader:
  """A Reader for a run folder, an exported file or a pretrained name.

  Args:
    spec: a training run folder (with `best/` or `checkpoints/`), a file
      written by `ocr_jax.reading.export`, or a name registered in
      `ocr_jax.pretrained`.
    batch_size: most images per model call.
    backend: for a run folder, the platform to build the model for
      ('auto': the local one); exported files carry one function per
      platform and pick the local one.
    lm_path: a character LM file (`ocr_jax.text.char_lm`) to fuse into CTC
      beam search (beam_size > 1); None: no LM.
    lm_weight: the LM's weight in the beam's score (with lm_path).
    length_bonus: the score added per character (with lm_path).

  Raises:
    ValueError: spec is none of these (the message lists the pretrained
      names), or an exported file cannot be read.
  """
  reader = _load_reader(spec, batch_size, backend)
  if lm_path:
    reader.use_lm(lm_path, lm_weight, length_bonus)
  return reader


def _load_reader(spec, batch_size, backend):
  if os.path.isdir(spec):
    if run_folder.is_run_folder(spec):
      return reader_from_run_folder(spec, batch_size=batch_size,
                                    backend=backend)
    raise ValueError(f'{spec} is a folder without best/ or checkpoints/: '
                     'not a training run folder')
  if os.path.isfile(spec):
    return reader_lib.Reader.from_export(spec, batch_size=batch_size)
  if spec in pretrained.MODELS:
    return reader_lib.Reader.from_pretrained(spec, batch_size=batch_size)
  raise ValueError(f'{spec!r} is neither a training run folder, an exported '
                   'model file nor a pretrained model; pretrained names: '
                   f'{sorted(pretrained.MODELS) or "(none shipped yet)"}')


def reader_from_model(model, spec: reader_lib.ReaderSpec, variables, *,
                      batch_size: int = 32,
                      description: str = 'model') -> reader_lib.Reader:
  """A Reader of an in-process flax model and its variables."""

  @functools.cache
  def predict_fns(beam_size):
    return jax.jit(decode.make_predict_fn(model, spec.kind,
                                          spec.max_label_length, beam_size))

  @functools.cache
  def frames_fn():
    return jax.jit(functools.partial(decode.ctc_frame_log_probs, model))

  return reader_lib.Reader(spec, variables, predict_fns,
                           batch_size=batch_size, description=description,
                           model=model,
                           frames_fn=frames_fn if spec.kind == 'ctc' else None)


def reader_from_run_folder(workdir: str, *, batch_size: int = 32,
                           step: int | None = None,
                           backend: str = 'auto') -> reader_lib.Reader:
  """The best checkpoint of a run folder (the latest if there is no best).

  Only the parameters and batch statistics are restored, not the optimizer
  state (`ocr_jax.training.run_folder.restore_variables`).

  Args:
    workdir: the run folder.
    batch_size: most images per model call.
    step: the epoch to load; None: the best, else the latest.
    backend: the platform to build the model for ('auto': the local one).
  """
  config, variables = run_folder.restore_variables(workdir, step=step)
  spec = reader_lib.ReaderSpec.from_config(
      config, models.model_kind(config['model']))
  model = _create_model(spec, backend)
  _check_variables(variables, abstract_variables(model, spec), workdir)
  return reader_from_model(model, spec, variables, batch_size=batch_size,
                           description=workdir)


def random_reader(preset: str = 'tiny', *, vocabulary: str = 'digits',
                  image_height: int = 64, image_width: int = 128,
                  max_label_length: int | None = None,
                  dataset: str = 'khmer_digits', dtype: str = 'float32',
                  backend: str = 'auto', seed: int = 0,
                  batch_size: int = 32) -> reader_lib.Reader:
  """A randomly initialised preset (for tests and speed benchmarks)."""
  if max_label_length is None:
    max_label_length = models.get_architecture(preset).max_length
  config = {'model': preset, 'vocabulary': vocabulary,
            'image_height': image_height, 'image_width': image_width,
            'max_label_length': max_label_length, 'dataset': dataset,
            'dtype': dtype, 'dropout_rate': 0.0}
  spec = reader_lib.ReaderSpec.from_config(config, models.model_kind(preset))
  model = _create_model(spec, backend)
  return reader_from_model(model, spec, init_variables(model, spec, seed),
                           batch_size=batch_size,
                           description=f'random {preset}')


def _create_model(spec: reader_lib.ReaderSpec, backend: str):
  return models.create_model(
      spec.preset, vocab_size=spec.vocabulary.size,
      dtype=jnp.dtype(spec.config.get('dtype', 'float32')), backend=backend,
      dropout_rate=0.0)


def _init_inputs(spec: reader_lib.ReaderSpec):
  return models.dummy_inputs(spec.image_height, spec.image_width,
                             spec.max_label_length)


def abstract_variables(model, spec: reader_lib.ReaderSpec):
  """Shapes and dtypes of the model's variables, without computing them."""
  rng = jax.random.key(0)
  return jax.eval_shape(functools.partial(model.init, train=False),
                        {'params': rng, 'dropout': rng},
                        *_init_inputs(spec))


def init_variables(model, spec: reader_lib.ReaderSpec,
                   seed: int = 0) -> dict[str, Any]:
  """Randomly initialised {'params', 'batch_stats'}."""
  rng = jax.random.key(seed)
  variables = jax.jit(functools.partial(model.init, train=False))(
      {'params': rng, 'dropout': rng}, *_init_inputs(spec))
  return {'params': variables['params'],
          'batch_stats': variables.get('batch_stats', {})}


def _check_variables(variables, expected, workdir: str) -> None:
  """Raises if saved shapes differ; warns about missing or extra entries."""
  saved = {jax.tree_util.keystr(path): leaf.shape for path, leaf in
           jax.tree_util.tree_leaves_with_path(variables)}
  wanted = {jax.tree_util.keystr(path): leaf.shape for path, leaf in
            jax.tree_util.tree_leaves_with_path(
                {k: expected.get(k, {}) for k in ('params', 'batch_stats')})}
  wrong = sorted(k for k in saved.keys() & wanted.keys()
                 if tuple(saved[k]) != tuple(wanted[k]))
  if wrong:
    raise ValueError(f'{workdir}: checkpoint shapes do not fit the model '
                     f'code: {wrong[:5]}')
  missing = sorted(wanted.keys() - saved.keys())
  extra = sorted(saved.keys() - wanted.keys())
  if missing or extra:
    logging.warning(
        '%s was saved by another version of the model code: missing %s, '
        'unused %s; greedy decoding works if only unused heads differ.',
        workdir, missing[:5], extra[:5])
