"""Describes the machine a benchmark ran on: the one `machine_info()`.

Every benchmark stores this dict with its results, so that figures from
different machines (or a busy one: see the load average) are not compared
unawares.
"""

import os
import platform
import resource

import jax


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
  """CPU model and count, load average, Python and JAX, JAX's devices."""
  return {
      'cpu_model': cpu_model(),
      'cpu_count': os.cpu_count(),
      'load_average_1m': os.getloadavg()[0],
      'python': platform.python_version(),
      'jax': jax.__version__,
      'backend': jax.default_backend(),
      'device_kind': jax.devices()[0].device_kind,
      'devices': [str(d) for d in jax.devices()],
  }


def cpu_seconds() -> float:
  """User + system CPU seconds of this process so far (all its threads)."""
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime
