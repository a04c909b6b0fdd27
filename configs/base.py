"""Every configuration field of ocr_jax, with its default.

Experiment files import this module and override a handful of fields. Any
field can be overridden on the command line, e.g.
  python -m ocr_jax.main --config=configs/base.py --workdir=/tmp/run \\
      --config.batch_size=16
A misspelt key is rejected by ml_collections with its name.

`--config=configs/base.py:tiny` gives a smoke run (tiny model, 2 epochs of 4
steps of 8 images), as used by the tests; any experiment file takes `:tiny`
too.

Command:
  python -m ocr_jax.main --config=configs/base.py:tiny --workdir=/tmp/smoke

Expected on 2 CPU cores:
  time:     1-2 min (125 s measured while other jobs shared the cores),
            plus about 15 s to build khmer_digits on first use
  accuracy: none to speak of (8 steps of a tiny model); it checks that
            training, evaluation, checkpoints and results.json work.
The defaults without `:tiny` (small model, Adam at 1e-3, constant schedule,
50 epochs with early stopping) have not been run as such; the nearest
measured run is configs/conservative_small.py (about 40 s/epoch, 27 min,
99.8 % test character accuracy; docs/results.md). The prototype study that
these fields follow is docs/prototype.md.
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the default configuration; `arg='tiny'` shrinks it for tests."""
  config = ml_collections.ConfigDict()

  # --- Data ---
  # TFDS dataset name (optionally 'name/config'), built on first use.
  config.dataset = 'khmer_digits'
  # Corpus file for khmer_text; None: the corpus shipped with the package
  # (ocr_jax/data/corpus), '': the procedural syllable generator.
  config.corpus_path = ml_collections.config_dict.placeholder(str)
  # TFDS data directory; None means ~/tensorflow_datasets.
  config.data_dir = ml_collections.config_dict.placeholder(str)
  # Vocabulary name in ocr_jax.text.charset: 'digits' or 'khmer'.
  config.vocabulary = 'digits'
  # Image height in pixels fed to the model.
  config.image_height = 64
  # Image width in pixels (the maximum width for variable-width data).
  config.image_width = 128
  # Longest label in characters (the decoder runs one more step for EOS).
  config.max_label_length = 8
  # Apply on-the-fly augmentation to training images.
  config.augment = True
  # Shuffle buffer of the training pipeline, in examples.
  config.shuffle_buffer = 4000
  # Split names used for training, validation and the final test.
  config.train_split = 'train'
  config.eval_split = 'validation'
  config.test_split = 'test'

  # --- Model ---
  # Preset name in ocr_jax.models.PRESETS (small, medium, large, ctc_small...).
  config.model = 'small'
  # Dropout rate everywhere in the model.
  config.dropout_rate = 0.1
  # Computation dtype: 'bfloat16' (mixed precision: float32 parameters, loss
  # and optimizer, float32 LSTMs on CPU; a conservative_small step takes
  # 25 % less time than in float32, benchmarks/results/model_step*.json) or
  # 'float32'.
  config.dtype = 'bfloat16'
  # Platform the model computes for (ocr_jax.models.backend): 'auto' (this
  # process's jax backend), 'cpu' (im2col convolutions, float32 LSTMs...) or
  # 'gpu'/'cuda'/'rocm'/'tpu' (plain XLA). Never changes the parameters.
  config.backend = 'auto'

  # --- Loss ---
  # 'cross_entropy' or 'focal' for attention models; CTC models use 'ctc'.
  config.loss = 'cross_entropy'
  # Label smoothing of the cross-entropy loss.
  config.label_smoothing = 0.0
  # Weight of an auxiliary CTC loss (per character) on the encoder of
  # attention models (joint CTC-attention); it aligns the encoder early and
  # shortens the decoder's plateau. 0 trains the decoder alone.
  config.ctc_aux_weight = 0.2
  # Focal loss alpha and gamma.
  config.focal_alpha = 1.0
  config.focal_gamma = 2.0

  # --- Optimisation ---
  # Global batch size (split over processes and devices).
  config.batch_size = 32
  # Evaluation batch size.
  config.eval_batch_size = 128
  # Number of training epochs.
  config.num_epochs = 50
  # Steps per epoch; -1 derives it from the train split size.
  config.steps_per_epoch = -1
  # Peak learning rate.
  config.learning_rate = 1e-3
  # 'adam' (weight decay as L2, like PyTorch) or 'adamw' (decoupled).
  config.optimizer = 'adam'
  # Adam moment decay rates.
  config.adam_b1 = 0.9
  config.adam_b2 = 0.999
  # Weight decay coefficient.
  config.weight_decay = 1e-4
  # Global-norm gradient clipping; 0 disables it.
  config.grad_clip_norm = 1.0
  # Learning-rate schedule: 'constant', 'cosine', 'step' or 'plateau'.
  config.schedule = 'constant'
  # Linear warmup length in epochs (cosine).
  config.warmup_epochs = 0.0
  # Floor of the learning rate (cosine end value, plateau minimum).
  config.min_lr = 1e-6
  # Step schedule: multiply by step_decay_factor every step_decay_epochs.
  config.step_decay_epochs = 10
  config.step_decay_factor = 0.5
  # Reduce-on-plateau, driven by the early-stopping metric.
  config.plateau_patience = 5
  config.plateau_factor = 0.5
  config.plateau_min_delta = 1e-4

  # --- Evaluation, early stopping, checkpoints, logging ---
  # Validation metric monitored for early stopping, plateau and best ckpt.
  config.monitor_metric = 'char_accuracy'
  # 'max' or 'min': the direction in which monitor_metric improves (for
  # early stopping, the plateau schedule and the best checkpoint alike).
  config.monitor_mode = 'max'
  # Stop after this many evaluations without improvement; 0 disables.
  config.early_stopping_patience = 8
  # Smallest change of the monitored metric that counts as improvement.
  config.early_stopping_min_delta = 1e-3
  # Save a checkpoint every this many epochs (and at the end).
  config.checkpoint_every_epochs = 5
  # Also save one every this many steps inside epochs (0 = off), for exact
  # resume after preemption; SIGTERM always saves one.
  config.checkpoint_every_steps = 0
  # Keep this many recent checkpoints (the best one is kept besides).
  config.keep_checkpoints = 3
  # Write training metrics every this many steps.
  config.log_every_steps = 25
  # Beam size for the final validation and test evaluation (1 = greedy).
  config.beam_size = 1
  # Number of sample predictions written to TensorBoard and samples.png.
  config.num_samples = 16
  # Warm start (a new run only, not a resume): a run folder or a weights file
  # (ocr_jax.training.warm_start) whose weights of matching path and shape
  # replace the initial ones; None starts from random weights.
  config.init_from = ml_collections.config_dict.placeholder(str)
  # Random seed for parameters, dropout and data order.
  config.seed = 0

  return shrink_if_tiny(config, arg)


def shrink_if_tiny(config: ml_collections.ConfigDict,
                   arg: str | None) -> ml_collections.ConfigDict:
  """With arg 'tiny', keeps the experiment's recipe on a 1-2 min run."""
  if not arg:
    return config
  if arg != 'tiny':
    raise ValueError(f"unknown config argument {arg!r}; valid: 'tiny'")
  config.model = 'tiny_ctc' if config.loss == 'ctc' else 'tiny'
  config.num_epochs = 2
  config.steps_per_epoch = 4
  config.batch_size = 8
  config.eval_batch_size = 64
  config.log_every_steps = 2
  config.checkpoint_every_epochs = 1
  config.warmup_epochs = min(config.warmup_epochs, 1.0)
  return config
