"""A folder of line images with a labels.tsv: validated for scoring or training.

Layout:

  my_lines/
    labels.tsv      one `filename<TAB>text` per line, UTF-8
    0001.png        any format and mode `ocr_jax.data.image_io` reads
    scans/0002.jpg  filenames are relative to the folder

labels.tsv may start with a `filename<TAB>text` (or `path<TAB>text`) header;
blank lines and lines starting with `#` are ignored. Labels are normalised
with `ocr_jax.text.khmer_normalizer.normalize_khmer`.

`read_labeled_folder` checks every line and reports ALL problems at once, each
with its line number, in one `LabeledFolderError`: a line without a tab, a
missing or unreadable image, a file listed twice, an empty label, characters
outside the vocabulary, a label longer than the model's maximum. With
`skip_invalid=True` the bad lines are logged as one warning and left out.

To score a model on such a folder: `python -m ocr_jax.evaluate --model=...
--data=my_lines`.

To train or fine-tune on labeled folders, turn them into a TFDS dataset
once; the training input pipeline then reads it like the built-in ones
(same batch dict: image, width, labels, label_length, _mask; same
augmentation), with no change to the training code:

  python -m ocr_jax.data.labeled_folder --name=my_lines --data_dir=/data/tfds \
      --vocabulary=khmer --train=lines/train --validation=lines/val \
      --test=lines/test
  python -m ocr_jax.main --config=configs/base.py --workdir=runs/mine \
      --config.dataset=my_lines --config.data_dir=/data/tfds \
      --config.vocabulary=khmer --config.image_width=1024 \
      --config.max_label_length=64 --config.model=text_small

`build_tfds` writes `data_dir/<name>/1.0.0/` with the features of
`khmer_text` (image: PNG uint8 [64, width, 3] resized to the height keeping
the aspect ratio; text; width; length) plus `filename`; `tfds.builder(name,
data_dir=...)` reads it back from its files alone. With `fixed_width`, each
image is instead fitted into height x fixed_width and centred on its border
colour, like the khmer_digits renders.
"""

import dataclasses
import os
import shutil
import sys
from typing import Mapping, Sequence

from absl import app
from absl import flags
from absl import logging
from etils import epath
import numpy as np

from ocr_jax.text import charset
from ocr_jax.data import image_io
from ocr_jax.data import preprocess
from ocr_jax.text import khmer_normalizer

LABELS_FILE = 'labels.tsv'
SPLITS = ('train', 'validation', 'test')
_HEADERS = (('filename', 'text'), ('path', 'text'), ('file', 'text'))


@dataclasses.dataclass(frozen=True)
class LabeledImage:
  """One valid line of labels.tsv."""
  path: str  # The image file (the folder joined with its filename).
  text: str  # The normalised label.
  line: int  # Its line number in labels.tsv (1-based).


class LabeledFolderError(ValueError):
  """labels.tsv has problems; `problems` lists (line number, message)."""

  def __init__(self, labels_path: str, problems: list[tuple[int, str]]):
    self.labels_path = labels_path
    self.problems = problems
    lines = '\n'.join(f'  line {line}: {message}'
                      for line, message in problems)
    super().__init__(f'{labels_path}: {len(problems)} invalid line(s)'
                     f'{"" if problems else " (no labeled images)"}:\n'
                     f'{lines}')


def read_labeled_folder(folder: str,
                        vocabulary: charset.Vocabulary | str | None = None,
                        *, max_length: int | None = None,
                        skip_invalid: bool = False,
                        check_images: bool = True,
                        labels_file: str = LABELS_FILE) -> list[LabeledImage]:
  """Reads and validates `folder/labels.tsv`.

  Args:
    folder: the folder holding the images and labels.tsv.
    vocabulary: a Vocabulary or its name; labels with characters outside it
      are invalid. None accepts any character.
    max_length: labels longer than this many characters are invalid.
    skip_invalid: leave invalid lines out with one warning instead of
      raising.
    check_images: decode every image (catches truncated and corrupt files,
      not only missing ones).
    labels_file: the label file's name inside the folder.

  Returns:
    The valid labeled images in file order.

  Raises:
    LabeledFolderError: some lines are invalid (all are listed), or no valid
      line is left; FileNotFoundError: there is no labels file.
  """
  if isinstance(vocabulary, str):
    vocabulary = charset.get_vocabulary(vocabulary)
  labels_path = os.path.join(folder, labels_file)
  if not os.path.isfile(labels_path):
    raise FileNotFoundError(f'{labels_path} not found: a labeled folder needs '
                            'a labels.tsv of filename<TAB>text lines')
  with open(labels_path, encoding='utf-8-sig') as f:
    try:
      lines = f.read().splitlines()
    except UnicodeDecodeError as e:
      raise LabeledFolderError(labels_path, [(0, f'not UTF-8 text: {e}')]
                               ) from None
  examples, problems = [], []
  seen = {}
  for number, raw in enumerate(lines, 1):
    if not raw.strip() or raw.startswith('#'):
      continue
    if '\t' not in raw:
      problems.append((number, 'expected filename<TAB>text, found no tab'))
      continue
    filename, text = raw.split('\t', 1)
    if number == 1 and (filename.strip().lower(),
                        text.strip().lower()) in _HEADERS:
      continue
    example, problem = _check_line(folder, filename, text, number, vocabulary,
                                   max_length, check_images, seen)
    if problem:
      problems.append((number, problem))
    else:
      examples.append(example)
  if problems and not skip_invalid:
    raise LabeledFolderError(labels_path, problems)
  if problems:
    logging.warning('Skipping %d invalid line(s) of %s:\n%s', len(problems),
                    labels_path, '\n'.join(f'  line {line}: {message}'
                                           for line, message in problems))
  if not examples:
    raise LabeledFolderError(labels_path, problems)
  return examples


