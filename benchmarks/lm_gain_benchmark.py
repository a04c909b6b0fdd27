"""What a character LM fused into CTC beam search gains, in CER.

  python -m benchmarks.lm_gain_benchmark --model=runs/khmer_lines_ctc
      [--lm=FILE.npz] [--lines=64] [--tiers=clean,scan,long]
      [--held_out_fonts] [--beam_size=8] [--lm_weights=0.25,0.5,1.0]
      [--length_bonuses=0,0.5,1.0] [--output=FILE]

--model is a CTC run folder, an exported .ocrx or a pretrained name;
without it a randomly initialised `tiny_line_ctc` (khmer vocabulary, 48 x up
to 1,536 px) runs everything end to end as a smoke check (its CER is
meaningless). --lm is a file written by `python -m ocr_jax.build_lm`;
without it the LM is built here from the corpus's training split
(`ocr_jax.data.lm_corpus.build_lm`, a few seconds), and saved to --save_lm
if given.

Renders --lines validation lines per tier (`synth_lines.make_sample(seed,
i, 'validation', tier=...)`, i = 0..lines-1; text never trained on, neither
by the model nor by the LM), runs the model once per batch for its frame
log-probabilities (`Reader.frames_fn`, batches of similar widths), then
decodes every line on the host with

  greedy        best path (what beam_size 1 reads, on the device);
  beam          CTC prefix beam search (--beam_size), no LM;
  beam+lm a/b   the same with the LM fused at weight a and length bonus b,
                for every pair of --lm_weights and --length_bonuses.

and reports per tier and overall the CER (edit distance over reference
characters, after `normalize_khmer`), the exact-line rate, and the host
decoding time per line. Prints a table and writes JSON to
benchmarks/results/lm_gain.json (or --output). Issue #11: keep the LM off
(the reader's default) unless it gains.
"""

from collections.abc import Sequence
import json
import os
import time

from absl import app
from absl import flags
import numpy as np

from benchmarks import machine
from ocr_jax.data import lm_corpus
from ocr_jax.data import preprocess
from ocr_jax.data import synth_lines
from ocr_jax.reading import ctc_decoding
from ocr_jax.reading import load
from ocr_jax.text import char_lm
from ocr_jax.text import khmer_normalizer
from ocr_jax.training import metrics

RESULTS_DIR = os.path.join(os.path.dirname(__file__), 'results')

_MODEL = flags.DEFINE_string(
    'model', None, 'A CTC run folder, .ocrx file or pretrained name; None: '
    'a random tiny_line_ctc (smoke check).')
_LM = flags.DEFINE_string('lm', None, 'A character LM file; None: build one '
                          'from the training split.')
_SAVE_LM = flags.DEFINE_string('save_lm', None,
                               'Save the LM built here to this file.')
_LM_ORDER = flags.DEFINE_integer('lm_order', char_lm.DEFAULT_ORDER,
                                 'Order of the LM built here.')
_LINES = flags.DEFINE_integer('lines', 64, 'Validation lines per tier.')
_TIERS = flags.DEFINE_list('tiers', list(synth_lines.TIERS),
                           'Tiers of synth_lines.')
_HELD_OUT = flags.DEFINE_boolean('held_out_fonts', False,
                                 'Render in the held-out font families.')
_SEED = flags.DEFINE_integer('seed', 0, 'The data seed of the lines.')
_BEAM = flags.DEFINE_integer('beam_size', 8, 'Beam width.')
_WEIGHTS = flags.DEFINE_list('lm_weights', ['0.25', '0.5', '1.0'],
                             'LM weights (alpha).')
_BONUSES = flags.DEFINE_list('length_bonuses', ['0', '0.5', '1.0'],
                             'Per-character length bonuses (beta).')
_BATCH = flags.DEFINE_integer('batch_size', 16, 'Lines per model call.')
_OUTPUT = flags.DEFINE_string('output', None, 'JSON output file.')


def render_lines(tiers: Sequence[str], count: int, seed: int,
                 held_out_fonts: bool):
  """[(tier, text, image)] of validation lines."""
  return [(tier, sample.text, sample.image) for tier in tiers
          for sample in (synth_lines.make_sample(
              seed, i, 'validation', tier=tier,
              held_out_fonts=held_out_fonts) for i in range(count))]


