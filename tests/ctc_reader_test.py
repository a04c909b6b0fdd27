"""CTC beam search through the Reader: frame log-probabilities on the
device, prefix beam search and LM fusion on the host, in process and from an
exported file."""

import json

import numpy as np
import pytest

from benchmarks import lm_gain_benchmark
from ocr_jax.reading import ctc_decoding
from ocr_jax.reading import export
from ocr_jax.reading import load
from ocr_jax.reading import ocrx
from ocr_jax.reading import reader as reader_lib
from ocr_jax.text import char_lm
from ocr_jax.text import charset
# Sibling test modules (pytest puts tests/ on sys.path).
import export_test  # pylint: disable=g-bad-import-order
import reader_test  # pylint: disable=g-bad-import-order

pytestmark = pytest.mark.usefixtures('fast_compile')


@pytest.fixture(scope='module')
def ctc_reader():
  return reader_test.perturb(load.random_reader('tiny_ctc', batch_size=4))


@pytest.fixture(scope='module')
def digits_lm():
  digits = charset.KHMER_DIGITS
  return char_lm.build([digits[:5], digits[2:9], digits * 2, digits[::-1]],
                       order=3, chars=digits)


def texts(ids):
  return [charset.get_vocabulary('digits').decode(row) for row in ids]


def test_frame_log_probs_are_normalised_with_true_lengths(ctc_reader):
  images, widths = export_test._inputs(ctc_reader, count=3)
  widths = widths.copy()
  widths[1] = widths[1] // 2
  log_probs, lengths = ctc_reader.frames_fn()(ctc_reader.variables, images,
                                              widths)
  log_probs, lengths = np.asarray(log_probs), np.asarray(lengths)
  assert log_probs.dtype == np.float32 and lengths.dtype == np.int32
  np.testing.assert_allclose(np.exp(log_probs).sum(-1), 1.0, rtol=1e-5)
  assert lengths[1] < lengths[0] <= log_probs.shape[1]
  # Greedy on the device is best path of these frames.
  ids, _, probs = ctc_reader.predict_batch(images, widths)
  for row in range(3):
    host_ids, host_probs = ctc_decoding.best_path(log_probs[row],
                                                  lengths[row])
    assert list(ids[row, :len(host_ids)]) == host_ids
    np.testing.assert_allclose(probs[row, :len(host_ids)], host_probs,
                               rtol=1e-5)


def test_beam_search_runs_on_the_host(ctc_reader):
  images, widths = export_test._inputs(ctc_reader, count=5)
  ids, lines, probs = ctc_reader.predict_batch(images, widths, beam_size=4)
  log_probs, lengths = ctc_reader.frames_fn()(ctc_reader.variables, images,
                                              widths)
  expected = ctc_decoding.decode_batch(np.asarray(log_probs),
                                       np.asarray(lengths), beam_size=4)
  assert ids.shape == (5, ctc_reader.spec.max_label_length + 1)
  for row, hypotheses in enumerate(expected):
    best = hypotheses[0]
    n = len(best.ids)
    assert tuple(ids[row, :n]) == best.ids
    assert ids[row, n] == charset.EOS_ID
    assert np.all(ids[row, n + 1:] == charset.PAD_ID)
    np.testing.assert_allclose(probs[row, :n], best.char_confidences,
                               rtol=1e-6)
    assert lines[row] == pytest.approx(np.prod(probs[row, :n]), rel=1e-6)
    assert 0.0 <= lines[row] <= 1.0


def test_lm_fusion_through_the_reader(ctc_reader, digits_lm, tmp_path):
  images, widths = export_test._inputs(ctc_reader, count=5)
  plain = ctc_reader.predict_batch(images, widths, beam_size=4)
  path = digits_lm.save(str(tmp_path / 'lm.npz'))
  try:
    ctc_reader.use_lm(path, lm_weight=2.0, length_bonus=0.5)
    assert ctc_reader.lm.order == 3
    # Weight 0 for one call: exactly the reading without LM.
    off = ctc_reader.predict_batch(images, widths, beam_size=4, lm_weight=0)
    for a, b in zip(plain, off):
      np.testing.assert_array_equal(a, b)
    fused = ctc_reader.predict_batch(images, widths, beam_size=4)
    log_probs, lengths = ctc_reader.frames_fn()(ctc_reader.variables,
                                                images, widths)
    expected = ctc_decoding.decode_batch(
        np.asarray(log_probs), np.asarray(lengths), beam_size=4,
        lm=digits_lm, lm_weight=2.0, length_bonus=0.5,
        vocabulary_chars=charset.KHMER_DIGITS)
    assert texts(fused[0]) == [charset.get_vocabulary('digits').decode(
        h[0].ids) for h in expected]
  finally:
    ctc_reader.use_lm(None)
  assert ctc_reader.lm is None and ctc_reader.lm_weight == 0.0


def test_attention_models_take_no_lm():
  attention = load.random_reader('tiny', batch_size=2)
  with pytest.raises(ValueError, match='CTC'):
    attention.use_lm(char_lm.build(['០១'], order=2,
                                   chars=charset.KHMER_DIGITS))


def test_exported_file_carries_the_frame_function(ctc_reader, tmp_path):
  path = export.export_reader(ctc_reader, str(tmp_path / 'ctc.ocrx'),
                              beam_sizes=(1,), platforms=('cpu',))
  loaded = reader_lib.Reader.from_export(path, batch_size=4)
  assert sorted(loaded.predict_fns.frames_functions) == ['cpu']
  assert ocrx.read_meta(path)['frames_platforms'] == ['cpu']
  images, widths = export_test._inputs(ctc_reader, count=5)
  for beam_size in (1, 3):
    ids, lines, probs = ctc_reader.predict_batch(images, widths,
                                                 beam_size=beam_size)
    ids2, lines2, probs2 = loaded.predict_batch(images, widths,
                                                beam_size=beam_size)
    np.testing.assert_array_equal(ids, ids2)
    np.testing.assert_allclose(lines, lines2, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(probs, probs2, rtol=1e-5, atol=1e-7)
  # Re-saving the exported file keeps its frame function.
  again = export.export_reader(loaded, str(tmp_path / 'again.ocrx'),
                               weight_format='bfloat16')
  reloaded = reader_lib.Reader.from_export(again)
  assert sorted(reloaded.predict_fns.frames_functions) == ['cpu']


def test_lm_gain_benchmark_runs_end_to_end(digits_lm, tmp_path):
  """A smoke run on a random tiny_line_ctc: every decoder is scored."""
  lm_path = digits_lm.save(str(tmp_path / 'lm.npz'))
  report = lm_gain_benchmark.run(
      None, lm_path, tiers=('clean',), lines=2, seed=0,
      held_out_fonts=False, beam_size=3, weights=(0.5,), bonuses=(0.0, 1.0),
      batch_size=2)
  names = [r['name'] for r in report['results']]
  assert names == ['greedy', 'beam3', 'beam3+lm a=0.5 b=0',
                   'beam3+lm a=0.5 b=1']
  for result in report['results']:
    assert result['overall']['lines'] == 2
    assert result['overall']['cer'] >= 0
    assert result['tiers']['clean'] == result['overall']
  assert report['summary']['best_lm'] in names[2:]
  json.dumps(report)  # JSON-ready.
