"""Digit-string readers across font families, held-out ones included.

  python -m benchmarks.digits_fonts \\
      --models=khmer-digits,runs/khmer_digits_wide \\
      [--strings_per_font=200] [--seed=20261202] [--data_dir=D] \\
      [--output=FILE]

Each model (a shipped name, an exported .ocrx file or a run folder; see
`ocr_jax.reading.load.load_reader`) reads the same two sets:

  fonts         Khmer digit strings (1-8 digits) from
                `synth_lines.make_sample(seed, i, 'test', content='digits')`,
                in both tiers ('clean': sharp, varied sizes; 'scan': low
                resolution and degraded), --strings_per_font strings per
                font family and tier, in every installed family: the trained
                ones and `fonts.HELD_OUT_FAMILIES` (never trained on by
                synth-line models; the shipped khmer-digits model saw only 8
                KhmerOS families, so for it every other family is unseen).
                Samples are drawn in index order and kept until each family
                has its count, so a family's faces come with the weights of
                `synth_lines` and the sets are the same for every model.
  khmer_digits  the prototype's TFDS test split (1,000 images of 64 x 128 in
                the 8 KhmerOS fonts), built into --data_dir when missing.

Every image goes through the reader's own preprocessing (`Reader.read` on
the RGB arrays), greedy decoding. Labels and readings go through
`normalize_khmer` before scoring. Reported per model: CER and exact-string
accuracy overall, per group (trained / held-out families), per tier, per
family (held-out ones marked) and per face (JSON only), and on khmer_digits;
plus strings/s. Prints a table and writes JSON
(benchmarks/results/digits_fonts.json by default).
"""

import collections
import json
import os
import time

from absl import app
from absl import flags
import ml_collections
import tensorflow_datasets as tfds

from benchmarks import machine
from ocr_jax.data import fonts
from ocr_jax.data import input_pipeline
from ocr_jax.data import synth_lines
from ocr_jax.reading import load
from ocr_jax.text import khmer_normalizer
from ocr_jax.training import metrics

TIERS = synth_lines.DIGIT_TIERS

_MODELS = flags.DEFINE_list('models', ['khmer-digits'], 'Readers to compare: '
                            'shipped names, .ocrx files or run folders.')
_PER_FONT = flags.DEFINE_integer('strings_per_font', 200, 'Digit strings per '
                                 'font family and tier.')
_SEED = flags.DEFINE_integer('seed', 20261202, 'Seed of the digit strings.')
_BATCH = flags.DEFINE_integer('batch_size', 64, 'Reader batch size.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data directory of '
                                'khmer_digits (None: ~/tensorflow_datasets).')
_OUTPUT = flags.DEFINE_string(
    'output', os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           'results', 'digits_fonts.json'),
    'JSON output path.')


def font_strings(per_font: int, seed: int) -> list[dict]:
  """`per_font` digit strings per family and tier, trained and held out.

  Returns:
    Records {'image', 'text', 'tier', 'held_out', 'family', 'font',
    'index'}, in the order they were drawn.
  """
  records = []
  for held_out in (False, True):
    families = fonts.families(held_out)
    for tier in TIERS:
      counts = collections.Counter()
      index = 0
      while min(counts[family] for family in families) < per_font:
        sample = synth_lines.make_sample(seed, index, 'test',
                                         held_out_fonts=held_out, tier=tier,
                                         content='digits')
        if counts[sample.family] < per_font:
          counts[sample.family] += 1
          records.append({'image': sample.image, 'text': sample.text,
                          'tier': tier, 'held_out': held_out,
                          'family': sample.family, 'font': sample.font,
                          'index': index})
        index += 1
  return records


def khmer_digits_test(data_dir: str | None) -> list[dict]:
  """The prototype's khmer_digits test split (built when missing)."""
  config = ml_collections.ConfigDict({'dataset': 'khmer_digits'})
  builder = input_pipeline.ensure_built(config, data_dir)
  return [{'image': example['image'], 'text': example['text'].decode(),
           'family': example['font'].decode()}
          for example in tfds.as_numpy(builder.as_dataset(split='test'))]


