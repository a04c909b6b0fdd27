"""Tests of ocr_jax.data.preprocess: training and reading see the same input.

The main test proves that the training input pipeline (PNG decode, fit,
standardize; no augmentation) and reading (`image_io.read_image` +
`preprocess.prepare`) give IDENTICAL float32 tensors and widths for real
image files of every kind reading accepts: RGB, grey (L), 1-bit, 16-bit
(I;16), CMYK JPEG, RGBA, palette, and odd sizes (1 x N, N x 1, tall, wider
than the maximum width, exactly the model size).

Each path is compared on what it is defined for:

- Variable-width models (text lines, 64 x 512). A dataset stores an image as
  RGB uint8 pixels (what `read_image` gives), PNG-encoded by the TFDS Image
  feature, at whatever size it has (khmer_text stores height-64 renders of
  any width). The pipeline decodes it and fits it to 64 x 512; reading
  fits the file's pixels. Same file, same tensors, whatever its size.
- Fixed-size models (digits, 64 x 128). The pipeline is defined on stored
  64 x 128 images (khmer_digits renders; a labeled folder built with
  fixed_width stores `preprocess.fit_to_canvas(pixels, 64, 128, False)`,
  the image centred on its border colour), which it uses as they are.
  Reading centres any file on that same canvas itself. So the pipeline is
  fed the stored canvas and reading the original file.
"""

import os

import ml_collections
import numpy as np
from PIL import Image
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from ocr_jax.data import image_io
from ocr_jax.data import input_pipeline
from ocr_jax.data import labeled_folder
from ocr_jax.data import preprocess
from ocr_jax.data import render
from ocr_jax.text import charset

LINE_HEIGHT, LINE_WIDTH = 64, 512
DIGITS_HEIGHT, DIGITS_WIDTH = 64, 128


def _text_image(height: int, width: int, seed: int) -> np.ndarray:
  """A rendered Khmer text line, RGB uint8, resized to height x width."""
  font = render.khmeros_fonts()[0].path
  pixels = render.render_text(charset.KHMER_DIGITS[seed:] + ' ក ខ គ', font,
                              np.random.default_rng(seed), height=64)
  return np.asarray(Image.fromarray(pixels).resize((width, height),
                                                   Image.BILINEAR))


def _save(folder, name, image: Image.Image, **kwargs) -> str:
  path = os.path.join(folder, name)
  image.save(path, **kwargs)
  return path


@pytest.fixture(scope='module')
def image_files(tmp_path_factory):
  """Real image files of every mode and some odd sizes: {name: path}."""
  folder = str(tmp_path_factory.mktemp('images'))
  line = _text_image(40, 300, 0)
  grey = Image.fromarray(line).convert('L')
  grey16 = Image.fromarray(
      (np.asarray(grey, np.uint16) * 257 + 7).astype(np.uint16))
  assert grey16.mode == 'I;16'
  rgba = np.concatenate([line, np.full(line.shape[:2] + (1,), 255, np.uint8)],
                        axis=-1)
  rgba[:, :40, 3] = 0  # Transparent: composited on white.
  rgba[:, 40:80, 3] = 128
  files = {
      'rgb': _save(folder, 'rgb.png', Image.fromarray(line)),
      'rgb_jpeg_odd': _save(folder, 'odd.jpg',
                            Image.fromarray(_text_image(37, 151, 1)),
                            quality=90),
      'grey': _save(folder, 'grey.png', grey),
      'bilevel': _save(folder, 'bilevel.png', grey.convert('1')),
      'grey16': _save(folder, 'grey16.png', grey16),
      'cmyk_jpeg': _save(folder, 'cmyk.jpg',
                         Image.fromarray(line).convert('CMYK'), quality=95),
      'rgba': _save(folder, 'rgba.png', Image.fromarray(rgba, 'RGBA')),
      'palette': _save(folder, 'palette.png',
                       Image.fromarray(line).quantize(16)),
      'one_row': _save(folder, 'one_row.png',
                       Image.fromarray(_text_image(1, 300, 2))),
      'one_column': _save(folder, 'one_column.png',
                          Image.fromarray(_text_image(300, 1, 3))),
      'tall': _save(folder, 'tall.png',
                    Image.fromarray(_text_image(400, 60, 4))),
      'wider_than_max': _save(folder, 'wide.png',
                              Image.fromarray(_text_image(48, 2000, 5))),
      'exact_line': _save(folder, 'exact_line.png', Image.fromarray(
          _text_image(LINE_HEIGHT, LINE_WIDTH, 6))),
      'exact_digits': _save(folder, 'exact_digits.png', Image.fromarray(
          _text_image(DIGITS_HEIGHT, DIGITS_WIDTH, 7))),
  }
  modes = {name: Image.open(path).mode for name, path in files.items()}
  assert modes['grey16'] == 'I;16' and modes['bilevel'] == '1'
  assert modes['cmyk_jpeg'] == 'CMYK' and modes['palette'] == 'P'
  assert modes['rgba'] == 'RGBA' and modes['grey'] == 'L'
  return files


