"""Scores a model on labeled images; prints one JSON object.

  python -m ocr_jax.evaluate --model=MODEL --data=DIR [--skip_invalid]
  python -m ocr_jax.evaluate --model=MODEL --tfds=NAME:SPLIT [--data_dir=D]
      [--beam_size=N] [--batch_size=32] [--num_worst=10] [--output=FILE]
      [--lm=LM.npz [--lm_weight=W] [--length_bonus=B]]

MODEL is a training run folder, an exported file or a pretrained name. DIR
holds images and a labels.tsv (see `ocr_jax.data.labeled_folder`; invalid lines
are all reported and stop the run unless --skip_invalid). NAME:SPLIT is a
TFDS dataset of this project (e.g. khmer_digits:test, khmer_text/lines:
validation), read through the training input pipeline with the model's own
config, so the images are those training evaluates on; each is cropped to
its true width and read like a user's image (`Reader.iter_read`, with its
width buckets). --lm, --lm_weight and --length_bonus are `ocr_jax.predict`'s
(a character LM fused into CTC beam search; --beam_size > 1).

The JSON object (stdout, and FILE if given):

  cer, char_accuracy, seq_accuracy, mean_ned, n    over all examples
  by_length     {reference length: {n, cer, char_accuracy, seq_accuracy}}
  worst_errors  [{path, reference, prediction, distance}], worst first
  model, data, beam_size, lm (and lm_weight, length_bonus with --lm),
  seconds, images_per_second

References and predictions are both normalised (`normalize_khmer`) before
scoring (see `ocr_jax.training.metrics.OcrScores`). Exit status 0, 1 if the
model, the LM or the data cannot be loaded, 2 on a usage error (a missing
--model, both or neither of --data and --tfds, a size below 1, --lm with
greedy decoding or a model that is not CTC); a flag absl cannot parse exits
1.

The functions (`evaluate_model`, `evaluate_folder`, `evaluate_tfds`) are
also the library that benchmarks/quantize_benchmark.py scores with.
"""

from collections.abc import Sequence
import contextlib
import heapq
import itertools
import json
import sys
import time
from typing import Any

from absl import app
from absl import flags
import ml_collections
import numpy as np

from ocr_jax import predict
from ocr_jax.data import labeled_folder
from ocr_jax.data import preprocess
from ocr_jax.reading import reader as reader_lib
from ocr_jax.text import khmer_normalizer
from ocr_jax.training import metrics

