"""Reads whole pages (images, multi-page TIFF, PDF) into text, hOCR, JSON
and searchable PDF.

  python -m ocr_jax.read_pages --model=MODEL [--detector=DETECTOR] \\
      --output_dir=DIR [--format=txt,hocr,pdf,json] [--dpi=200] FILE...

MODEL is a line model: a training run folder, an exported .ocrx file or a
pretrained name (as for `ocr_jax.predict`). DETECTOR is a run folder of
the line detector (`ocr_jax.pages.train_detector`) or its weights file;
without it, the shipped detector (`ocr_jax.pretrained`). For each FILE
(folders: their files in sorted name order) DIR gets FILE's base name with
the extension of each format: .txt, .hocr, .json, .pdf (the page images
with an invisible, selectable text layer). One progress bar counts pages.

Exit status: 0 when every page was read, 3 when some files or pages could
not be (the others are still read and written; each failure is reported on
stderr), 1 when a model cannot be loaded, 2 on a usage error.
"""

from collections.abc import Sequence
import os
import sys

from absl import app
from absl import flags
import tqdm

from ocr_jax.data import image_io
from ocr_jax.pages import detector as detector_lib
from ocr_jax.pages import inputs
from ocr_jax.pages import outputs
from ocr_jax.pages import page_reader
from ocr_jax.reading import load

EXIT_OK = 0
EXIT_LOAD_ERROR = 1
EXIT_USAGE = 2
EXIT_SOME_FAILED = 3
FORMATS = ('txt', 'hocr', 'pdf', 'json')


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines this command's flags (on the global FLAGS when run)."""
  flags.DEFINE_string('model', None, 'The line model: run folder, .ocrx '
                      'file or pretrained name.', flag_values=flag_values)
  flags.DEFINE_string('detector', None, 'The line detector: a run folder or '
                      'a weights file (default: the shipped one).',
                      flag_values=flag_values)
  flags.DEFINE_string('output_dir', None, 'Folder for the outputs.',
                      flag_values=flag_values)
  flags.DEFINE_list('format', ['txt'], f'Any of {",".join(FORMATS)}.',
                    flag_values=flag_values)
  flags.DEFINE_integer('dpi', inputs.DEFAULT_DPI, 'PDF rasterisation dpi.',
                       flag_values=flag_values)
  flags.DEFINE_integer('batch_size', 32, 'Lines per model call.',
                       flag_values=flag_values)


def write_outputs(output_dir: str, source: str, pages, images,
                  formats: Sequence[str]) -> list[str]:
  """Writes one file per format for one input; returns their paths."""
  base = os.path.splitext(os.path.basename(source))[0] or 'page'
  written = []
  for kind in formats:
    path = os.path.join(output_dir, f'{base}.{kind}')
    if kind == 'pdf':
      outputs.write_pdf(path, pages, images)
    else:
      text = {'txt': lambda: outputs.to_text(pages),
              'hocr': lambda: outputs.to_hocr(pages, title=source),
              'json': lambda: outputs.to_json(pages, source=source)}[kind]()
      with open(path, 'w', encoding='utf-8', newline='\n') as f:
        f.write(text)
    written.append(path)
  return written


def count_pages(sources) -> int:
  """Pages in all inputs, for the progress bar (read from headers only)."""
  total = 0
  for source in sources:
    if not isinstance(source, (str, os.PathLike)):
      total += 1
    elif inputs.is_pdf(os.fspath(source)):
      total += inputs.count_pdf_pages(os.fspath(source))
    else:
      total += inputs.count_frames(os.fspath(source))
  return total


def main(argv: Sequence[str],
         flag_values: flags.FlagValues = flags.FLAGS) -> int:
  """Reads argv[1:] (the files); returns the exit status."""
  paths = list(argv[1:])
  formats = [f.strip() for f in flag_values.format if f.strip()]
  if not flag_values.model or not flag_values.output_dir or not paths:
    raise app.UsageError('give --model, --output_dir and at '
                         'least one file', exitcode=EXIT_USAGE)
  unknown = set(formats) - set(FORMATS)
  if unknown or not formats:
    raise app.UsageError(f'--format: unknown {sorted(unknown)}; choose from '
                         f'{",".join(FORMATS)}', exitcode=EXIT_USAGE)
  try:
    line_reader = load.load_reader(flag_values.model,
                                   batch_size=flag_values.batch_size)
    detector = detector_lib.load_detector(flag_values.detector)
  except (ValueError, OSError) as e:
    sys.stderr.write(f'error: cannot load a model: {e}\n')
    return EXIT_LOAD_ERROR
  reader = page_reader.PageReader(line_reader, detector)
  os.makedirs(flag_values.output_dir, exist_ok=True)
  sources = image_io.expand_inputs(paths)
  dpi = flag_values.dpi
  failed = 0
  with tqdm.tqdm(total=count_pages(sources), unit='page',
                 file=sys.stderr) as bar:
    for source in sources:
      pages, images = [], []
      is_pdf = (isinstance(source, (str, os.PathLike)) and
                inputs.is_pdf(os.fspath(source)))
      for page in inputs.iter_pages([source], dpi=dpi):
        result = next(reader.read_pages([page],
                                        dpi=dpi if is_pdf else None))
        pages.append(result)
        # Only the PDF output needs the images: keep none otherwise, and
        # keep them compressed, as the PDF will hold them (a raw A4 page at
        # 200 dpi is 11.6 MB; a long PDF would not fit in memory).
        keep = 'pdf' in formats and page.image is not None
        images.append(outputs.encode_page_image(page.image) if keep else None)
        if not result.ok:
          failed += 1
          bar.write(f'error: {result.source} page {result.page_number}: '
                    f'{result.error}')
        bar.update(1)
      write_outputs(flag_values.output_dir,
                    image_io.describe_source(source), pages,
                    images, formats)
  return EXIT_SOME_FAILED if failed else EXIT_OK


if __name__ == '__main__':
  define_flags()
  app.run(main)