def family_label(record: dict) -> str:
  return record['family'] + (' (held out)' if record['held_out'] else '')


def score(records: list[dict], key: str) -> dict:
  """{group: {n, chars, cer, exact}} of the readings under `key`."""
  groups = collections.defaultdict(list)
  for record in records:
    held = 'held_out' if record['held_out'] else 'trained'
    for name in ('all', f'group:{held}', f'tier:{record["tier"]}',
                 f'set:{record["tier"]}/{held}',
                 f'font:{family_label(record)}',
                 f'face:{record["font"]}'):
      groups[name].append(record)
  return {name: score_group(members, key)
          for name, members in sorted(groups.items())}


def score_group(members: list[dict], key: str) -> dict:
  scores = metrics.OcrScores()
  scores.update([m['text'] for m in members], [m[key] for m in members])
  result = scores.result()
  return {'n': result['n'], 'chars': sum(len(m['text']) for m in members),
          'cer': result['cer'], 'exact': result['seq_accuracy']}


def read_all(reader, records: list[dict], key: str) -> float:
  """Stores each reading under `key`; returns strings per second."""
  start = time.perf_counter()
  results = reader.read([r['image'] for r in records])
  seconds = time.perf_counter() - start
  for record, result in zip(records, results):
    if not result.ok:
      raise RuntimeError(f'{key} could not read an image: {result.error}')
    record[key] = khmer_normalizer.normalize_khmer(result.text)
  return len(records) / seconds


def main(argv):
  del argv
  strings = font_strings(_PER_FONT.value, _SEED.value)
  prototype = khmer_digits_test(_DATA_DIR.value)
  report = {'models': _MODELS.value, 'strings_per_font': _PER_FONT.value,
            'seed': _SEED.value, 'tiers': list(TIERS),
            'held_out_families': list(fonts.HELD_OUT_FAMILIES),
            'machine': machine.machine_info(), 'results': {}}
  for model in _MODELS.value:
    reader = load.load_reader(model, batch_size=_BATCH.value)
    reader.read([r['image'] for r in strings[:_BATCH.value]])  # Compiles.
    rate = read_all(reader, strings, model)
    read_all(reader, prototype, model)
    report['results'][model] = {
        'description': reader.description, 'strings_per_s': rate,
        'fonts': score(strings, model),
        'khmer_digits_test': score_group(prototype, model)}
  print_table(report)
  os.makedirs(os.path.dirname(_OUTPUT.value) or '.', exist_ok=True)
  with open(_OUTPUT.value, 'w', encoding='utf-8') as f:
    json.dump(report, f, indent=1, ensure_ascii=False)


def print_table(report: dict) -> None:
  """One row per group, CER (%) and exact (%) per model."""
  models = report['models']
  order = ('all', 'group', 'tier', 'set', 'font')
  names = sorted((name for name in report['results'][models[0]]['fonts']
                  if name.split(':')[0] in order),
                 key=lambda name: (order.index(name.split(':')[0]), name))
  header = f'{"group":44s} {"n":>5s}'
  for index in range(len(models)):
    header += f' {f"CER{index + 1}%":>7s} {f"exact{index + 1}%":>8s}'
  print('\n'.join(f'model {i + 1}: {m}' for i, m in enumerate(models)))
  print('trained / held out: font families synth-line models train on / '
        'never see (the shipped khmer-digits saw 8 KhmerOS families only)')
  print(header)
  rows = [(name, [report['results'][m]['fonts'][name] for m in models])
          for name in names]
  rows.append(('khmer_digits test split',
               [report['results'][m]['khmer_digits_test'] for m in models]))
  for name, cells in rows:
    line = f'{name:44s} {cells[0]["n"]:5d}'
    for cell in cells:
      line += f' {100 * cell["cer"]:7.2f} {100 * cell["exact"]:8.1f}'
    print(line)
  for model in models:
    print(f'{model}: {report["results"][model]["strings_per_s"]:.0f} '
          'strings/s')


if __name__ == '__main__':
  app.run(main)