EXIT_OK = 0
EXIT_LOAD_ERROR = 1
EXIT_USAGE = 2


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines this command's flags (on the global FLAGS when run).

  Not at import: ocr_jax.predict and ocr_jax.export define flags of the
  same names, and tests import all three.
  """
  flags.DEFINE_string('model', None, 'A training run folder, an exported '
                      'file or a pretrained name.', flag_values=flag_values)
  flags.DEFINE_string('data', None, 'A folder of images with labels.tsv.',
                      flag_values=flag_values)
  flags.DEFINE_string('tfds', None, 'A TFDS split, as NAME:SPLIT.',
                      flag_values=flag_values)
  flags.DEFINE_string('data_dir', None, 'TFDS data directory.',
                      flag_values=flag_values)
  flags.DEFINE_integer('beam_size', 1, '1 for greedy decoding, more for beam '
                       'search.', flag_values=flag_values)
  flags.DEFINE_integer('batch_size', 32, 'Images per model call.',
                       flag_values=flag_values)
  flags.DEFINE_integer('num_worst', 10,
                       'How many of the worst errors to list.',
                       flag_values=flag_values)
  flags.DEFINE_bool('skip_invalid', False,
                    'Skip invalid labels.tsv lines with a warning.',
                    flag_values=flag_values)
  flags.DEFINE_string('output', None, 'Also write the JSON here.',
                      flag_values=flag_values)
  predict.define_lm_flags(flag_values)


class _Worst:
  """Keeps the `size` examples with the largest edit distance."""

  def __init__(self, size: int):
    self.size = size
    self._heap = []
    self._count = 0

  def add(self, path, reference, prediction):
    reference = khmer_normalizer.normalize_khmer(reference)
    prediction = khmer_normalizer.normalize_khmer(prediction)
    distance = metrics.edit_distance(reference, prediction)
    if not distance or self.size <= 0:
      return
    self._count += 1
    item = (distance, -self._count, path, reference, prediction)
    if len(self._heap) < self.size:
      heapq.heappush(self._heap, item)
    else:
      heapq.heappushpop(self._heap, item)

  def result(self) -> list[dict[str, Any]]:
    return [{'path': path, 'reference': ref, 'prediction': pred,
             'distance': distance}
            for distance, _, path, ref, pred in sorted(self._heap,
                                                       reverse=True)]


def evaluate_folder(reader: reader_lib.Reader, folder: str, *,
                    beam_size: int = 1, skip_invalid: bool = False,
                    num_worst: int = 10) -> dict[str, Any]:
  """Scores `reader` on a folder with labels.tsv (see module docstring)."""
  examples = labeled_folder.read_labeled_folder(
      folder, reader.spec.vocabulary, skip_invalid=skip_invalid)
  scores, worst = metrics.OcrScores(), _Worst(num_worst)
  failed = []
  results = reader.iter_read([e.path for e in examples], beam_size=beam_size)
  for example, result in zip(examples, results):
    if not result.ok:  # Changed on disk since it was checked.
      failed.append({'path': example.path, 'error': result.error})
    scores.update([example.text], [result.text])
    worst.add(example.path, example.text, result.text)
  report = scores.result()
  report['worst_errors'] = worst.result()
  if failed:
    report['failed_reads'] = failed
  return report


def evaluate_tfds(reader: reader_lib.Reader, name_split: str, *,
                  data_dir: str | None = None, beam_size: int = 1,
                  num_worst: int = 10) -> dict[str, Any]:
  """Scores `reader` on a TFDS split through the training input pipeline."""
  from ocr_jax.data import input_pipeline  # Heavy and optional: only --tfds.
  if ':' not in name_split:
    raise ValueError(f'--tfds wants NAME:SPLIT, got {name_split!r}')
  name, split = name_split.rsplit(':', 1)
  config = ml_collections.ConfigDict(dict(reader.spec.config))
  config.dataset = name
  config.eval_batch_size = reader.batch_size
  vocab = reader.spec.vocabulary
  dataset = input_pipeline.create_eval_dataset(
      config, split, data_dir=data_dir or config.get('data_dir'))
  scores, worst = metrics.OcrScores(), _Worst(num_worst)
  examples = _cropped_examples(dataset)
  # As many lines at a time as the reader sorts into width buckets at once.
  chunk = reader.batch_size * reader_lib.CHUNK_BATCHES
  index = 0
  while part := list(itertools.islice(examples, chunk)):
    results = reader.iter_read([image for _, image in part],
                               beam_size=beam_size)
    for (labels, _), result in zip(part, results):
      reference = vocab.decode(labels)
      scores.update([reference], [result.text])
      worst.add(f'{name_split}[{index}]', reference, result.text)
      index += 1
  report = scores.result()
  report['worst_errors'] = worst.result()
  return report


def _cropped_examples(dataset):
  """(labels, uint8 image cropped to its true width) of each real example.

  The image as pixels (`preprocess.to_uint8`; the reader standardizes them
  back to the pipeline's floats exactly), without the padding to the
  config's full width.
  """
  for batch in dataset:
    for row in np.flatnonzero(np.asarray(batch['_mask'], bool)):
      width = int(batch['width'][row])
      yield (batch['labels'][row],
             preprocess.to_uint8(batch['image'][row, :, :width]))


def evaluate_model(reader: reader_lib.Reader, *, data: str | None = None,
                   tfds_split: str | None = None,
                   data_dir: str | None = None, beam_size: int = 1,
                   skip_invalid: bool = False,
                   num_worst: int = 10) -> dict[str, Any]:
  """Scores on a labeled folder (`data`) or a TFDS split (`tfds_split`)."""
  if bool(data) == bool(tfds_split):
    raise ValueError('give exactly one of data and tfds_split')
  if data:
    return evaluate_folder(reader, data, beam_size=beam_size,
                           skip_invalid=skip_invalid, num_worst=num_worst)
  return evaluate_tfds(reader, tfds_split, data_dir=data_dir,
                       beam_size=beam_size, num_worst=num_worst)


def _finite(value):
  """NaN and infinities (scores over no examples) become null in JSON."""
  if isinstance(value, dict):
    return {k: _finite(v) for k, v in value.items()}
  if isinstance(value, list):
    return [_finite(v) for v in value]
  if isinstance(value, float) and not np.isfinite(value):
    return None
  return value


def main(argv: Sequence[str],
         flag_values: flags.FlagValues = flags.FLAGS) -> int:
  """Runs the command line; returns the exit status."""
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}',
                         exitcode=EXIT_USAGE)
  args = flag_values
  if not args.model or bool(args.data) == bool(args.tfds):
    raise app.UsageError('give --model and exactly one of --data and --tfds',
                         exitcode=EXIT_USAGE)
  if args.beam_size < 1 or args.batch_size < 1:
    raise app.UsageError('--beam_size and --batch_size must be >= 1',
                         exitcode=EXIT_USAGE)
  # Only the JSON object goes to stdout: anything else printed on the way
  # (e.g. TFDS building a dataset) goes to stderr.
  with contextlib.redirect_stdout(sys.stderr):
    reader = predict.load_reader(args)
    if reader is None:
      return EXIT_LOAD_ERROR
    start = time.perf_counter()
    try:
      report = evaluate_model(reader, data=args.data, tfds_split=args.tfds,
                              data_dir=args.data_dir,
                              beam_size=args.beam_size,
                              skip_invalid=args.skip_invalid,
                              num_worst=args.num_worst)
    except (labeled_folder.LabeledFolderError, ValueError, OSError) as e:
      sys.stderr.write(f'error: {e}\n')
      return EXIT_LOAD_ERROR
  seconds = time.perf_counter() - start
  report.update(model=args.model, data=args.data or args.tfds,
                beam_size=args.beam_size, lm=args.lm,
                seconds=round(seconds, 3),
                images_per_second=round(report['n'] / max(seconds, 1e-9), 2))
  if args.lm:
    report.update(lm_weight=args.lm_weight, length_bonus=args.length_bonus)
  text = json.dumps(_finite(report), ensure_ascii=False, default=float)
  if args.output:
    with open(args.output, 'w', encoding='utf-8') as f:
      f.write(text + '\n')
  sys.stdout.write(text + '\n')
  return EXIT_OK


if __name__ == '__main__':
  define_flags()
  app.run(main)
