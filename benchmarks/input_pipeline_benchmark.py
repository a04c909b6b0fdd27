r"""Times the training input pipeline on khmer_digits, augmentation on.

The pipeline is `input_pipeline.create_train_iterator` on the fields of
configs/conservative_small.py (the shipped model's run), with --batch_size
and --augment applied.

  python -m benchmarks.input_pipeline_benchmark --data_dir=/tmp/tfds \
      [--batch_size=64] [--windows=7] [--window_seconds=3] [--no_augment]

Builds khmer_digits into --data_dir when it is missing (and reports the
build time), warms the iterator up for one pass over the data (the decoded
cache fills), then times --windows windows of --window_seconds each and
reports the median images/s. It also reports the CPU time the process
spent per image and the cores it got, which tell how busy the machine was:
on a shared 2-core machine other jobs take cores away, and the wall-clock
rate is (cores used) / (CPU time per image). Results go to --output as JSON
with the machine description (load average included).
"""

import json
import os
import statistics
import time

from absl import app
from absl import flags
import tensorflow as tf

from benchmarks import machine
from configs import conservative_small
from ocr_jax.data import input_pipeline

_DATA_DIR = flags.DEFINE_string('data_dir', None,
                                'TFDS data dir (None: ~/tensorflow_datasets).')
_BATCH = flags.DEFINE_integer('batch_size', 64, 'Batch size.')
_WINDOWS = flags.DEFINE_integer('windows', 7, 'Timed windows.')
_WINDOW_SECONDS = flags.DEFINE_float('window_seconds', 3.0,
                                     'Length of one timed window.')
_AUGMENT = flags.DEFINE_bool('augment', True, 'Augment (the target case).')
_OUTPUT = flags.DEFINE_string(
    'output', os.path.join(os.path.dirname(__file__), 'results',
                           'input_pipeline.json'), 'JSON output path.')


def time_windows(iterator, batch_size: int, windows: int,
                 seconds: float) -> tuple[list[float], float, float]:
  """Images/s of each window, CPU ms per image and CPU cores used."""
  rates, images = [], 0
  cpu_start, wall_start = machine.cpu_seconds(), time.perf_counter()
  for _ in range(windows):
    start, count = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
      next(iterator)
      count += batch_size
    rates.append(count / (time.perf_counter() - start))
    images += count
  cpu = machine.cpu_seconds() - cpu_start
  return (rates, 1000.0 * cpu / images,
          cpu / (time.perf_counter() - wall_start))


def main(argv):
  del argv
  # The pipeline of the shipped model's training run.
  config = conservative_small.get_config()
  config.batch_size = _BATCH.value
  config.eval_batch_size = _BATCH.value
  config.augment = _AUGMENT.value
  start = time.perf_counter()
  builder = input_pipeline.ensure_built(config, _DATA_DIR.value)
  build_seconds = time.perf_counter() - start
  num_train = builder.info.splits['train'].num_examples
  iterator = input_pipeline.create_train_iterator(config,
                                                  data_dir=_DATA_DIR.value)
  start = time.perf_counter()
  for _ in range(num_train // _BATCH.value + 5):  # One pass: cache filled.
    next(iterator)
  warmup_seconds = time.perf_counter() - start
  rates, cpu_ms, cores = time_windows(iterator, _BATCH.value,
                                      _WINDOWS.value, _WINDOW_SECONDS.value)
  result = {
      'dataset': 'khmer_digits', 'augment': _AUGMENT.value,
      'batch_size': _BATCH.value,
      'images_per_second_median': statistics.median(rates),
      'images_per_second_windows': rates,
      'cpu_ms_per_image': cpu_ms,
      # What the CPU time allows on every core of this machine, if idle.
      'images_per_second_all_cores_idle': (
          1000.0 / cpu_ms * (os.cpu_count() or 1)),
      'cpu_cores_used': cores,
      'build_or_load_seconds': build_seconds,
      'warmup_seconds': warmup_seconds,
      'machine': {**machine.machine_info(), 'tensorflow': tf.__version__},
  }
  print(f"khmer_digits train pipeline, augment={_AUGMENT.value}, batch "
        f"{_BATCH.value}: {result['images_per_second_median']:.0f} images/s "
        f"(median of {len(rates)} windows: "
        f"{', '.join(f'{r:.0f}' for r in rates)}); "
        f'{cpu_ms:.3f} CPU ms per image, {cores:.2f} cores used')
  print(f"machine: {result['machine']}")
  os.makedirs(os.path.dirname(os.path.abspath(_OUTPUT.value)), exist_ok=True)
  with open(_OUTPUT.value, 'w', encoding='utf-8') as f:
    json.dump(result, f, indent=2)
  print(f'wrote {_OUTPUT.value}')


if __name__ == '__main__':
  app.run(main)
