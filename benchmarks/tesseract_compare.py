"""ocr_jax against Tesseract 5 (`khm`) on the same rendered Khmer test lines.

  python -m benchmarks.tesseract_compare --model=khmer-text \\
      [--lines_per_set=50] [--seed=0] [--output=FILE]
  python -m benchmarks.tesseract_compare --data=DIR[,DIR...] --output=FILE

With --data, the lines are instead the images of labelled folders
(`labels.tsv`, as `ocr_jax.evaluate --data`), grouped by folder: real
scans and photos.

The test lines come from `ocr_jax.data.synth_lines.make_sample` on the
corpus's test split (text never trained on), in six sets: each tier
('clean', 'scan': low resolution, blur, JPEG, bitonal..., 'long': 70-130+
characters) in the trained font families and in the held-out ones. Every
line is written as a PNG file, then read by both systems from the files:

  ocr_jax    `load.load_reader(--model).read(paths)`, batched (--batch_size)
  ocr_jax_lm the same reader with CTC beam search (--beam_size) and the
             character LM --lm fused in (skipped with --lm='')
  tesseract  `tesseract IMG stdout -l khm --psm 7`, one process per line

Both outputs and the labels go through `normalize_khmer` before scoring.
Reported, overall, per set, per tier and per font family (held-out ones
marked): CER, exact-line accuracy, lines/s (ocr_jax's on a second pass,
after a first that compiles its shapes: `first_pass_s`); the batch-1 time
of one line about 1,000 px wide for both. Both run in the same process on the
same machine, so their ratio is meaningful even where the machine's speed
is not. Without Tesseract (or its `khm` data) the comparison says so and
reports ocr_jax alone. Prints a table and writes JSON
(benchmarks/results/tesseract_compare.json by default).
"""

import collections
import json
import os
import tempfile
import time

from absl import app
from absl import flags
from PIL import Image

from benchmarks import machine
from benchmarks import tesseract
from ocr_jax.data import labeled_folder
from ocr_jax.data import synth_lines
from ocr_jax.reading import load
from ocr_jax.text import khmer_normalizer
from ocr_jax.training import metrics

TIERS = ('clean', 'scan', 'long')

_MODEL = flags.DEFINE_string('model', 'khmer-text', 'Run folder, .ocrx or '
                             'shipped model name.')
_LINES = flags.DEFINE_integer('lines_per_set', 50, 'Lines per (tier, font '
                              'group) set.')
_SEED = flags.DEFINE_integer('seed', 20261202, 'Seed of the test lines.')
_BATCH = flags.DEFINE_integer('batch_size', 32, 'ocr_jax batch size.')
_DATA = flags.DEFINE_list('data', None, 'Labelled folders to read instead '
                          'of the rendered test lines.')
_TESSERACT = flags.DEFINE_string('tesseract', 'tesseract', 'Tesseract '
                                 'binary.')
_LM = flags.DEFINE_string('lm', 'khmer', "Also read with this character LM "
                          "in the beam ('khmer': the shipped one; '': skip).")
_BEAM = flags.DEFINE_integer('beam_size', 8, 'Beam width with --lm.')
_OUTPUT = flags.DEFINE_string(
    'output', os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           'results', 'tesseract_compare.json'),
    'JSON output path.')


def write_test_lines(folder: str, lines_per_set: int, seed: int) -> list:
  """Renders the six test sets to PNG files; returns one record per line."""
  records = []
  for tier in TIERS:
    for held_out in (False, True):
      for index in range(lines_per_set):
        sample = synth_lines.make_sample(seed, index, 'test',
                                         held_out_fonts=held_out, tier=tier)
        name = f'{tier}_{"heldout" if held_out else "trained"}_{index:04d}'
        path = os.path.join(folder, name + '.png')
        Image.fromarray(sample.image).save(path)
        records.append({'path': path, 'text': sample.text, 'tier': tier,
                        'held_out': held_out, 'family': sample.family,
                        'width': int(sample.image.shape[1])})
  return records


def labelled_lines(folders) -> list:
  """One record per image of labelled folders (tier: the folder's name)."""
  records = []
  for folder in folders:
    name = os.path.basename(os.path.normpath(folder))
    for item in labeled_folder.read_labeled_folder(folder):
      with Image.open(item.path) as image:
        width = image.width
      records.append({'path': item.path, 'text': item.text, 'tier': name,
                      'held_out': True, 'family': name, 'width': width})
  return records


def score(records, key: str) -> dict:
  """CER, exact-line accuracy and counts of `key` predictions by group."""
  groups = collections.defaultdict(list)
  for record in records:
    groups['all'].append(record)
    groups[f'tier:{record["tier"]}'].append(record)
    held = 'held_out' if record['held_out'] else 'trained'
    groups[f'set:{record["tier"]}/{held}'].append(record)
    family = record['family'] + (' (held out)' if record['held_out'] else '')
    groups[f'font:{family}'].append(record)
  table = {}
  for name, members in sorted(groups.items()):
    scores = metrics.OcrScores()
    scores.update([m['text'] for m in members], [m[key] for m in members])
    result = scores.result()
    table[name] = {'n': result['n'], 'cer': result['cer'],
                   'exact': result['seq_accuracy']}
  return table


