"""Exports a model to one self-contained `.ocrx` file.

  from ocr_jax.reading import export, load
  reader = load.load_reader('runs/baseline')
  export.export_reader(reader, 'digits.ocrx', weight_format='int8',
                       beam_sizes=(1, 5), platforms=('cpu', 'cuda'))

The command line is `python -m ocr_jax.export`; the file format is
`ocr_jax.reading.ocrx`.

The prediction function (`ocr_jax.models.decode.make_predict_fn`) is traced
once per platform and beam size, each time from a model built for that
platform (`create_model(..., backend=platform)`): a file exported on a CPU
for ('cpu', 'cuda') carries the CPU's im2col convolutions in its 'cpu'
functions only, and XLA's native convolutions in its 'cuda' ones. The batch
size is symbolic, and so is the image width of a variable-width (text line)
model: one function per platform and beam size reads every width. A CTC
model also gets its frame function per platform
(`ocr_jax.models.decode.ctc_frame_log_probs`, entry function/<platform>/
frames), which the reader's host-side prefix beam search needs.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp

from ocr_jax import models
from ocr_jax.models import decode
from ocr_jax.reading import ocrx
from ocr_jax.reading import reader as reader_lib

DEFAULT_PLATFORMS = ('cpu', 'cuda')


def symbolic_width(spec: reader_lib.ReaderSpec) -> bool:
  """Whether the exported functions take images of any width."""
  return spec.variable_width and spec.any_width


def export_spec(spec: reader_lib.ReaderSpec) -> reader_lib.ReaderSpec:
  """The spec of a new export: a symbolic width is a multiple of the
  backbone's width stride (pixels per frame)."""
  if not symbolic_width(spec):
    return spec
  model = models.create_model(spec.preset, vocab_size=spec.vocabulary.size,
                              dropout_rate=0.0)
  return dataclasses.replace(
      spec, width_multiple=model.encoder.backbone.time_stride)


def _abstract_args(spec: reader_lib.ReaderSpec, variables):
  """(variables, images, widths) shapes, with a symbolic batch size.

  The image width is symbolic too for a variable-width model, so that one
  function serves every bucket width (see `ocr_jax.reading.reader`): a
  multiple of `spec.width_multiple`, which keeps the 'SAME' padding of
  strided convolutions independent of the width.
  """
  batch, width = jax.export.symbolic_shape(f'b, {spec.width_multiple}*w')
  if not symbolic_width(spec):
    width = spec.image_width
  return (
      jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, jnp.float32),
                   variables),
      jax.ShapeDtypeStruct((batch, spec.image_height, width, 3),
                           jnp.float32),
      jax.ShapeDtypeStruct((batch,), jnp.int32),
  )


def export_function(spec: reader_lib.ReaderSpec, variables, platform: str,
                    beam_size: int | str) -> jax.export.Exported:
  """Traces the prediction function of a model built for `platform`.

  Args:
    spec: the model's preset and formats; `spec.config` gives its dtype.
    variables: {'params', 'batch_stats'} (only their shapes are used).
    platform: a jax.export platform ('cpu', 'cuda', 'rocm', 'tpu').
    beam_size: 1 for greedy decoding, else beam search; `ocrx.FRAMES`: a
      CTC model's frame function instead.

  Returns:
    The `jax.export.Exported` function, lowered for `platform` only.
  """
  model = models.create_model(
      spec.preset, vocab_size=spec.vocabulary.size,
      dtype=jnp.dtype(spec.config.get('dtype', 'float32')),
      backend=platform, dropout_rate=0.0)
  if beam_size == ocrx.FRAMES:
    predict = functools.partial(decode.ctc_frame_log_probs, model)
  else:
    predict = decode.make_predict_fn(model, spec.kind,
                                     spec.max_label_length, beam_size)
  return jax.export.export(jax.jit(predict), platforms=(platform,))(
      *_abstract_args(spec, variables))


def export_functions(spec: reader_lib.ReaderSpec, variables,
                     beam_sizes=(1,), platforms=DEFAULT_PLATFORMS
                     ) -> dict[tuple[str, int], bytes]:
  """(platform, beam size) -> serialised function, for every pair."""
  return {(platform, int(beam_size)): bytes(export_function(
      spec, variables, platform, beam_size).serialize())
          for platform in _platforms(platforms) for beam_size in beam_sizes}


def export_frames_functions(spec: reader_lib.ReaderSpec, variables,
                            platforms=DEFAULT_PLATFORMS) -> dict[str, bytes]:
  """platform -> serialised CTC frame function ({} for attention models)."""
  if spec.kind != 'ctc':
    return {}
  return {platform: bytes(export_function(
      spec, variables, platform, ocrx.FRAMES).serialize())
          for platform in _platforms(platforms)}


def export_reader(reader: reader_lib.Reader, path: str, *,
                  weight_format: str = 'float32', beam_sizes=(1,),
                  platforms=None) -> str:
  """Exports a Reader's model, or re-saves an exported one.

  Args:
    reader: a Reader of an in-process model (`ocr_jax.reading.load`), or of
      an exported file (its functions are reused: only the weight format
      changes).
    path: the output file.
    weight_format: 'float32', 'int8' or 'bfloat16'.
    beam_sizes: the beam sizes callable from the file.
    platforms: the platforms to export for ('cpu', 'cuda', 'rocm', 'tpu';
      'gpu' means 'cuda'); None: DEFAULT_PLATFORMS for a model, the file's
      own platforms for an exported file.

  Returns:
    The path.
  """
  spec = reader.spec
  if isinstance(reader.predict_fns, ocrx.ExportedFunctions):
    available = reader.predict_fns.functions
    platforms = _platforms(platforms or reader.predict_fns.platforms)
    wanted = [(p, int(b)) for p in platforms for b in beam_sizes]
    missing = [key for key in wanted if key not in available]
    if missing:
      raise ValueError(f'{reader.description} has no function for '
                       f'(platform, beam size) {missing}; re-export from the '
                       'run folder')
    functions = {key: available[key] for key in wanted}
    frames = {p: data for p, data in
              reader.predict_fns.frames_functions.items() if p in platforms}
  else:
    spec = export_spec(spec)
    functions = export_functions(spec, reader.variables, beam_sizes,
                                 platforms or DEFAULT_PLATFORMS)
    frames = export_frames_functions(spec, reader.variables,
                                     platforms or DEFAULT_PLATFORMS)
  variables = jax.device_get(reader.variables)
  ocrx.write(path, ocrx.build_meta(spec, weight_format, functions, frames),
             functions, ocrx.weights_to_arrays(variables, weight_format),
             frames)
  return path


def _platforms(platforms) -> tuple[str, ...]:
  """jax.export platform names, in order, without repeats."""
  return tuple(dict.fromkeys(ocrx.platform_name(p) for p in platforms))
