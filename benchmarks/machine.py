"""Describes the machine a benchmark ran on (printed and stored in JSON)."""

import os
import platform


def cpu_model() -> str:
  try:
    with open('/proc/cpuinfo', encoding='utf-8') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or 'unknown'


def machine_info() -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  return {
      'cpu_model': cpu_model(),
      'cpu_count': os.cpu_count(),
      'python': platform.python_version(),
      'jax': jax.__version__,
      'backend': jax.default_backend(),
      'devices': [str(d) for d in jax.devices()],
  }
