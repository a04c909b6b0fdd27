"""SIGTERM, the preemption notice of TPU VMs and spot GPUs, as a stop request.

On a preemptible machine the scheduler sends SIGTERM some seconds (TPU VMs:
about 30, GCE spot: 30, AWS spot: 120) before it kills the process. The
training loop asks `PreemptionWatch.reached(step)` after every step; when it
answers True, the loop saves a checkpoint at that step and raises
`Preempted`, and rerunning the same command resumes from it.

One process: a Python SIGTERM handler sets a flag. Several processes: the
notice may reach only some of them, at different steps, and orbax saves are
collective, so every process must save at the same step. JAX's preemption
service (started by `jax.distributed.initialize`, which then owns SIGTERM)
agrees on that step: `multihost_utils.reached_preemption_sync_point`.
"""

import signal
import threading

from absl import logging
import jax
from jax.experimental import multihost_utils

# The exit status of a run stopped by SIGTERM after saving (128 + SIGTERM,
# as a shell reports a process killed by it): not 0, so that a supervisor
# restarts it and a grid does not count it as finished.
EXIT_CODE = 128 + signal.SIGTERM


class Preempted(Exception):
  """Training stopped on SIGTERM after saving a checkpoint at `step`."""

  def __init__(self, step: int, workdir: str):
    super().__init__(
        f'stopped by SIGTERM after saving a checkpoint at step {step} in '
        f'{workdir}; rerun the same command to resume from it')
    self.step = step
    self.workdir = workdir


class PreemptionWatch:
  """A context manager that turns SIGTERM into `reached(step) == True`.

  Multi-process runs rely on JAX's preemption service instead of a Python
  handler (it installs its own, and agrees on the step across processes).
  """

  def __init__(self):
    self._requested = False
    self._previous = None

  def __enter__(self) -> 'PreemptionWatch':
    # signal.signal works only in the main thread; elsewhere (a notebook
    # worker, a test thread) SIGTERM keeps its default meaning.
    if (jax.process_count() == 1 and
        threading.current_thread() is threading.main_thread()):
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def __exit__(self, *exc_info):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None

  def _handle(self, signum, frame):
    del signum, frame
    logging.warning('SIGTERM received: saving a checkpoint after this step')
    self._requested = True

  def request(self):
    """Acts as if SIGTERM had arrived (one process only)."""
    self._requested = True

  def reached(self, step: int) -> bool:
    """Whether to save and stop after global step `step` (every process).

    Call it after every training step, with increasing steps, on every
    process alike.
    """
    if jax.process_count() > 1:
      return multihost_utils.reached_preemption_sync_point(step)
    return self._requested

  def requested_between_steps(self) -> bool:
    """Whether a one-process run got SIGTERM (for checks outside steps).

    Multi-process runs answer False: the notice is acted on at the next
    agreed step.
    """
    return jax.process_count() == 1 and self._requested