def _check_line(folder, filename, text, number, vocabulary, max_length,
                check_images, seen):
  """Returns (LabeledImage, None) or (None, the problem)."""
  filename = filename.strip()
  if not filename:
    return None, 'empty filename'
  path = os.path.join(folder, filename)
  key = os.path.normpath(path)
  if key in seen:
    return None, f'{filename!r} is listed twice (first on line {seen[key]})'
  seen[key] = number
  label = khmer_normalizer.normalize_khmer(text)
  if not label:
    return None, f'empty label for {filename!r}'
  if vocabulary is not None:
    missing = vocabulary.missing(label)
    if missing:
      chars = ', '.join(f'{c!r} (U+{ord(c):04X})' for c in missing[:8])
      if len(missing) > 8:
        chars += f' and {len(missing) - 8} more'
      return None, (f'label {label!r} of {filename!r} has characters outside '
                    f'the {vocabulary.name!r} vocabulary: {chars}')
  if max_length is not None and len(label) > max_length:
    return None, (f'label of {filename!r} is {len(label)} characters long, '
                  f'over the maximum of {max_length}')
  if not os.path.isfile(path):
    return None, (f'image {filename!r} not found' if not os.path.exists(path)
                  else f'{filename!r} is not a file')
  if check_images:
    try:
      image_io.read_image(path)
    except image_io.ImageReadError as e:
      return None, f'unreadable image {filename!r}: {e.reason}'
  return LabeledImage(path=path, text=label, line=number), None


# --- A TFDS dataset from labeled folders (for training) ----------------------


def build_tfds(name: str, splits: Mapping[str, str | Sequence[LabeledImage]],
               *, data_dir: str,
               vocabulary: charset.Vocabulary | str | None = None,
               image_height: int = 64, fixed_width: int | None = None,
               max_length: int | None = None, skip_invalid: bool = False,
               overwrite: bool = False) -> str:
  """Writes labeled folders as the TFDS dataset `name` in data_dir.

  Args:
    name: the dataset name (config.dataset); must not be a registered one.
    splits: split name -> a labeled folder or validated LabeledImages.
    data_dir: the TFDS data directory (config.data_dir).
    vocabulary: checks the labels (see read_labeled_folder).
    image_height: stored image height (the model's config.image_height).
    fixed_width: fit each image into image_height x fixed_width, centred,
      instead of keeping its aspect ratio.
    max_length: longest label allowed.
    skip_invalid: skip invalid lines with a warning instead of raising.
    overwrite: replace an existing dataset of that name.

  Returns:
    The dataset's directory.
  """
  import tensorflow_datasets as tfds  # Heavy: only building a dataset needs it.
  if name in tfds.list_builders():
    raise ValueError(f'{name!r} is a registered TFDS dataset; choose another '
                     'name')
  examples = {
      split: source if not isinstance(source, str) else read_labeled_folder(
          source, vocabulary, max_length=max_length,
          skip_invalid=skip_invalid)
      for split, source in splits.items()}
  builder_class = _builder_class(name)
  builder = builder_class(examples=examples, image_height=image_height,
                          fixed_width=fixed_width, data_dir=data_dir)
  if builder.is_prepared() and overwrite:
    shutil.rmtree(builder.data_dir)
    builder = builder_class(examples=examples, image_height=image_height,
                            fixed_width=fixed_width, data_dir=data_dir)
  elif builder.is_prepared():
    raise FileExistsError(f'{builder.data_dir} exists; pass overwrite=True '
                          '(--overwrite) to replace it')
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      try_download_gcs=False))
  return str(builder.data_dir)


