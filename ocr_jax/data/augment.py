"""Batched on-the-fly image augmentation as TF ops, for tf.data.

Everything except JPEG runs on whole batches after `batch()` (one kernel
call per op for the batch, which is what makes >2,000 images/s possible on
2 CPU cores):
  geometry    rotation +-15 deg, scale 0.8-1.2 and a slight perspective,
              composed into ONE projective matrix per image and applied by
              a single ImageProjectiveTransformV3 call (one resampling);
  photometric Gaussian blur on 30 % of images, brightness x0.8-1.2,
              contrast x0.8-1.2, Gaussian luminance noise sigma 0.01
              (fields drawn from a bank made once, see `make_noise_bank`).
JPEG artefacts (quality 30-90 on 20 % of images) work on single images, so
`jpeg_example` runs per example before batching.

The text must stay readable and fully inside the image, so the geometry is
bounded by the ink box stored with each example (`text_box`; the whole
true image when a dataset has none): the transform is centred on the box,
rotation shrinks to 15 deg * 2H / box width for boxes wider than 2:1 (long
lines tilt less), and the scale 0.8-1.2 is capped so that the rotated,
tilted box still fits inside the true image (short texts zoom in, texts
that fill the image shrink a little when rotated).

All randomness is stateless: the same seed gives the same augmentation.
"""

import math

import tensorflow as tf

MAX_ROTATION_DEG = 15.0
SCALE_RANGE = (0.8, 1.2)
# Largest change of the projective denominator across the half width/height.
PERSPECTIVE = 0.05
NOISE_STDDEV = 0.01
BRIGHTNESS = 0.2
CONTRAST = 0.2
BLUR_PROBABILITY = 0.3
JPEG_PROBABILITY = 0.2
JPEG_QUALITY = (30, 90)


def _uniform(seed, shape, low, high):
  return tf.random.stateless_uniform(shape, seed, low, high)


def _translation(dx, dy):
  """[B, 3, 3] matrices x' = x + dx, y' = y + dy."""
  ones, zeros = tf.ones_like(dx), tf.zeros_like(dx)
  return tf.reshape(tf.stack([ones, zeros, dx, zeros, ones, dy,
                              zeros, zeros, ones], axis=1), [-1, 3, 3])


def _full_boxes(widths, height):
  """[B, 4] boxes covering each true image: [0, 0, width, height)."""
  widths = tf.cast(widths, tf.float32)
  zeros = tf.zeros_like(widths)
  return tf.stack([zeros, zeros, widths, zeros + height], axis=1)


def projective_transforms(seed, widths, height, boxes=None):
  """Output->input projective parameters [B, 8] for ImageProjectiveTransform.

  The forward map rotates, scales and tilts about the centre of the text
  box. The scale is capped so the transformed box stays inside the true
  image (perspective included: it stretches the box by at most
  1 / (1 - 2 * PERSPECTIVE)).

  Args:
    seed: int32 or int64 [2] stateless seed.
    widths: int [B] true image widths (the image starts at column 0).
    height: image height (python int).
    boxes: float [B, 4] ink boxes [x0, y0, x1, y1); None: whole images.
  """
  seeds = tf.random.experimental.stateless_split(seed, 3)
  if boxes is None:
    boxes = _full_boxes(widths, height)
  x0, y0, x1, y1 = tf.unstack(tf.cast(boxes, tf.float32), axis=1)
  widths = tf.cast(widths, tf.float32)
  batch = tf.shape(widths)[0]
  cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
  half_w = tf.maximum((x1 - x0) / 2.0, 1.0)
  half_h = tf.maximum((y1 - y0) / 2.0, 1.0)
  # Long lines tilt less: 15 deg up to a 2:1 box, then 15 * 2H / box width.
  max_angle = math.radians(MAX_ROTATION_DEG) * tf.minimum(
      1.0, height / half_w)
  angle = _uniform(seeds[0], [batch], -1.0, 1.0) * max_angle
  cos, sin = tf.abs(tf.cos(angle)), tf.abs(tf.sin(angle))
  room_x = tf.maximum(tf.minimum(cx, widths - cx), 1.0)
  room_y = tf.maximum(tf.minimum(cy, height - cy), 1.0)
  fit = tf.minimum(room_x / (half_w * cos + half_h * sin),
                   room_y / (half_w * sin + half_h * cos))
  scale = tf.minimum(_uniform(seeds[1], [batch], *SCALE_RANGE),
                     fit * (1.0 - 2.0 * PERSPECTIVE))
  # Tilt terms relative to the box (at least half the height wide), so the
  # box edges change size by at most PERSPECTIVE each way.
  tilt = _uniform(seeds[2], [batch, 2], -PERSPECTIVE, PERSPECTIVE)
  tilt = tilt / tf.stack([tf.maximum(half_w, height / 2.0),
                          tf.maximum(half_h, height / 2.0)], axis=1)
  zeros, ones = tf.zeros([batch]), tf.ones([batch])
  c, s = tf.cos(angle) * scale, tf.sin(angle) * scale
  rotate_scale = tf.reshape(tf.stack(
      [c, -s, zeros, s, c, zeros, zeros, zeros, ones], axis=1), [-1, 3, 3])
  perspective = tf.reshape(tf.stack(
      [ones, zeros, zeros, zeros, ones, zeros, tilt[:, 0], tilt[:, 1], ones],
      axis=1), [-1, 3, 3])
  forward = (_translation(cx, cy) @ rotate_scale @ perspective
             @ _translation(-cx, -cy))
  inverse = tf.linalg.inv(forward)
  inverse = inverse / inverse[:, 2:3, 2:3]
  return tf.reshape(inverse, [-1, 9])[:, :8]


