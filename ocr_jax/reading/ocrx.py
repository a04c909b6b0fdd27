"""The `.ocrx` file: one exported model, runnable without the model code.

Written by `ocr_jax.reading.export`, read by `Reader.from_export`. Reading
needs only jax, numpy and this package's text and data modules.

Format (version 2): a numpy `.npz` archive (a zip) holding

  meta                JSON (UTF-8 bytes as uint8): format and version, the
                      model preset and kind, the vocabulary (name and
                      characters, so ids decode without ocr_jax.text.charset's
                      tables), image height/width, variable_width,
                      any_width (a symbolic width) and width_multiple,
                      max_label_length, weight format, the exported
                      platforms and beam sizes, input/output shapes, the
                      training config, and the jax version that wrote it.
  function/<platform>/beam<k>
                      `jax.export` serialisation (StableHLO plus calling
                      convention) of the prediction function for one
                      platform ('cpu', 'cuda', 'rocm', 'tpu') and beam size
                      k, traced from a model built for that platform (see
                      `ocr_jax.models.backend`), with a symbolic batch b,
                      and a symbolic width W, a multiple of meta's
                      width_multiple, when meta's any_width is true
                      (variable-width models; else W is image_width):
                        (variables, images f32 [b, H, W, 3] standardised
                         as ocr_jax.data.preprocess does, widths i32 [b])
                        -> (ids i32 [b, L + 1], line confidence f32 [b],
                            token probabilities f32 [b, L + 1])
  function/<platform>/frames
                      CTC models: the same for the frame function
                      (`ocr_jax.models.decode.ctc_frame_log_probs`), whose
                      output the host decodes by prefix beam search
                      (beam sizes > 1, `ocr_jax.reading.ctc_decoding`):
                        (variables, images, widths) -> (log-probabilities
                         f32 [b, frames, V], frame counts i32 [b])
  param/<path>        float32 weights (weight_format float32);
  bf16/<path>         bfloat16 weights stored as their uint16 bits;
  int8/<path>, scale/<path>  int8 weights and per-channel float32 scales
                      (see ocr_jax.reading.quantize).

<path> is the '/'-joined key path in the variables {'params', 'batch_stats'}.
Weights are arguments of the exported functions, not constants, so one
function serves every weight format: they are converted back to float32 at
load. At load, the functions of the local platform (`jax.default_backend()`,
'gpu' meaning 'cuda') are the ones called.

Version 1 files held one function per beam size, traced once for all
platforms with the exporting machine's convolutions; they are refused with a
message to re-export.
"""

import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ocr_jax.data import preprocess
from ocr_jax.reading import quantize

FORMAT = 'ocr_jax.export'
VERSION = 2
_WEIGHT_PREFIXES = ('param/', 'bf16/', 'int8/')
_FUNCTION_PREFIX = 'function/'
# The archive entry name of a platform's CTC frame function.
FRAMES = 'frames'
# jax.default_backend() names -> jax.export platform names.
_EXPORT_PLATFORMS = {'gpu': 'cuda'}


def platform_name(backend: str | None = None) -> str:
  """The jax.export platform name of a backend (default: the local one)."""
  backend = backend or jax.default_backend()
  return _EXPORT_PLATFORMS.get(backend, backend)


def function_key(platform: str, beam_size: int) -> str:
  """The archive entry of one serialised function."""
  return f'{_FUNCTION_PREFIX}{platform}/beam{int(beam_size)}'


def frames_key(platform: str) -> str:
  """The archive entry of a platform's serialised CTC frame function."""
  return f'{_FUNCTION_PREFIX}{platform}/{FRAMES}'


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
    prefix = next((p for p in _WEIGHT_PREFIXES if name.startswith(p)), None)
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
               if name.startswith(_WEIGHT_PREFIXES + ('scale/',)))


# --- Writing ------------------------------------------------------------------


def build_meta(spec, weight_format: str,
               functions: dict[tuple[str, int], bytes],
               frames: dict[str, bytes] | None = None) -> dict[str, Any]:
  """The meta entry for a `ReaderSpec` and its functions."""
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
      # Written since the width became symbolic; files without it were
      # exported with a fixed width and are read at image_width.
      'any_width': spec.variable_width and spec.any_width,
      'width_multiple': spec.width_multiple,
      'max_label_length': spec.max_label_length,
      'weight_format': weight_format,
      'platforms': sorted({platform for platform, _ in functions}),
      'beam_sizes': sorted({int(beam) for _, beam in functions}),
      # Platforms with a CTC frame function (host beam search).
      'frames_platforms': sorted(frames or ()),
      'inputs': {
          'images': ['batch', spec.image_height,
                     f'{spec.width_multiple} * k'
                     if spec.variable_width and spec.any_width
                     else spec.image_width, 3,
                     'float32, (rgb / 255 - mean) / std'],
          'widths': ['batch', 'int32, pixels covered by the image'],
          'mean': [float(x) for x in preprocess.PIXEL_MEAN],
          'std': [float(x) for x in preprocess.PIXEL_STD],
      },
      'outputs': {
          'ids': ['batch', length, 'int32'],
          'confidence': ['batch', 'float32'],
          'token_probabilities': ['batch', length, 'float32'],
      },
      'config': spec.config,
      'jax_version': jax.__version__,
  }


