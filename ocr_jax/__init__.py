"""ocr_jax: Khmer OCR training and inference in JAX."""

__version__ = '0.1.0'
