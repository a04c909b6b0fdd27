"""Exports a trained model to one self-contained file (`.ocrx`).

  python -m ocr_jax.reading.export --model=runs/baseline --output=digits.ocrx \\
      [--weight_format=float32|int8|bfloat16] [--beam_sizes=1,5] \\
      [--platforms=cpu,cuda]

The file runs without the training or model code: `Reader.from_export` (or
`load_reader`) needs only jax, numpy, Pillow and ocr_jax's charset,
normalize and image_io modules.

Format: a numpy `.npz` archive (a zip) holding

  meta                JSON (UTF-8 bytes as uint8): format and version, the
                      model preset and kind, the vocabulary (name and
                      characters, so ids decode without ocr_jax.text.charset's
                      tables), image height/width, variable_width,
                      max_label_length, weight format, the exported beam
                      sizes, input/output shapes, the training config, and
                      the jax version that wrote it.
  function/beam<k>    `jax.export` serialisation (StableHLO plus calling
                      convention) of the prediction function for beam size
                      k, with a symbolic batch dimension:
                        (variables, images f32 [b, H, W, 3] normalised with
                         the ImageNet mean/std, widths i32 [b])
                        -> (ids i32 [b, L + 1], line confidence f32 [b],
                            token probabilities f32 [b, L + 1])
  param/<path>        float32 weights (weight_format float32);
  bf16/<path>         bfloat16 weights stored as their uint16 bits;
  int8/<path>, scale/<path>  int8 weights and per-channel float32 scales
                      (see ocr_jax.reading.quantize).

<path> is the '/'-joined key path in the variables {'params', 'batch_stats'}.
Weights are arguments of the exported function, not constants, so one
function serves every weight format: they are converted back to float32 at
load.
"""

import argparse
import json
import os
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ocr_jax.text import charset
from ocr_jax.reading import quantize

FORMAT = 'ocr_jax.reading.export'
VERSION = 1
DEFAULT_PLATFORMS = ('cpu', 'cuda')
_PREFIXES = {'param/': 'float32', 'bf16/': 'bfloat16', 'int8/': 'int8'}


# --- Weights <-> flat arrays --------------------------------------------------


def flatten(tree: dict[str, Any], prefix: str = '') -> dict[str, Any]:
  """Nested dicts -> {'a/b/c': leaf}; QuantizedArray counts as a leaf."""
  flat = {}
  for key, value in tree.items():
    if '/' in str(key):
      raise ValueError(f'variable name {key!r} contains "/"')
    path = f'{prefix}{key}'
    if isinstance(value, dict) or (hasattr(value, 'items')
                                   and not hasattr(value, 'shape')):
      flat.update(flatten(dict(value), path + '/'))
    else:
      flat[path] = value
  return flat


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
  """{'a/b/c': leaf} -> nested dicts."""
  tree = {}
  for path, value in flat.items():
    node = tree
    *parents, name = path.split('/')
    for parent in parents:
      node = node.setdefault(parent, {})
    node[name] = value
  return tree


def weights_to_arrays(variables, weight_format: str) -> dict[str, np.ndarray]:
  """The archive entries holding `variables` in `weight_format`."""
  converted = flatten(quantize.convert_weights(variables, weight_format))
  arrays = {}
  for path, value in converted.items():
    if isinstance(value, quantize.QuantizedArray):
      arrays[f'int8/{path}'] = np.asarray(value.values)
      arrays[f'scale/{path}'] = np.asarray(value.scale)
    elif value.dtype == jnp.bfloat16:
      arrays[f'bf16/{path}'] = np.asarray(value).view(np.uint16)
    else:
      arrays[f'param/{path}'] = np.asarray(value)
  return arrays


def arrays_to_weights(archive) -> dict[str, Any]:
  """Float32 variables from the archive entries (dequantized)."""
  flat = {}
  for name in archive.files:
    prefix = next((p for p in _PREFIXES if name.startswith(p)), None)
    if prefix is None:
      continue
    path = name[len(prefix):]
    value = archive[name]
    if prefix == 'int8/':
      value = quantize.QuantizedArray(values=value,
                                      scale=archive[f'scale/{path}'])
    elif prefix == 'bf16/':
      value = value.view(jnp.bfloat16)
    flat[path] = value
  return quantize.dequantize(unflatten(flat))


def read_weight_bytes(path: str) -> int:
  """Bytes of the stored weights (int8 values and scales included)."""
  with np.load(path, allow_pickle=False) as archive:
    return sum(archive[name].nbytes for name in archive.files
               if name.startswith(('param/', 'bf16/', 'int8/', 'scale/')))


# --- Export -------------------------------------------------------------------


