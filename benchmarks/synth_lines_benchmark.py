r"""Times synthetic line rendering on one core and draws a sample grid.

  python -m benchmarks.synth_lines_benchmark [--samples=600] [--seed=0] \
      [--grid=docs/samples_synth_lines.png] [--grid_rows=4]

Renders `synth_lines.make_sample` in this one process (one core): first the
warm-up (the first sample fills the font and corpus caches; 300 more fill
the per-face caches), then
--samples samples of the train mixture and of each forced tier, and reports
samples/s and CPU ms per sample (the CPU time tells how busy the machine
was: on a shared machine the wall-clock rate drops, the CPU time does not).
Results go to --output as JSON with the machine description.

--grid writes a sheet of --grid_rows samples of each tier in training
fonts and in held-out fonts, each captioned with its tier, family, font file,
size and label. The label is drawn with a Khmer font through libraqm
(`sample_sheet.label_font`) so it is shaped like the image above it.
"""

import json
import os
import time

from absl import app
from absl import flags
import numpy as np
from PIL import Image
from PIL import ImageDraw

from benchmarks import machine
from ocr_jax.data import synth_lines
from ocr_jax.training import sample_sheet

_SAMPLES = flags.DEFINE_integer('samples', 600, 'Samples per measurement.')
_SEED = flags.DEFINE_integer('seed', 0, 'Data seed.')
_GRID = flags.DEFINE_string(
    'grid', os.path.join('docs', 'samples_synth_lines.png'),
    "Sample grid PNG ('' to skip).")
_GRID_ROWS = flags.DEFINE_integer('grid_rows', 4,
                                  'Samples per tier and font set.')
_OUTPUT = flags.DEFINE_string(
    'output', os.path.join(os.path.dirname(__file__), 'results',
                           'synth_lines.json'), 'JSON output path.')


def measure(seed: int, count: int, tier: str | None,
            first_index: int = 0) -> dict[str, float]:
  """Samples/s (wall clock) and CPU ms per sample of `count` samples."""
  cpu, start = machine.cpu_seconds(), time.perf_counter()
  widths, lengths = [], []
  for index in range(first_index, first_index + count):
    sample = synth_lines.make_sample(seed, index, 'train', tier=tier)
    widths.append(sample.image.shape[1])
    lengths.append(len(sample.text))
  wall = time.perf_counter() - start
  return {'samples_per_second': count / wall,
          'cpu_ms_per_sample': 1000.0 * (machine.cpu_seconds() - cpu) / count,
          'mean_width': float(np.mean(widths)),
          'mean_characters': float(np.mean(lengths))}


def draw_grid(samples, path: str, caption_height: int = 22) -> None:
  """A column of samples, each captioned with its metadata and label."""
  font = sample_sheet.label_font(caption_height - 6)
  rows = []
  for held_out, sample in samples:
    image = Image.fromarray(sample.image)
    which = 'HELD-OUT' if held_out else 'trained'
    caption = (f'{sample.tier} | {which} {sample.family} ({sample.font}) | '
               f'{image.width}x{image.height} | {len(sample.text)} chars')
    row = Image.new('RGB', (max(image.width, 700),
                            image.height + 2 * caption_height + 4), 'white')
    row.paste(image, (0, 0))
    draw = ImageDraw.Draw(row)
    draw.text((4, image.height + 2), caption, fill=(0, 0, 150), font=font)
    draw.text((4, image.height + caption_height + 2), sample.text,
              fill='black', font=font)
    rows.append(row)
  width = max(r.width for r in rows)
  sheet = Image.new('RGB', (width, sum(r.height + 6 for r in rows)),
                    (150, 150, 150))
  top = 0
  for row in rows:
    sheet.paste(row, (0, top))
    top += row.height + 6
  sheet.save(path)


def main(argv):
  del argv
  start = time.perf_counter()
  synth_lines.make_sample(_SEED.value, 0, 'train')
  warmup = time.perf_counter() - start
  # The caches (each face's character map, font objects per size) fill
  # lazily: render a few hundred samples of another seed before timing.
  for index in range(300):
    synth_lines.make_sample(_SEED.value + 1, index, 'train')
  result = {'warmup_seconds': warmup, 'samples': _SAMPLES.value,
            'tiers': {}}
  for tier in (None,) + synth_lines.TIERS:
    name = tier or 'mixture'
    result['tiers'][name] = measure(_SEED.value, _SAMPLES.value, tier,
                                    first_index=1)
    figures = result['tiers'][name]
    print(f"{name:8s} {figures['samples_per_second']:6.0f} samples/s, "
          f"{figures['cpu_ms_per_sample']:5.2f} CPU ms/sample, mean "
          f"{figures['mean_width']:.0f} px wide, "
          f"{figures['mean_characters']:.0f} characters")
  result['machine'] = machine.machine_info()
  print(f'warm-up {warmup:.2f} s; machine: {result["machine"]}')
  os.makedirs(os.path.dirname(os.path.abspath(_OUTPUT.value)), exist_ok=True)
  with open(_OUTPUT.value, 'w', encoding='utf-8') as f:
    json.dump(result, f, indent=2)
  print(f'wrote {_OUTPUT.value}')
  if _GRID.value:
    samples = [
        (held_out, synth_lines.make_sample(
            _SEED.value, index + held_out * _GRID_ROWS.value, 'validation',
            held_out_fonts=held_out, tier=tier))
        for tier in synth_lines.TIERS for held_out in (False, True)
        for index in range(_GRID_ROWS.value)]
    draw_grid(samples, _GRID.value)
    print(f'wrote {_GRID.value}')


if __name__ == '__main__':
  app.run(main)