def time_reads(read_all, records) -> float:
  start = time.perf_counter()
  read_all(records)
  return len(records) / (time.perf_counter() - start)


def main(argv):
  del argv
  reader = load.load_reader(_MODEL.value, batch_size=_BATCH.value)
  missing = tesseract.missing(_TESSERACT.value)
  with tempfile.TemporaryDirectory() as folder:
    if _DATA.value:
      records = labelled_lines(_DATA.value)
    else:
      records = write_test_lines(folder, _LINES.value, _SEED.value)
    paths = [r['path'] for r in records]
    # A first pass compiles every (batch, width bucket) shape the lines
    # need (seconds each, once per process); the timed pass is the second.
    start = time.perf_counter()
    reader.read(paths)
    warmup_s = time.perf_counter() - start

    def read_ocr_jax(chunk):
      for record, result in zip(chunk, reader.read([r['path']
                                                    for r in chunk])):
        record['ocr_jax'] = khmer_normalizer.normalize_khmer(result.text)

    def read_tesseract(chunk):
      for record in chunk:
        record['tesseract'] = khmer_normalizer.normalize_khmer(
            tesseract.read(record['path'], binary=_TESSERACT.value))

    report = {'model': _MODEL.value, 'data': _DATA.value,
              'lines_per_set': _LINES.value,
              'seed': _SEED.value, 'machine': machine.machine_info(),
              'ocr_jax': {'lines_per_s': time_reads(read_ocr_jax, records),
                          'first_pass_s': warmup_s}}
    # One line about 1,000 px wide, read alone (batch 1), best of 3.
    long_line = min(records, key=lambda r: abs(r['width'] - 1000))
    report['line_1000px'] = {'width': long_line['width']}
    reader.read(long_line['path'])
    report['line_1000px']['ocr_jax_s'] = min(
        1.0 / time_reads(read_ocr_jax, [long_line]) for _ in range(3))
    report['ocr_jax']['scores'] = score(records, 'ocr_jax')
    if _LM.value:
      # The same reader: the LM only changes beam search (beam_size > 1),
      # whose frame functions the first, untimed pass compiles.
      reader.use_lm(_LM.value)
      reader.read(paths, beam_size=_BEAM.value)

      def read_ocr_jax_lm(chunk):
        results = reader.read([r['path'] for r in chunk],
                              beam_size=_BEAM.value)
        for record, result in zip(chunk, results):
          record['ocr_jax_lm'] = khmer_normalizer.normalize_khmer(result.text)

      report['ocr_jax_lm'] = {
          'lm': _LM.value, 'beam_size': _BEAM.value,
          'lm_weight': reader.lm_weight,
          'length_bonus': reader.length_bonus,
          'lines_per_s': time_reads(read_ocr_jax_lm, records),
          'scores': score(records, 'ocr_jax_lm')}
    if missing:
      report['tesseract'] = {'skipped': missing}
    else:
      report['tesseract'] = {
          'lines_per_s': time_reads(read_tesseract, records),
          'scores': score(records, 'tesseract')}
      report['line_1000px']['tesseract_s'] = min(
          1.0 / time_reads(read_tesseract, [long_line]) for _ in range(3))
      report['speed_ratio'] = (report['ocr_jax']['lines_per_s'] /
                               report['tesseract']['lines_per_s'])
  if _DATA.value:  # A few real lines: keep every reading.
    report['readings'] = [
        {key: record.get(key) for key in ('path', 'text', 'ocr_jax',
                                          'ocr_jax_lm', 'tesseract')}
        for record in records]
  print_table(report)
  os.makedirs(os.path.dirname(_OUTPUT.value) or '.', exist_ok=True)
  with open(_OUTPUT.value, 'w', encoding='utf-8') as f:
    json.dump(report, f, indent=1, ensure_ascii=False)


def print_table(report) -> None:
  ours = report['ocr_jax']['scores']
  with_lm = report.get('ocr_jax_lm', {}).get('scores', {})
  theirs = report['tesseract'].get('scores', {})
  nan = {'cer': float('nan'), 'exact': float('nan')}
  print(f'{"group":40s} {"n":>4s} {"ocr_jax CER":>11s} {"exact":>6s} '
        f'{"+LM CER":>8s} {"exact":>6s} {"tess CER":>9s} {"exact":>6s}')
  for name, row in ours.items():
    lm_row, other = with_lm.get(name, nan), theirs.get(name, nan)
    print(f'{name:40s} {row["n"]:4d} {row["cer"]:11.4f} {row["exact"]:6.3f} '
          f'{lm_row["cer"]:8.4f} {lm_row["exact"]:6.3f} '
          f'{other["cer"]:9.4f} {other["exact"]:6.3f}')
  print('lines/s: ocr_jax %.1f, with LM %s, tesseract %s' % (
      report['ocr_jax']['lines_per_s'],
      report.get('ocr_jax_lm', {}).get('lines_per_s', 'skipped'),
      report['tesseract'].get('lines_per_s',
                              report['tesseract'].get('skipped'))))
  print('1000 px line, batch 1:', json.dumps(report['line_1000px']))


if __name__ == '__main__':
  app.run(main)