def _stored_png(pixels: np.ndarray) -> bytes:
  """The bytes a TFDS Image feature stores for uint8 RGB pixels."""
  feature = tfds.features.Image(shape=(None, None, 3), encoding_format='png')
  return feature.encode_example(pixels)


def _pipeline(stored: list[np.ndarray], height: int,
              width: int) -> tuple[np.ndarray, np.ndarray]:
  """The training pipeline's decode, fit and standardize, in tf.data."""
  ds = tf.data.Dataset.from_tensor_slices(
      [_stored_png(pixels) for pixels in stored])
  ds = ds.map(lambda png: input_pipeline.decode_image(png, height, width))
  ds = ds.batch(len(stored)).map(
      lambda images, widths: (input_pipeline.standardize_batch(
          input_pipeline.to_unit_range(images), widths), widths))
  return next(ds.as_numpy_iterator())


def _assert_identical(name, mine, theirs):
  assert mine.dtype == theirs.dtype == np.float32, name
  # Bit for bit: equal float32 bit patterns (0.0 and -0.0 would differ).
  np.testing.assert_array_equal(mine.view(np.uint32), theirs.view(np.uint32),
                                err_msg=name)


def test_variable_width_training_equals_reading(image_files):
  names = sorted(image_files)
  pixels = [image_io.read_image(image_files[name]) for name in names]
  images, widths = _pipeline(pixels, LINE_HEIGHT, LINE_WIDTH)
  expected_widths = {'one_column': 1, 'one_row': LINE_WIDTH,
                     'wider_than_max': LINE_WIDTH, 'exact_line': LINE_WIDTH,
                     'tall': 10, 'rgb': 480}
  for i, name in enumerate(names):
    mine, true_width = preprocess.prepare(
        image_io.read_image(image_files[name]), LINE_HEIGHT, LINE_WIDTH,
        variable_width=True)
    assert true_width == widths[i], name
    if name in expected_widths:
      assert true_width == expected_widths[name], name
    _assert_identical(name, mine, images[i])
    assert np.all(mine[:, true_width:] == 0), name


def test_fixed_size_training_equals_reading(image_files):
  names = sorted(image_files)
  stored = [preprocess.fit_to_canvas(image_io.read_image(image_files[name]),
                                     DIGITS_HEIGHT, DIGITS_WIDTH, False)[0]
            for name in names]
  images, widths = _pipeline(stored, DIGITS_HEIGHT, DIGITS_WIDTH)
  assert (widths == DIGITS_WIDTH).all()
  for i, name in enumerate(names):
    mine, true_width = preprocess.prepare(
        image_io.read_image(image_files[name]), DIGITS_HEIGHT, DIGITS_WIDTH,
        variable_width=False)
    assert true_width == DIGITS_WIDTH
    _assert_identical(name, mine, images[i])
  # A file of exactly the model's size is used as it is, like a render.
  exact = names.index('exact_digits')
  np.testing.assert_array_equal(
      stored[exact], image_io.read_image(image_files['exact_digits']))


def _config(dataset, width, vocabulary, max_length):
  return ml_collections.ConfigDict({
      'dataset': dataset, 'corpus_path': None, 'vocabulary': vocabulary,
      'image_height': 64, 'image_width': width,
      'max_label_length': max_length, 'batch_size': 8, 'eval_batch_size': 8,
      'augment': False, 'shuffle_buffer': 8})


@pytest.mark.parametrize('fixed_width', [None, DIGITS_WIDTH])
def test_tfds_eval_batches_equal_reading(tmp_path, fixed_width):
  """End to end: a labeled folder built into TFDS, read by the pipeline.

  Variable width: the images are 64 high and at most 512 wide, so the
  dataset stores them unresized. Fixed size: the dataset stores each
  image fitted onto its 64 x 128 canvas; reading fits the original.
  """
  folder = tmp_path / 'folder'
  folder.mkdir()
  sizes = [(64, 300), (64, 512), (64, 17), (64, 128)]
  if fixed_width:
    sizes += [(40, 300), (200, 50), (1, 90)]
  lines = []
  for i, (height, width) in enumerate(sizes):
    image = Image.fromarray(_text_image(height, width, i))
    name = f'{i}.png'
    if i % 3 == 1:
      image = image.convert('L')
    elif i % 3 == 2:
      image, name = image.convert('CMYK'), f'{i}.jpg'
    image.save(folder / name)
    lines.append(f'{name}\t{charset.KHMER_DIGITS[:i + 1]}')
  (folder / 'labels.tsv').write_text('\n'.join(lines) + '\n',
                                     encoding='utf-8')
  width = fixed_width or LINE_WIDTH
  name = f'preprocess_test_{width}'
  data_dir = str(tmp_path / 'tfds')
  labeled_folder.build_tfds(name, {'test': str(folder)}, data_dir=data_dir,
                            vocabulary='digits', fixed_width=fixed_width)
  config = _config(name, width, 'digits', 8)
  batch = next(iter(input_pipeline.create_eval_dataset(config, 'test',
                                                       data_dir=data_dir)))
  # The dataset's order is its own (keys are hashed): names say which is which.
  stored = input_pipeline.load_split_examples(config, 'test', data_dir)
  assert len(stored) == len(lines)
  for i, example in enumerate(stored):
    filename = example['filename'].decode()
    mine, true_width = preprocess.prepare(
        image_io.read_image(folder / filename), 64, width,
        variable_width=fixed_width is None)
    assert true_width == batch['width'][i]
    _assert_identical(filename, mine, batch['image'][i])


