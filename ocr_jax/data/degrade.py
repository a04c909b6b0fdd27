"""Degradations of rendered text lines: scans, faxes and phone photos.

numpy and Pillow only (no TensorFlow), so it runs in worker processes and at
reading time. Every function takes its randomness from a passed
`numpy.random.Generator`, so the same generator state gives the same bytes.

The text is handled as an ink mask (float32 [h, w] in [0, 1], 1 = ink)
until it is composited over paper; the geometric steps (rotation,
perspective, ink spread) act on the mask, the photometric ones (lighting,
blur, noise, bitonal thresholding, JPEG) on the RGB image.
"""

import io

import numpy as np
from PIL import Image
from PIL import ImageFilter

from ocr_jax.data import render


def to_image(mask: np.ndarray) -> Image.Image:
  """A float mask in [0, 1] as an 8-bit Pillow image."""
  return Image.fromarray(np.clip(np.round(mask * 255.0), 0, 255).astype(
      np.uint8))


def from_image(image: Image.Image) -> np.ndarray:
  """An 8-bit Pillow image as a float32 mask in [0, 1]."""
  return np.asarray(image, dtype=np.float32) * (1.0 / 255.0)


def ink_spread(mask: Image.Image, rng: np.random.Generator) -> Image.Image:
  """Thickens (ink bleed, toner) or thins (faded print) the strokes.

  Thickening grows every stroke by a pixel (a 3x3 max filter). Thinning
  lowers the anti-aliased edges (a gamma of 1.5-3 on the coverage) rather
  than eroding: an erosion deletes the hairlines of thin faces outright.
  """
  if rng.random() < 0.6:
    return mask.filter(ImageFilter.MaxFilter(3))
  gamma = rng.uniform(1.5, 3.0)
  table = [int(round(255.0 * (v / 255.0) ** gamma)) for v in range(256)]
  return mask.point(table)


def rotate(mask: Image.Image, degrees: float) -> Image.Image:
  """Rotates the mask, growing the canvas so no ink is cut."""
  if abs(degrees) < 1e-3:
    return mask
  return mask.rotate(degrees, resample=Image.Resampling.BILINEAR,
                     expand=True, fillcolor=0)


def _perspective_coefficients(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
  """Pillow's PERSPECTIVE coefficients mapping output `dst` to input `src`."""
  rows = []
  for (x, y), (u, v) in zip(dst, src):
    rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
    rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
  return np.linalg.solve(np.array(rows, np.float64), src.reshape(8))


def perspective(mask: Image.Image, rng: np.random.Generator,
                strength: float = 0.06) -> Image.Image:
  """A slight perspective: each corner moves up to `strength` x height.

  The canvas grows by the largest displacement on every side, so no ink
  leaves the image.
  """
  w, h = mask.size
  jitter = strength * h
  pad = int(np.ceil(jitter))
  src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
  dst = src + pad + rng.uniform(-jitter, jitter, size=(4, 2))
  coefficients = _perspective_coefficients(src, dst)
  return mask.transform((w + 2 * pad, h + 2 * pad),
                        Image.Transform.PERSPECTIVE, tuple(coefficients),
                        resample=Image.Resampling.BILINEAR, fillcolor=0)


def resize(mask: Image.Image, width: int, height: int,
           rng: np.random.Generator) -> Image.Image:
  """Resizes with a random filter (scanners and phones differ)."""
  method = (Image.Resampling.BILINEAR, Image.Resampling.BOX,
            Image.Resampling.LANCZOS, Image.Resampling.BICUBIC)[
                int(rng.integers(4))]
  return mask.resize((max(1, width), max(1, height)), method)


def smooth_field(rng: np.random.Generator, height: int, width: int,
                 cells: int) -> np.ndarray:
  """Low-frequency noise in [-1, 1]: a coarse random grid, upsampled."""
  grid_w = max(2, int(round(cells * width / max(height, 1))))
  grid = rng.uniform(-1.0, 1.0, size=(max(2, cells), min(grid_w, 64)))
  image = Image.fromarray(grid.astype(np.float32)).resize(
      (width, height), Image.Resampling.BICUBIC)
  return np.clip(np.asarray(image), -1.0, 1.0)


def lighting(rng: np.random.Generator, height: int,
             width: int) -> np.ndarray:
  """An uneven illumination factor [h, w, 1] in about [0.55, 1.1]."""
  kind = int(rng.integers(3))
  ys = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None]
  xs = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
  if kind == 0:  # A shadow falling off in one direction.
    angle = rng.uniform(0.0, 2.0 * np.pi)
    ramp = np.cos(angle) * xs + np.sin(angle) * ys * 0.3
    field = 1.0 - rng.uniform(0.1, 0.4) * (ramp - ramp.min()) / max(
        np.ptp(ramp), 1e-6)
  elif kind == 1:  # A hot spot (flash, lamp).
    cx, cy = rng.uniform(-1.0, 1.0, size=2)
    r2 = ((xs - cx) ** 2) * 0.5 + (ys - cy) ** 2
    field = 1.1 - rng.uniform(0.1, 0.4) * np.minimum(r2, 1.0)
  else:  # Blotchy light.
    field = 1.0 - rng.uniform(0.05, 0.25) * (
        0.5 + 0.5 * smooth_field(rng, height, width, int(rng.integers(2, 5))))
  return np.asarray(field, np.float32)[..., None]