def write(path: str, meta: dict[str, Any],
          functions: dict[tuple[str, int], bytes],
          arrays: dict[str, np.ndarray],
          frames: dict[str, bytes] | None = None) -> None:
  """Writes the archive atomically (a temporary file, then a rename).

  Args:
    path: the file to write.
    meta: from `build_meta`.
    functions: (platform, beam size) -> serialised jax.export function.
    arrays: the weight entries, from `weights_to_arrays`.
    frames: platform -> serialised CTC frame function (CTC models).
  """
  entries = {'meta': np.frombuffer(
      json.dumps(meta, ensure_ascii=False).encode('utf-8'), np.uint8)}
  for (platform, beam_size), data in functions.items():
    entries[function_key(platform, beam_size)] = np.frombuffer(data, np.uint8)
  for platform, data in (frames or {}).items():
    entries[frames_key(platform)] = np.frombuffer(data, np.uint8)
  entries.update(arrays)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  temporary = path + '.tmp'
  with open(temporary, 'wb') as f:
    np.savez(f, **entries)
  os.replace(temporary, path)


# --- Reading ------------------------------------------------------------------


def read_meta(path: str) -> dict[str, Any]:
  """The meta entry of a file (ValueError if it is not a readable export)."""
  with _open(path) as archive:
    return _meta(archive, path)


def read(path: str):
  """Reads an exported file.

  Returns:
    (meta dict, float32 variables on the default device, ExportedFunctions).

  Raises:
    ValueError: not an ocr_jax export, or one of another version.
  """
  with _open(path) as archive:
    meta = _meta(archive, path)
    functions, frames = {}, {}
    for name in archive.files:
      if name.startswith(_FUNCTION_PREFIX):
        platform, beam = name[len(_FUNCTION_PREFIX):].split('/')
        if beam == FRAMES:
          frames[platform] = archive[name].tobytes()
        else:
          functions[platform, int(beam[len('beam'):])] = archive[
              name].tobytes()
    variables = arrays_to_weights(archive)
  return meta, jax.device_put(variables), ExportedFunctions(functions, path,
                                                            frames)


def _open(path: str):
  try:
    return np.load(path, allow_pickle=False)
  except (OSError, ValueError) as e:
    raise ValueError(f'{path} is not an ocr_jax export: {e}') from None


def _meta(archive, path: str) -> dict[str, Any]:
  if 'meta' not in archive.files:
    raise ValueError(f'{path} is not an ocr_jax export (no meta entry)')
  meta = json.loads(archive['meta'].tobytes().decode('utf-8'))
  if meta.get('format') != FORMAT:
    raise ValueError(f'{path}: unknown export format {meta.get("format")!r}')
  if meta.get('version') != VERSION:
    raise ValueError(
        f'{path} is an ocr_jax export of version {meta.get("version")}; this '
        f'version of ocr_jax reads version {VERSION} only. Re-export it from '
        'its run folder: python -m ocr_jax.export --model=RUN_FOLDER '
        f'--output={path}')
  return meta


class ExportedFunctions:
  """beam_size -> the deserialised, jitted function for the local platform.

  Attributes:
    functions: (platform, beam size) -> the serialised function.
    frames_functions: platform -> the serialised CTC frame function.
    platforms: the platforms the file was exported for, sorted.
  """

  def __init__(self, functions: dict[tuple[str, int], bytes], path: str,
               frames: dict[str, bytes] | None = None):
    self.functions = functions
    self.frames_functions = dict(frames or {})
    self.platforms = tuple(sorted({platform for platform, _ in functions}))
    self._path = path
    self._cache = {}

  def __call__(self, beam_size: int):
    platform = platform_name()
    key = (platform, beam_size)
    if key not in self._cache:
      if platform not in self.platforms:
        raise ValueError(
            f'{self._path} was exported for platforms {list(self.platforms)}'
            f', not {platform!r}; re-export it with --platforms='
            f'{",".join(self.platforms + (platform,))}')
      beams = sorted(b for p, b in self.functions if p == platform)
      if beam_size not in beams:
        raise ValueError(
            f'{self._path} was exported for beam sizes {beams}, not '
            f'{beam_size}; re-export it with --beam_sizes='
            f'{",".join(map(str, beams + [beam_size]))}')
      exported = jax.export.deserialize(bytearray(self.functions[key]))
      self._cache[key] = jax.jit(exported.call)
    return self._cache[key]

  def frames(self):
    """The CTC frame function for the local platform, deserialised, jitted."""
    platform = platform_name()
    key = (platform, FRAMES)
    if key not in self._cache:
      if platform not in self.frames_functions:
        raise ValueError(
            f'{self._path} has no CTC frame function for {platform!r}, which '
            'beam search of a CTC model needs (beam_size > 1); re-export it '
            'from its run folder')
      exported = jax.export.deserialize(
          bytearray(self.frames_functions[platform]))
      self._cache[key] = jax.jit(exported.call)
    return self._cache[key]