def frame_log_probs(reader, images: Sequence[np.ndarray], batch_size: int):
  """Per line: its valid frames' log-probabilities [frames, vocab]."""
  spec = reader.spec
  step = int(spec.config.get('bucket_step', 128))
  any_width = spec.variable_width and getattr(spec, 'any_width', False)
  prepared = [preprocess.prepare(image, spec.image_height, spec.image_width,
                                 spec.variable_width) for image in images]
  order = sorted(range(len(prepared)), key=lambda i: prepared[i][1])
  frames = [None] * len(prepared)
  for start in range(0, len(order), batch_size):
    rows = order[start:start + batch_size]
    batch = np.stack([prepared[i][0] for i in rows])
    widths = np.asarray([prepared[i][1] for i in rows], np.int32)
    if any_width:
      # Lines are zero past their width: cutting the padding to the next
      # multiple of the bucket step reads them as the reader's buckets do.
      width = min(spec.image_width, -(-int(widths.max()) // step) * step)
      batch = batch[:, :, :width]
    log_probs, lengths = reader.frames_fn()(reader.variables, batch, widths)
    log_probs, lengths = np.asarray(log_probs), np.asarray(lengths)
    for row, i in enumerate(rows):
      frames[i] = log_probs[row, :lengths[row]]
  return frames


def score(decoded: Sequence[str], references: Sequence[str]) -> dict:
  errors = sum(metrics.edit_distance(d, r)
               for d, r in zip(decoded, references))
  chars = sum(len(r) for r in references)
  return {'cer': errors / max(chars, 1),
          'exact': float(np.mean([d == r for d, r in
                                  zip(decoded, references)])),
          'lines': len(references), 'chars': chars}


def decode_all(frames, vocabulary, config: dict, lm) -> tuple[list, float]:
  """(texts, host seconds) of every line under one decoder config."""
  texts = []
  start = time.perf_counter()
  for log_probs in frames:
    if config['decoder'] == 'greedy':
      ids, _ = ctc_decoding.best_path(log_probs)
    else:
      ids = ctc_decoding.prefix_beam_search(
          log_probs, beam_size=config['beam_size'],
          lm=lm if config.get('lm_weight') else None,
          vocabulary_chars=vocabulary.chars,
          lm_weight=config.get('lm_weight', 0.0),
          length_bonus=config.get('length_bonus', 0.0))[0].ids
    texts.append(khmer_normalizer.normalize_khmer(vocabulary.decode(ids)))
  return texts, time.perf_counter() - start


def configs(beam_size: int, weights: Sequence[float],
            bonuses: Sequence[float]) -> list[dict]:
  out = [{'name': 'greedy', 'decoder': 'greedy'},
         {'name': f'beam{beam_size}', 'decoder': 'beam',
          'beam_size': beam_size}]
  for weight in weights:
    for bonus in bonuses:
      out.append({'name': f'beam{beam_size}+lm a={weight:g} b={bonus:g}',
                  'decoder': 'beam', 'beam_size': beam_size,
                  'lm_weight': weight, 'length_bonus': bonus})
  return out


def run(model: str | None, lm_path: str | None, tiers: Sequence[str],
        lines: int, seed: int, held_out_fonts: bool, beam_size: int,
        weights: Sequence[float], bonuses: Sequence[float], batch_size: int,
        lm_order: int = char_lm.DEFAULT_ORDER,
        save_lm: str | None = None) -> dict:
  """Everything the module docstring lists, as a JSON-ready dict."""
  if model:
    reader = load.load_reader(model, batch_size=batch_size)
  else:
    reader = load.random_reader(
        'tiny_line_ctc', vocabulary='khmer', image_height=48,
        image_width=1536, dataset='synth_lines', batch_size=batch_size)
  if reader.spec.kind != 'ctc':
    raise ValueError(f'{model} is a {reader.spec.kind} model, not CTC')
  start = time.perf_counter()
  if lm_path:
    lm = char_lm.load(lm_path)
  else:
    lm = lm_corpus.build_lm(order=lm_order)
    if save_lm:
      lm.save(save_lm)
  lm_seconds = time.perf_counter() - start
  samples = render_lines(tiers, lines, seed, held_out_fonts)
  start = time.perf_counter()
  frames = frame_log_probs(reader, [image for _, _, image in samples],
                           batch_size)
  model_seconds = time.perf_counter() - start
  references = [text for _, text, _ in samples]
  results = []
  for config in configs(beam_size, weights, bonuses):
    texts, seconds = decode_all(frames, reader.spec.vocabulary, config, lm)
    entry = dict(config, overall=score(texts, references),
                 ms_per_line=1000 * seconds / max(len(texts), 1), tiers={})
    for tier in tiers:
      rows = [i for i, (t, _, _) in enumerate(samples) if t == tier]
      entry['tiers'][tier] = score([texts[i] for i in rows],
                                   [references[i] for i in rows])
    results.append(entry)
    print(f"{config['name']:32s} CER {entry['overall']['cer']:.4f} exact "
          f"{entry['overall']['exact']:.3f} " + ' '.join(
              f"{tier} {entry['tiers'][tier]['cer']:.4f}" for tier in tiers) +
          f" ({entry['ms_per_line']:.1f} ms/line)", flush=True)
  greedy, beam = results[0]['overall']['cer'], results[1]['overall']['cer']
  best = min(results[2:], key=lambda r: r['overall']['cer'], default=None)
  summary = {'greedy_cer': greedy, 'beam_cer': beam}
  if best is not None:
    summary.update(best_lm=best['name'], best_lm_cer=best['overall']['cer'],
                   lm_gain_over_beam=beam - best['overall']['cer'],
                   lm_gain_over_greedy=greedy - best['overall']['cer'])
  return {
      'machine': machine.machine_info(),
      'model': model or 'random tiny_line_ctc (smoke check)',
      'lm': {'path': lm_path, 'order': lm.order, 'meta': lm.meta,
             'seconds': lm_seconds},
      'lines': {'split': 'validation', 'seed': seed, 'per_tier': lines,
                'tiers': list(tiers), 'held_out_fonts': held_out_fonts},
      'model_seconds': model_seconds,
      'results': results,
      'summary': summary,
  }


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  report = run(_MODEL.value, _LM.value, _TIERS.value, _LINES.value,
               _SEED.value, _HELD_OUT.value, _BEAM.value,
               [float(w) for w in _WEIGHTS.value],
               [float(b) for b in _BONUSES.value], _BATCH.value,
               _LM_ORDER.value, _SAVE_LM.value)
  print(json.dumps(report['summary'], indent=2))
  output = _OUTPUT.value or os.path.join(RESULTS_DIR, 'lm_gain.json')
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  with open(output, 'w', encoding='utf-8') as f:
    json.dump(report, f, indent=2, ensure_ascii=False)
  print(f'wrote {output}')


if __name__ == '__main__':
  app.run(main)
