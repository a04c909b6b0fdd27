"""ctc_alignment_free: Alignment-free CTC training (crashed in the prototype).

Prototype grid point (docs/prototype.md, "The experiment grid"). Shared with
every grid point: clip at global norm 1.0, early stopping on validation
character accuracy (patience 8, min_delta 0.001), a checkpoint every 5 epochs
keeping 3, a log line every 25 steps.

Command:
  python -m ocr_jax.main --config=configs/ctc_alignment_free.py \\
      --workdir=runs/ctc_alignment_free
  (append `:tiny` to the config path for a 1-2 min smoke run)

Expected on 2 CPU cores (its grid run, docs/results.md; test scored on the
best validation state):
  time:     38 of 45 epochs (early stop), 48.3 s/epoch (36-39 s with the
            cores to itself), about 34 min of training (1 h 03 min
            wall with a 29 min pause)
  accuracy: validation 99.93 % char / 99.8 % seq (best epoch 30),
            test 99.91 % / 99.6 % (rank 1 of 7)
  the prototype, 2 epochs: crashed ("Unknown preset: ctc")
"""

from configs import base


def get_config(arg=None):
  """Returns the ctc_alignment_free configuration (arg 'tiny': smoke run)."""
  config = base.get_config()
  config.model = 'ctc_small'
  config.batch_size = 64
  config.learning_rate = 0.001
  config.weight_decay = 0.0001
  config.num_epochs = 45
  config.loss = 'ctc'
  config.optimizer = 'adamw'
  config.schedule = 'cosine'
  config.warmup_epochs = 3.0
  config.min_lr = 1e-06
  return base.shrink_if_tiny(config, arg)