def export_functions(model, spec, variables, beam_sizes=(1,),
                     platforms=DEFAULT_PLATFORMS) -> dict[int, bytes]:
  """Serialises the prediction function for each beam size."""
  from ocr_jax.reading import reader as reader_lib
  batch = jax.export.symbolic_shape('b')[0]
  args = (
      jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, jnp.float32),
                   variables),
      jax.ShapeDtypeStruct((batch, spec.image_height, spec.image_width, 3),
                           jnp.float32),
      jax.ShapeDtypeStruct((batch,), jnp.int32),
  )
  functions = {}
  for beam_size in beam_sizes:
    predict = reader_lib.make_predict_fn(model, spec.kind,
                                        spec.max_label_length, beam_size)
    exported = jax.export.export(jax.jit(predict),
                                 platforms=tuple(platforms))(*args)
    functions[int(beam_size)] = bytes(exported.serialize())
  return functions


def local_platform() -> str:
  """The jax.export platform name of the default backend."""
  backend = jax.default_backend()
  return 'cuda' if backend == 'gpu' else backend


def build_meta(spec, weight_format: str, beam_sizes, platforms,
               conv_impl: str | None = None) -> dict[str, Any]:
  length = spec.max_label_length + 1
  return {
      'format': FORMAT,
      'version': VERSION,
      'model': spec.preset,
      'kind': spec.kind,
      'vocabulary': spec.vocabulary.name,
      'vocabulary_chars': spec.vocabulary.chars,
      'image_height': spec.image_height,
      'image_width': spec.image_width,
      'variable_width': spec.variable_width,
      'max_label_length': spec.max_label_length,
      'weight_format': weight_format,
      'conv_impl': conv_impl,
      'beam_sizes': sorted(int(b) for b in beam_sizes),
      'platforms': list(platforms),
      'inputs': {
          'images': ['batch', spec.image_height, spec.image_width, 3,
                     'float32, (rgb / 255 - mean) / std'],
          'widths': ['batch', 'int32, pixels covered by the image'],
          'mean': [0.485, 0.456, 0.406],
          'std': [0.229, 0.224, 0.225],
      },
      'outputs': {
          'ids': ['batch', length, 'int32'],
          'confidence': ['batch', 'float32'],
          'token_probabilities': ['batch', length, 'float32'],
      },
      'config': spec.config,
      'jax_version': jax.__version__,
  }


def write(path: str, meta: dict[str, Any], functions: dict[int, bytes],
          arrays: dict[str, np.ndarray]) -> None:
  """Writes the archive atomically (a temporary file, then a rename)."""
  entries = {'meta': np.frombuffer(
      json.dumps(meta, ensure_ascii=False).encode('utf-8'), np.uint8)}
  for beam_size, data in functions.items():
    entries[f'function/beam{beam_size}'] = np.frombuffer(data, np.uint8)
  entries.update(arrays)
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  temporary = path + '.tmp'
  with open(temporary, 'wb') as f:
    np.savez(f, **entries)
  os.replace(temporary, path)


def export_reader(reader, path: str, *, weight_format: str = 'float32',
                  beam_sizes=(1,), platforms=DEFAULT_PLATFORMS) -> str:
  """Exports a Reader's model (in process, or re-saves an exported one).

  Args:
    reader: an `reader_lib.Reader`.
    path: the output file.
    weight_format: 'float32', 'int8' or 'bfloat16'.
    beam_sizes: the beam sizes callable from the file.
    platforms: lowering platforms ('cpu', 'cuda', 'tpu').

  Returns:
    The path.
  """
  if reader.model is not None:
    functions = export_functions(reader.model, reader.spec, reader.variables,
                                 beam_sizes, platforms)
  else:
    # An exported model: reuse its serialised functions.
    available = reader.predict_fns.functions
    functions = {b: available[b] for b in beam_sizes if b in available}
    missing = sorted(set(beam_sizes) - set(functions))
    if missing:
      raise ValueError(f'{reader.description} has no function for beam '
                       f'sizes {missing}; re-export from the workdir')
    platforms = reader.predict_fns.platforms
  conv_impl = (_model_conv_impl(reader.model) if reader.model is not None
               else reader.predict_fns.meta.get('conv_impl'))
  meta = build_meta(reader.spec, weight_format, functions, platforms,
                    conv_impl)
  write(path, meta, functions,
        weights_to_arrays(jax.device_get(reader.variables), weight_format))
  return path


def _model_conv_impl(model) -> str | None:
  """The conv_impl a model was built with (from its backbone), if any."""
  backbone = getattr(getattr(model, 'encoder', None), 'backbone', None)
  return getattr(backbone, 'conv_impl', None)


# --- Load ---------------------------------------------------------------------


