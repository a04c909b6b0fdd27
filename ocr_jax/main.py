"""Trains and evaluates an ocr_jax experiment.

  python -m ocr_jax.main --config=configs/conservative_small.py \
      --workdir=runs/conservative_small [--config.batch_size=16]

Rerunning with the same workdir resumes from its latest checkpoint. Set
OCR_JAX_DISTRIBUTED=1 on every host of a multi-host job to call
jax.distributed.initialize() first; Cloud TPU, SLURM, Open MPI and
Kubernetes are detected, elsewhere set JAX_COORDINATOR_ADDRESS (host:port of
process 0), JAX_NUM_PROCESSES and JAX_PROCESS_ID (docs/scale_out.md).
On SIGTERM (a preemption notice) training saves a checkpoint and the
process exits with status 143; rerunning the command resumes from there.
"""

import logging as pylogging
import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Directory for checkpoints and logs.')
config_flags.DEFINE_config_file(
    'config', None, 'Experiment configuration file.', lock_config=True)
flags.mark_flags_as_required(['config', 'workdir'])


class _DropLibraryChatter(pylogging.Filter):
  """Keeps orbax's per-save INFO lines out of the training log."""

  def filter(self, record):
    return record.levelno >= pylogging.WARNING or (
        '/orbax/' not in record.pathname)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  logging.get_absl_handler().addFilter(_DropLibraryChatter())
  # TensorFlow reads this once, when first imported: set it before the
  # imports below (which are also why --help stays fast).
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  import jax  # Heavy: imported after flag parsing, so --help stays fast.
  import tensorflow as tf  # Heavy, and must see TF_CPP_MIN_LOG_LEVEL.
  from ocr_jax.training import preemption  # Heavy: imports JAX.
  from ocr_jax.training import train  # Heavy: imports JAX and TensorFlow.

  # tf.data only feeds the host; keep TensorFlow off any accelerator.
  tf.config.set_visible_devices([], 'GPU')
  if os.environ.get('OCR_JAX_DISTRIBUTED'):
    # jax reads JAX_COORDINATOR_ADDRESS itself, but not these two.
    count, index = (os.environ.get(f'JAX_{name}')
                    for name in ('NUM_PROCESSES', 'PROCESS_ID'))
    jax.distributed.initialize(
        num_processes=int(count) if count else None,
        process_id=int(index) if index else None)
  logging.info('JAX process %d/%d, local devices: %s', jax.process_index(),
               jax.process_count(), jax.local_devices())
  try:
    train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except preemption.Preempted as stopped:
    logging.warning('%s', stopped)
    sys.exit(preemption.EXIT_CODE)


if __name__ == '__main__':
  app.run(main)