def test_standardize_values_and_to_uint8_round_trip():
  pixels = np.array([[[0, 128, 255]]], np.uint8)
  standardized = preprocess.standardize(pixels)
  expected = [(0 - 0.485) / 0.229, (128 / 255 - 0.456) / 0.224,
              (1 - 0.406) / 0.225]
  np.testing.assert_allclose(standardized[0, 0], expected, rtol=1e-6)
  every_level = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, 1)
  np.testing.assert_array_equal(
      preprocess.to_uint8(preprocess.standardize(every_level)), every_level)
  # Rounds to the nearest level (a truncating inverse would give 99 here).
  almost_100 = preprocess.standardize(np.full(3, 100, np.uint8)) - 1e-4
  np.testing.assert_array_equal(preprocess.to_uint8(almost_100), [100] * 3)
  # Clipped at both ends; 0 is the channel mean, 0.456 * 255 = 116.3.
  np.testing.assert_array_equal(
      preprocess.to_uint8(np.array([-100.0, 0.0, 100.0], np.float32)),
      [0, 116, 255])


def test_prepare_fixed_size_centres_on_border_colour():
  pixels = np.full((100, 50, 3), 200, np.uint8)
  pixels[40:60, 10:40] = 0
  image, width = preprocess.prepare(pixels, 64, 128, variable_width=False)
  assert image.shape == (64, 128, 3) and image.dtype == np.float32
  assert width == 128
  fill = preprocess.standardize(np.full((3,), 200, np.uint8))
  np.testing.assert_array_equal(image[:, 0], np.broadcast_to(fill, (64, 3)))
  np.testing.assert_array_equal(image[:, 127], np.broadcast_to(fill, (64, 3)))
  # Scaled by 0.64 to 64 x 32 and centred: columns 48..79 hold the image,
  # whose dark box (rows 26..37, columns 54..73) stays dark.
  np.testing.assert_array_equal(image[:, 47], image[:, 0])
  np.testing.assert_array_equal(image[32, 60],
                                preprocess.standardize(np.zeros(3, np.uint8)))


def test_prepare_variable_width_pads_right_and_caps():
  pixels = np.zeros((32, 100, 3), np.uint8)
  image, width = preprocess.prepare(pixels, 64, 512, variable_width=True)
  assert width == 200 and image.shape == (64, 512, 3)
  assert np.all(image[:, 200:] == 0)
  np.testing.assert_array_equal(image[:, :200], preprocess.standardize(
      np.zeros((64, 200, 3), np.uint8)))
  _, width = preprocess.prepare(np.zeros((10, 1000, 3), np.uint8), 64, 512,
                                variable_width=True)
  assert width == 512
  _, width = preprocess.prepare(np.zeros((1000, 3, 3), np.uint8), 64, 512,
                                variable_width=True)
  assert width == 1


def test_fit_size():
  assert preprocess.fit_size(100, 32, 64, 512, True) == (200, 64)
  assert preprocess.fit_size(1000, 10, 64, 512, True) == (512, 64)
  assert preprocess.fit_size(50, 100, 64, 128, False) == (32, 64)
  assert preprocess.fit_size(400, 20, 64, 128, False) == (128, 6)
  assert preprocess.fit_size(128, 64, 64, 128, False) == (128, 64)


def test_resize_is_antialiased():
  # 1-pixel stripes averaged away when shrunk 4x (no aliasing).
  stripes = np.zeros((64, 256, 3), np.uint8)
  stripes[:, ::2] = 255
  small = preprocess.resize(stripes, 64, 16)
  assert small.shape == (16, 64, 3)
  # Exactly mid-grey inside; the edge columns see a clamped filter.
  assert (small[:, 1:-1] == 128).all()


def test_border_color_is_the_median_of_the_edges():
  pixels = np.full((10, 20, 3), 30, np.uint8)
  pixels[1:-1, 1:-1] = 250
  pixels[0, :5] = 0  # A few dark edge pixels do not move the median.
  np.testing.assert_array_equal(preprocess.border_color(pixels), [30] * 3)


def test_to_uint8_of_a_png_roundtrip_batch():
  """The de-normaliser gives back the stored pixels of a pipeline batch."""
  pixels = _text_image(64, 200, 0)
  images, widths = _pipeline([pixels], 64, 256)
  assert widths[0] == 200
  np.testing.assert_array_equal(preprocess.to_uint8(images[0, :, :200]),
                                pixels)