def paper(rng: np.random.Generator, height: int, width: int,
          light: bool) -> np.ndarray:
  """A float32 RGB paper [height, width, 3] in [0, 1], light or dark.

  A tinted grey (light 0.75-1.0, dark 0.0-0.3) with one of: no variation,
  a linear gradient, grain, or a paper texture (blotches, grain and at times
  faint ruled lines). The variation stays within about +-0.12, so a colour
  from `render.contrasting_colour` contrasts everywhere.
  """
  level = rng.uniform(0.75, 1.0) if light else rng.uniform(0.0, 0.3)
  base = np.clip(level + rng.uniform(-0.08, 0.08, size=3), 0.0, 1.0)
  kind = int(rng.integers(4))
  if kind == 0:
    return np.broadcast_to(base.astype(np.float32),
                           (height, width, 3)).copy()
  if kind == 1:
    angle = rng.uniform(0.0, 2.0 * np.pi)
    ys = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None]
    xs = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :]
    variation = 0.24 * (np.cos(angle) * xs + np.sin(angle) * ys)
  elif kind == 2:
    variation = rng.normal(0.0, rng.uniform(0.01, 0.04),
                           size=(height, width)).astype(np.float32)
  else:
    variation = 0.06 * smooth_field(rng, height, width,
                                    int(rng.integers(2, 6)))
    variation += rng.normal(0.0, 0.012, size=(height, width)).astype(
        np.float32)
    if rng.random() < 0.2:
      period = int(rng.integers(8, 24))
      variation[::period] -= 0.08
  return np.clip(base.astype(np.float32)[None, None, :] + variation[..., None],
                 0.0, 1.0)


def composite(mask: np.ndarray, rng: np.random.Generator, *,
              light_paper: bool = True) -> np.ndarray:
  """Ink over paper: float32 RGB [h, w, 3] in [0, 1].

  Dark ink on light paper, or light ink on dark paper; the ink contrasts
  with the paper by at least 0.4 in grey level (`render.contrasting_colour`).
  """
  h, w = mask.shape
  background = paper(rng, h, w, light_paper)
  colour = render.contrasting_colour(rng, float(background.mean()))
  alpha = mask[..., None]
  return background + (colour - background) * alpha


def blur(image: Image.Image, radius: float) -> Image.Image:
  return image.filter(ImageFilter.GaussianBlur(radius))


def motion_blur(image: Image.Image, rng: np.random.Generator) -> Image.Image:
  """A short horizontal or vertical smear (camera shake)."""
  size = 3
  kernel = np.zeros((size, size), np.float32)
  if rng.random() < 0.5:
    kernel[size // 2, :] = 1.0
  else:
    kernel[:, size // 2] = 1.0
  return image.filter(ImageFilter.Kernel((size, size), kernel.ravel().tolist(),
                                         scale=float(kernel.sum())))


def gaussian_noise(image: np.ndarray, rng: np.random.Generator,
                   sigma: float) -> np.ndarray:
  noise = rng.normal(0.0, sigma, size=image.shape[:2]).astype(np.float32)
  return image + noise[..., None]


def speckle(image: np.ndarray, rng: np.random.Generator,
            amount: float) -> np.ndarray:
  """Salt and pepper dots (dust, toner specks) on `amount` of the pixels."""
  h, w = image.shape[:2]
  count = int(amount * h * w)
  if not count:
    return image
  ys = rng.integers(0, h, count)
  xs = rng.integers(0, w, count)
  values = (rng.random(count) < 0.5).astype(np.float32)
  image = image.copy()
  image[ys, xs] = values[:, None]
  return image


def bitonal(image: np.ndarray, rng: np.random.Generator, *,
            light_paper: bool = True) -> np.ndarray:
  """Fax or 1-bit scan: black and white only.

  Like a scanner's adaptive threshold, each pixel is compared with the
  local paper level (a max filter and a wide blur of the grey image), so
  shadows and blotches on the paper stay white rather than turning into
  black areas. The threshold lies 35-75 % of the way from the ink level to
  the paper level, so strokes break up (low) or fill in (high); at times
  the result is Floyd-Steinberg dithered instead. `light_paper` False:
  light ink on dark paper (the polarity is kept).
  """
  grey = image.mean(axis=-1)
  inverted = not light_paper
  if inverted:
    grey = 1.0 - grey
  h = grey.shape[0]
  paper_level = to_image(grey).filter(ImageFilter.MaxFilter(7)).filter(
      ImageFilter.GaussianBlur(max(2.0, h / 3.0)))
  ratio = grey / np.maximum(from_image(paper_level), 0.05)
  # The ink level (a low percentile), so that faint or blurred ink survives.
  ink = min(float(np.percentile(ratio, 2)), 0.8)
  if rng.random() < 0.2:
    # Paper to white first, else the dither sprinkles it with dots.
    paper = max(float(np.percentile(ratio, 90)), ink + 0.05)
    stretched = np.clip((ratio - ink) / (paper - ink), 0.0, 1.0)
    out = np.asarray(to_image(stretched).convert('1'), dtype=np.float32)
  else:
    level = ink + (1.0 - ink) * rng.uniform(0.35, 0.75)
    out = (ratio > level).astype(np.float32)
  if inverted:
    out = 1.0 - out
  return np.repeat(out[..., None], 3, axis=-1)


def jpeg(image: Image.Image, quality: int) -> Image.Image:
  """JPEG compression artefacts at the given quality (1-95)."""
  buffer = io.BytesIO()
  image.save(buffer, format='JPEG', quality=int(quality))
  buffer.seek(0)
  with Image.open(buffer) as decoded:
    return decoded.convert('RGB')


def to_uint8(image: np.ndarray) -> np.ndarray:
  return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