def _builder_class(name: str):
  """A TFDS builder class named `name` (not added to the TFDS registry)."""
  import tensorflow_datasets as tfds  # Heavy: only building a dataset needs it.

  class LabeledFolderBuilder(tfds.core.GeneratorBasedBuilder,
                             skip_registration=True):
    """Examples of validated labeled folders."""

    VERSION = tfds.core.Version('1.0.0')
    RELEASE_NOTES = {'1.0.0': 'Written by ocr_jax.data.labeled_folder.'}

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
      # The default probes the undeclared `importlib_resources` package.
      return epath.Path(__file__)

    def __init__(self, *, examples, image_height, fixed_width, **kwargs):
      self._examples = examples
      self._height = image_height
      self._fixed_width = fixed_width
      super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
      return tfds.core.DatasetInfo(
          builder=self,
          description=f'Labeled image folders written by ocr_jax '
          f'({", ".join(sorted(self._examples))}).',
          features=tfds.features.FeaturesDict({
              'image': tfds.features.Image(
                  shape=(self._height, self._fixed_width, 3),
                  encoding_format='png'),
              'text': tfds.features.Text(),
              'width': tfds.features.Scalar(np.int32),
              'length': tfds.features.Scalar(np.int32),
              'filename': tfds.features.Text(),
          }))

    def _split_generators(self, dl_manager):
      del dl_manager
      return {split: self._generate_examples(items)
              for split, items in self._examples.items()}

    def _generate_examples(self, items):
      for index, item in enumerate(items):
        pixels = image_io.read_image(item.path)
        if self._fixed_width:
          pixels, _ = preprocess.fit_to_canvas(pixels, self._height,
                                               self._fixed_width, False)
        else:
          pixels = preprocess.resize_to_height(pixels, self._height)
        yield index, {'image': pixels, 'text': item.text,
                      'width': np.int32(pixels.shape[1]),
                      'length': np.int32(len(item.text)),
                      'filename': os.path.basename(item.path)}

  return type(name, (LabeledFolderBuilder,),
              {'name': name, '__module__': __name__},
              skip_registration=True)


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines the command line's flags (on the global FLAGS when run).

  Not at import: ocr_jax.evaluate imports this module and has a --data_dir
  of its own.
  """
  flags.DEFINE_string('name', None, 'The dataset name.',
                      flag_values=flag_values)
  flags.DEFINE_string('data_dir', None, 'TFDS data dir.',
                      flag_values=flag_values)
  flags.DEFINE_string('vocabulary', 'khmer', 'Vocabulary checking labels.',
                      flag_values=flag_values)
  flags.DEFINE_integer('image_height', 64, 'Stored image height.',
                       flag_values=flag_values)
  flags.DEFINE_integer('fixed_width', None,
                       'Fit images into height x this width, centred.',
                       flag_values=flag_values)
  flags.DEFINE_integer('max_length', None, 'Longest label allowed.',
                       flag_values=flag_values)
  flags.DEFINE_bool('skip_invalid', False,
                    'Skip invalid labels.tsv lines with a warning.',
                    flag_values=flag_values)
  flags.DEFINE_bool('overwrite', False, 'Replace an existing dataset.',
                    flag_values=flag_values)
  for split in SPLITS:
    flags.DEFINE_string(split, None, f'The {split} folder.',
                        flag_values=flag_values)


def main(argv: Sequence[str],
         flag_values: flags.FlagValues = flags.FLAGS) -> int:
  """Command line: writes labeled folders as a TFDS dataset.

  Returns the exit status: 0, or 1 when a folder is invalid or the dataset
  cannot be written; a usage error (no --name, --data_dir or split) exits 2.
  """
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}', exitcode=2)
  args = flag_values
  splits = {split: args[split].value for split in SPLITS
            if args[split].value}
  if not args.name or not args.data_dir or not splits:
    raise app.UsageError('give --name, --data_dir and at least one of '
                         '--train, --validation, --test', exitcode=2)
  try:
    path = build_tfds(args.name, splits, data_dir=args.data_dir,
                      vocabulary=args.vocabulary,
                      image_height=args.image_height,
                      fixed_width=args.fixed_width,
                      max_length=args.max_length,
                      skip_invalid=args.skip_invalid,
                      overwrite=args.overwrite)
  except (LabeledFolderError, ValueError, OSError) as e:
    sys.stderr.write(f'error: {e}\n')
    return 1
  sys.stdout.write(f'{path}\n')
  return 0


if __name__ == '__main__':
  define_flags()
  app.run(main)
