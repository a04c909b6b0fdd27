"""TFDS builders of ocr_jax; importing this package registers them.

  khmer_digits                    1-8 Khmer digits, 64 x 128.
  khmer_text/{stage1,stage2,stage3,lines}
                                  Khmer text, height 64, variable width.

Nothing is downloaded: `download_and_prepare` renders the images locally.
"""

from ocr_jax.data.datasets import khmer_digits
from ocr_jax.data.datasets import khmer_text

__all__ = ['khmer_digits', 'khmer_text']
