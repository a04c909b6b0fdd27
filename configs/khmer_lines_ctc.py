"""khmer_lines_ctc: printed Khmer text lines, CNN + BiLSTM + CTC (issue #11).

Trains `line_ctc` (ResNet of 32-256 channels keeping one frame per 4 px of
width, 2-layer BiLSTM of 256 units, CTC head; 5.6 M parameters) on synthetic
lines rendered on the fly (`ocr_jax.data.synth_lines`: every trained font
family, the degradations of issue #11), batched by width
(`ocr_jax.data.line_pipeline`). The run is meant to be long and resumed
across sessions: batch k depends only on (seed, k), the learning rate warms
up for an epoch and then follows a cosine over 200 epochs (nearly constant
for the first tens), a checkpoint is written every epoch, and early stopping
is off. Validation is the character error rate over fixed validation lines
of every tier (clean, scan, long) in trained and in held-out fonts; each
set's CER is logged too (val_<tier>[_heldout]_cer).

Command:
  python -m ocr_jax.main --config=configs/khmer_lines_ctc.py \\
      --workdir=runs/khmer_lines_ctc
  (rerun the same command to resume; append `:tiny` to the config path
  for a smoke run of about 20 s)

Expected on 2 CPU cores:
  time:     a training step (batch 32, 48 x 768 px, bfloat16) measured at
            1.77 s on a quiet machine (benchmarks/model_step_benchmark.py)
            and 4.2 s on average over the real width buckets with the
            machine shared (load 4.5; benchmarks/line_pipeline_benchmark.py,
            mean bucket about 660 px). So an epoch of 500 steps (16,000
            lines) takes 15-35 min plus about a minute of validation, and
            the 200 configured epochs (100,000 steps, 3.2 M lines) 50-120 h,
            resumed across sessions. The first steps also compile each of
            the 12 bucket widths once (about 10 s each).
  data:     rendering costs about 5 ms of CPU per line (180 lines/s in one
            process); one worker keeps up with the step (data wait 0.8 %
            of the time, benchmarks/results/line_pipeline.json).
  accuracy: validation CER 0.93, 0.347 and 0.212 after epochs 1-3
            (first session); warm-started from those weights, 0.173,
            0.138, 0.113 and 0.102 after 4 more epochs (second session,
            10-12 min an epoch with the machine to itself; clean 0.066,
            scan 0.225, long 0.059). The shipped khmer-text is that last
            state (README: test CER 0.106 against Tesseract's 0.234). The
            targets of issue #11 (clean CER 0.015) are still far off.
Where the run folder is gone, continue from the committed weights:
  --config.init_from=warm_start/khmer_lines_ctc.msgpack (warm_start/README.md)
"""

from configs import base


def get_config(arg=None):
  """Returns the khmer_lines_ctc configuration (arg 'tiny': smoke run)."""
  config = base.get_config()
  # --- Data: synthetic lines (ocr_jax.data.line_pipeline) ---
  config.dataset = 'synth_lines'
  config.vocabulary = 'khmer'
  config.image_height = 48
  # The widest bucket; a longer line is squeezed to it.
  config.image_width = 1536
  config.max_label_length = 192
  config.augment = False  # The degradations are part of synth_lines.
  # Processes rendering training lines ahead of the step (0: in the
  # training process).
  config.data_workers = 1
  # Batch widths are multiples of this (and image_width): 12 shapes.
  config.bucket_step = 128
  # Global batches rendered, sorted by width and cut together.
  config.bucket_chunk_batches = 8
  # Fixed evaluation lines per tier and font group (6 sets per split).
  config.eval_lines_per_set = 64
  config.eval_tiers = ('clean', 'scan', 'long')
  config.eval_seed = 0

  # --- Model and loss ---
  config.model = 'line_ctc'
  config.loss = 'ctc'
  config.dtype = 'bfloat16'
  config.dropout_rate = 0.1

  # --- Optimisation: long, resumable ---
  config.batch_size = 32
  config.eval_batch_size = 64
  config.steps_per_epoch = 500
  config.num_epochs = 200
  config.optimizer = 'adamw'
  config.learning_rate = 1e-3
  config.weight_decay = 1e-4
  config.grad_clip_norm = 1.0
  # Warmup, then a cosine over the whole (long) run: nearly constant for
  # its first tens of epochs. Changing num_epochs changes the schedule.
  config.schedule = 'cosine'
  config.warmup_epochs = 1.0
  config.min_lr = 1e-5

  # --- Evaluation, checkpoints ---
  config.monitor_metric = 'cer'
  config.monitor_mode = 'min'
  config.early_stopping_patience = 0
  config.checkpoint_every_epochs = 1
  config.keep_checkpoints = 3
  config.log_every_steps = 50
  config.seed = 0
  config = base.shrink_if_tiny(config, arg)
  if arg == 'tiny':
    # Full-size lines (long ones need the width), one shape to compile.
    config.model = 'tiny_line_ctc'
    config.data_workers = 0
    config.bucket_step = config.image_width
    config.bucket_chunk_batches = 2
    config.eval_lines_per_set = 2
    config.eval_batch_size = 8
  return config
