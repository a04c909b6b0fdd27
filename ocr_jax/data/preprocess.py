"""Model inputs from RGB pixels: the one definition for training and reading.

An image reaches a model in two steps, both defined here:

1. Fit (uint8 -> uint8): `fit_to_canvas` resizes the pixels to the model's
   height and pads or centres them on a [height, width, 3] canvas. The
   training input pipeline calls this same function (through
   `tf.numpy_function`) on every decoded example, so training and reading
   resize with the same code: Pillow's antialiased bilinear filter.
2. Standardize (uint8 -> float32): `standardize` maps pixels to
   (x / 255 - PIXEL_MEAN) / PIXEL_STD, the ImageNet statistics (the
   division done as a multiplication by PIXEL_STD_INVERSE). The training
   pipeline augments between the division by 255 and the subtraction of
   the mean, so it repeats these operations in TensorFlow in the same order
   (`input_pipeline.to_unit_range`, `standardize_batch`); without
   augmentation the two give identical float32 tensors
   (tests/preprocess_test.py checks this on real images of every mode).

`prepare` does both for reading; `to_uint8` undoes `standardize` (for
drawing model inputs), rounding to the nearest level.

Width buckets (`bucket_widths`, `bucket_for`): a variable-width model is fed
images padded to the smallest of a few fixed widths that holds the line, in
training (`ocr_jax.data.line_pipeline`) and in reading
(`ocr_jax.reading.reader`), so short lines do not pay for long ones and a
jitted function compiles a handful of shapes.
"""

from collections.abc import Sequence

import numpy as np
from PIL import Image

# ImageNet mean and standard deviation of the RGB channels, in [0, 1] units.
PIXEL_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
PIXEL_STD = np.array([0.229, 0.224, 0.225], np.float32)
# Standardizing multiplies by this (float32 1 / PIXEL_STD): on batches a
# multiplication is several times faster than a broadcast division.
PIXEL_STD_INVERSE = np.float32(1.0) / PIXEL_STD
# Bucket widths are multiples of this (and the model's image width).
DEFAULT_BUCKET_STEP = 128


def standardize(pixels: np.ndarray) -> np.ndarray:
  """uint8 [..., 3] -> float32 (x / 255 - PIXEL_MEAN) / PIXEL_STD."""
  # The operations and their order are the training pipeline's
  # (input_pipeline.to_unit_range, standardize_batch): keep them in step.
  scaled = pixels.astype(np.float32) / np.float32(255.0)
  return ((scaled - PIXEL_MEAN) * PIXEL_STD_INVERSE).astype(np.float32)


def to_uint8(standardized: np.ndarray) -> np.ndarray:
  """Undoes `standardize`: float [..., 3] -> uint8, rounded and clipped."""
  pixels = (np.asarray(standardized, np.float32) * PIXEL_STD + PIXEL_MEAN)
  return np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)


def border_color(pixels: np.ndarray) -> np.ndarray:
  """Per-channel median of the outermost rows and columns: [3] uint8."""
  border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0],
                           pixels[:, -1]], axis=0)
  return np.median(border, axis=0).astype(np.uint8)


def resize(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
  """Antialiased bilinear resize of uint8 [h, w, 3] to [height, width, 3]."""
  if pixels.shape[1] == width and pixels.shape[0] == height:
    return pixels
  image = Image.fromarray(pixels)
  # A huge image is first shrunk by an integer factor (a box filter): fast,
  # and it bounds the cost of the bilinear filter.
  factor = min(pixels.shape[1] // max(width, 1),
               pixels.shape[0] // max(height, 1)) // 4
  if factor >= 2:
    image = image.reduce(factor)
  return np.asarray(image.resize((width, height), Image.BILINEAR))


def fit_size(image_width: int, image_height: int, height: int, width: int,
             variable_width: bool) -> tuple[int, int]:
  """The (width, height) an image is resized to before padding."""
  if variable_width:
    new_width = int(np.round(image_width * height / image_height))
    return max(1, min(width, new_width)), height
  scale = min(height / image_height, width / image_width)
  return (max(1, min(width, round(image_width * scale))),
          max(1, min(height, round(image_height * scale))))


def resize_to_height(image: np.ndarray, height: int,
                     max_width: int | None = None) -> np.ndarray:
  """Resizes to `height` keeping the aspect ratio, squeezing to max_width."""
  new_width, _ = fit_size(image.shape[1], image.shape[0], height,
                          max_width or (1 << 30), variable_width=True)
  return resize(image, new_width, height)


def fit_to_canvas(image: np.ndarray, height: int, width: int,
                  variable_width: bool) -> tuple[np.ndarray, int]:
  """uint8 [height, width, 3] canvas and the width covered by the image.

  Variable width (text lines, and every training example): resized to
  `height` keeping the aspect ratio (squeezed to `width` if longer) and
  padded on the right by repeating its last column, so that augmentation
  sees background there. Fixed size (reading for a digits model): fitted
  into the canvas keeping the aspect ratio and centred on the median border
  colour; the whole width counts as covered.
  """
  new_width, new_height = fit_size(image.shape[1], image.shape[0], height,
                                   width, variable_width)
  resized = resize(image, new_width, new_height)
  if variable_width:
    edge = np.repeat(resized[:, -1:], width - new_width, axis=1)
    return np.concatenate([resized, edge], axis=1), new_width
  canvas = np.empty((height, width, 3), np.uint8)
  canvas[...] = border_color(resized)
  top = (height - new_height) // 2
  left = (width - new_width) // 2
  canvas[top:top + new_height, left:left + new_width] = resized
  return canvas, width


def bucket_widths(max_width: int, step: int) -> tuple[int, ...]:
  """Multiples of `step` below max_width, then max_width itself."""
  return tuple(range(step, max_width, step)) + (max_width,)


def bucket_for(width: int, buckets: Sequence[int]) -> int:
  """The smallest bucket holding `width` (the last one if none does)."""
  for bucket in buckets:
    if width <= bucket:
      return bucket
  return buckets[-1]


def prepare(rgb_uint8: np.ndarray, height: int, width: int,
            variable_width: bool) -> tuple[np.ndarray, int]:
  """RGB pixels -> the model's input, as the training data looked.

  Variable-width models (text lines), exactly as the training pipeline: the
  image is resized to `height` keeping its aspect ratio, its width capped
  at `width` (a longer line is squeezed), standardized, and zeroed on the
  right of its true width up to `width`.

  Fixed-size models (digit strings, trained on height x width renders with
  background all around the text): the image is fitted into height x width
  keeping its aspect ratio and centred on a canvas filled with the median
  colour of its border, so the model sees no padding it was never trained
  on; the width returned is the full `width`, as in training. An image of
  exactly height x width is used as it is, like a training example.

  Args:
    rgb_uint8: [h, w, 3] uint8 RGB pixels (from `image_io.read_image`).
    height: the model's image height.
    width: the model's image width (the maximum width if variable).
    variable_width: whether the model reads variable-width lines.

  Returns:
    ([height, width, 3] float32 standardized pixels, the width in pixels
    covered by the image).
  """
  canvas, true_width = fit_to_canvas(rgb_uint8, height, width,
                                     variable_width)
  output = standardize(canvas)
  output[:, true_width:] = 0.0
  return output, true_width