def read_meta(path: str) -> dict[str, Any]:
  with np.load(path, allow_pickle=False) as archive:
    return _meta(archive, path)


def _meta(archive, path):
  if 'meta' not in archive.files:
    raise ValueError(f'{path} is not an ocr_jax export (no meta entry)')
  meta = json.loads(archive['meta'].tobytes().decode('utf-8'))
  if meta.get('format') != FORMAT or meta.get('version', 0) > VERSION:
    raise ValueError(f'{path}: unsupported export format '
                     f'{meta.get("format")!r} version {meta.get("version")}')
  return meta


def load(path: str):
  """Reads an exported file.

  Returns:
    (reader_lib.ModelSpec, float32 variables on the default device,
    predict_fns: beam_size -> jitted function), where predict_fns also
    carries `.functions` (beam size -> serialised bytes) and `.platforms`.
  """
  from ocr_jax.reading import reader as reader_lib
  try:
    archive = np.load(path, allow_pickle=False)
  except (OSError, ValueError) as e:
    raise ValueError(f'{path} is not an ocr_jax export: {e}') from None
  with archive:
    meta = _meta(archive, path)
    functions = {int(name[len('function/beam'):]): archive[name].tobytes()
                 for name in archive.files
                 if name.startswith('function/beam')}
    variables = arrays_to_weights(archive)
  vocabulary = charset.Vocabulary(meta['vocabulary'],
                                  meta['vocabulary_chars'])
  spec = reader_lib.ModelSpec(
      preset=meta['model'], kind=meta['kind'], vocabulary=vocabulary,
      image_height=meta['image_height'], image_width=meta['image_width'],
      variable_width=meta['variable_width'],
      max_label_length=meta['max_label_length'], config=meta['config'])
  variables = jax.device_put(variables)
  return spec, variables, ExportedFunctions(functions, meta, path)


class ExportedFunctions:
  """beam_size -> the deserialised, jitted prediction function."""

  def __init__(self, functions: dict[int, bytes], meta, path):
    self.functions = functions
    self.platforms = tuple(meta.get('platforms', ('cpu',)))
    self.meta = meta
    self._path = path
    self._cache = {}

  def __call__(self, beam_size: int):
    if beam_size not in self._cache:
      if beam_size not in self.functions:
        raise ValueError(
            f'{self._path} was exported for beam sizes '
            f'{sorted(self.functions)}, not {beam_size}; re-export with '
            f'--beam_sizes={",".join(map(str, sorted(self.functions)))},'
            f'{beam_size}')
      exported = jax.export.deserialize(bytearray(self.functions[beam_size]))
      self._cache[beam_size] = jax.jit(exported.call)
    return self._cache[beam_size]


# --- Command line -------------------------------------------------------------


def main(argv=None) -> int:
  """Command line: see the module docstring. Returns the exit status."""
  parser = argparse.ArgumentParser(
      prog='python -m ocr_jax.reading.export',
      description='Exports a model to one self-contained .ocrx file.')
  parser.add_argument('--model', required=True,
                      help='A training workdir (or an exported file to '
                      'convert to another weight format).')
  parser.add_argument('--output', required=True, help='The file to write.')
  parser.add_argument('--weight_format', default='float32',
                      choices=quantize.FORMATS)
  parser.add_argument('--beam_sizes', default='1',
                      help='Comma-separated beam sizes to export.')
  parser.add_argument('--platforms', default=','.join(DEFAULT_PLATFORMS),
                      help='Comma-separated platforms to lower for.')
  parser.add_argument('--conv_impl', default=None,
                      choices=('auto', 'native', 'matmul', 'shift'),
                      help='Convolution implementation traced into the '
                      'file (default: reader_lib.inference_conv_impl(), the '
                      "fastest on the exporting machine's backend; choose "
                      "'native' when exporting on CPU for GPU deployment).")
  args = parser.parse_args(argv)
  from ocr_jax.reading import reader as reader_lib
  reader = reader_lib.load_reader(args.model, conv_impl=args.conv_impl)
  beam_sizes = tuple(int(b) for b in args.beam_sizes.split(','))
  export_reader(reader, args.output, weight_format=args.weight_format,
                beam_sizes=beam_sizes,
                platforms=tuple(args.platforms.split(',')))
  size = os.path.getsize(args.output)
  sys.stdout.write(json.dumps({
      'output': args.output, 'bytes': size,
      'weight_bytes': read_weight_bytes(args.output),
      'weight_format': args.weight_format, 'beam_sizes': list(beam_sizes),
  }) + '\n')
  return 0


if __name__ == '__main__':
  from ocr_jax.reading import export  # pylint: disable=g-import-not-at-top
  sys.exit(export.main())