def _blur(images):
  """3x3 Gaussian blur (sigma 0.85) of [B, H, W, C], edges replicated."""
  taps = tf.constant([0.25, 0.5, 0.25])
  kernel = taps[:, None] * taps[None, :]
  channels = images.shape[-1]
  kernel = tf.tile(kernel[:, :, None, None], [1, 1, channels, 1])
  padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode='SYMMETRIC')
  return tf.nn.depthwise_conv2d(padded, kernel, [1, 1, 1, 1], 'VALID')


def _blur_some(images, seed):
  """Blurs the first BLUR_PROBABILITY of the batch, by a random amount.

  Batches come shuffled, so a fixed share is as random as a coin per image
  and costs a convolution of that share only.
  """
  count = int(math.ceil(BLUR_PROBABILITY * images.shape[0]))
  if not count:
    return images
  head, tail = images[:count], images[count:]
  amount = _uniform(seed, [count, 1, 1, 1], 0.5, 1.0)
  head = head + amount * (_blur(head) - head)
  return tf.concat([head, tail], axis=0)


def make_noise_bank(seed, height: int, width: int,
                    max_bytes: int = 64 * 2**20) -> tf.Tensor:
  """Gaussian luminance noise fields [K, H, W, 1], sigma NOISE_STDDEV.

  Drawing fresh normals costs more than the whole rest of the photometric
  augmentation on CPU, so each image takes a random field of this bank
  (K = 64..512 fields, up to max_bytes) with a random sign instead.
  """
  count = int(min(512, max(64, max_bytes // (height * width * 4))))
  return tf.random.stateless_normal([count, height, width, 1],
                                    tf.constant(seed, tf.int64),
                                    stddev=NOISE_STDDEV)


def _noise(seed, batch, noise_bank):
  seeds = tf.random.experimental.stateless_split(seed, 2)
  index = tf.random.stateless_uniform([batch], seeds[0], 0,
                                      tf.shape(noise_bank)[0], tf.int32)
  sign = tf.sign(_uniform(seeds[1], [batch, 1, 1, 1], -1.0, 1.0))
  return tf.gather(noise_bank, index) * sign


def augment_batch(images, widths, seed, noise_bank=None, boxes=None):
  """Augments a batch of float images in [0, 1].

  Args:
    images: float32 [B, H, W, 3] in [0, 1], B static; columns >= widths[i]
      hold replicated edge pixels (they are zeroed later).
    widths: int32 [B] true widths.
    seed: int32 or int64 [2] stateless seed (fold the batch index in).
    noise_bank: optional `make_noise_bank` output for [H, W]; without it the
      noise is drawn fresh (slower).
    boxes: optional float [B, 4] ink boxes [x0, y0, x1, y1) that must stay
      inside the image; None: the whole true image.

  Returns:
    float32 [B, H, W, 3] in [0, 1].
  """
  seeds = tf.random.experimental.stateless_split(seed, 5)
  batch, height, width = images.shape[:3]
  transforms = projective_transforms(seeds[0], widths, height, boxes)
  images = tf.raw_ops.ImageProjectiveTransformV3(
      images=images, transforms=transforms,
      output_shape=tf.constant([height, width], tf.int32),
      fill_value=tf.constant(0.0), interpolation='BILINEAR',
      fill_mode='NEAREST')
  images = _blur_some(images, seeds[1])
  # Brightness b then contrast c about the mean m, fused into one
  # multiply-add: ((x b - m b) c + m b) = x (b c) + m b (1 - c).
  factors = _uniform(seeds[2], [batch, 2, 1, 1, 1], -1.0, 1.0)
  brightness = 1.0 + BRIGHTNESS * factors[:, 0]
  contrast = 1.0 + CONTRAST * factors[:, 1]
  mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
  offset = mean * brightness * (1.0 - contrast)
  images = images * (brightness * contrast) + offset
  # Luminance noise, shared by the channels (a third of the random numbers).
  if noise_bank is None:
    noise = tf.random.stateless_normal([batch, height, width, 1], seeds[3],
                                       stddev=NOISE_STDDEV)
  else:
    noise = _noise(seeds[3], batch, noise_bank)
  return tf.clip_by_value(images + noise, 0.0, 1.0)


def jpeg_example(image, seed):
  """JPEG-compresses a uint8 [H, W, 3] image with JPEG_PROBABILITY."""
  seeds = tf.random.experimental.stateless_split(seed, 2)
  apply = tf.random.stateless_uniform([], seeds[0]) < JPEG_PROBABILITY
  result = tf.cond(
      apply,
      lambda: tf.image.stateless_random_jpeg_quality(
          image, JPEG_QUALITY[0], JPEG_QUALITY[1], seeds[1]),
      lambda: image)
  return tf.ensure_shape(result, image.shape)
