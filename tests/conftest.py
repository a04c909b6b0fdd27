"""Shared pytest fixtures: small dataset builds, made once per session."""

import os

import jax
import pytest

# The Khmer corpus shipped with the package (package data, always there).
CORPUS_PATH = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'ocr_jax', 'data', 'corpus', 'khm_lines.txt')
# Small splits keep every build to a couple of seconds; 37 and 21 are not
# multiples of the test batch sizes, so eval padding is exercised.
DIGITS_SPLIT_SIZES = {'train': 96, 'validation': 37, 'test': 21}
TEXT_SPLIT_SIZES = {'train': 64, 'validation': 21, 'test': 21}


@pytest.fixture(scope='session')
def corpus_path():
  """The shipped Khmer corpus (`khmer_corpus.DEFAULT_CORPUS`)."""
  return CORPUS_PATH


@pytest.fixture(scope='session')
def corpus_lines(corpus_path):
  """The raw corpus lines (not normalised), empty lines dropped."""
  with open(corpus_path, encoding='utf-8') as f:
    return [line.rstrip('\n') for line in f if line.strip()]


def build(name, data_dir, **kwargs):
  """Builds a registered ocr_jax dataset into data_dir; returns the builder."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  # Registers the builders with TFDS.
  import ocr_jax.data.datasets  # noqa: F401  pylint: disable=unused-import
  builder = tfds.builder(name, data_dir=str(data_dir), **kwargs)
  builder.download_and_prepare()
  return builder


@pytest.fixture(scope='session')
def build_dataset():
  """`build(name, data_dir, **builder_kwargs)` -> the prepared builder."""
  return build


@pytest.fixture(scope='session')
def digits_split_sizes():
  return dict(DIGITS_SPLIT_SIZES)


@pytest.fixture(scope='session')
def text_split_sizes():
  return dict(TEXT_SPLIT_SIZES)


@pytest.fixture(scope='session')
def khmer_digits_dir(tmp_path_factory):
  """A data_dir holding a small khmer_digits build."""
  data_dir = tmp_path_factory.mktemp('khmer_digits')
  build('khmer_digits', data_dir, split_sizes=DIGITS_SPLIT_SIZES)
  return str(data_dir)


@pytest.fixture(scope='session')
def khmer_text_dir(tmp_path_factory, corpus_path):
  """A data_dir with small khmer_text/stage1 and khmer_text/lines builds."""
  data_dir = tmp_path_factory.mktemp('khmer_text')
  for config in ('stage1', 'lines'):
    build(f'khmer_text/{config}', data_dir, corpus_path=corpus_path,
          split_sizes=TEXT_SPLIT_SIZES)
  return str(data_dir)


@pytest.fixture
def fast_compile():
  """Compiles with most XLA optimisations off, for this test only.

  Cuts compile time of the tiny models severalfold; tests that time or
  compare optimised code simply do not use it. Use it per module with
  `pytestmark = pytest.mark.usefixtures('fast_compile')`.
  """
  previous = jax.config.read('jax_disable_most_optimizations')
  jax.config.update('jax_disable_most_optimizations', True)
  yield
  jax.config.update('jax_disable_most_optimizations', previous)
