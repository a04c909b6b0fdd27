r"""Steps/s of the real training step on 1, 2, 4 and 8 (fake) CPU devices.

  python -m benchmarks.scaling_benchmark \
      [--config=configs/conservative_small.py] [--devices=1,2,4,8] \
      [--steps=20] [--warmup=2] [--output=benchmarks/results/scaling.json]

Each device count runs in a subprocess whose CPU is split into that many
XLA devices (--xla_force_host_platform_device_count), with the step, state
and global batch built exactly as training builds them
(`model_step_benchmark.create_step`: replicated state, batch split over the
'data' mesh axis). The global batch stays config.batch_size, so each device
computes batch_size / devices rows.

This checks that the data-parallel path works and what it costs, not how it
scales: fake CPU devices share the same cores, so more of them cannot be
faster. On one device the sharded step is also timed against a plain
`jax.jit` of the step on unsharded arrays, the two calls interleaved
(`against_unsharded`): sharding must cost nothing measurable there. What
to expect on accelerators is in docs/scale_out.md.

Writes --output (benchmarks/results/scaling.json) with the machine.
"""

import json
import os
import statistics
import subprocess
import sys
import time

from absl import app
from absl import flags
# Importing JAX does not start it: the subprocesses' XLA_FLAGS still apply.
import jax

from benchmarks import machine
# Its flags (--config, --steps, --warmup, --output) are this benchmark's too.
from benchmarks import model_step_benchmark as step_benchmark
from ocr_jax.training import sharding

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CONFIG = step_benchmark._CONFIG  # pylint: disable=protected-access
_STEPS = step_benchmark._STEPS  # pylint: disable=protected-access
_WARMUP = step_benchmark._WARMUP  # pylint: disable=protected-access
_OUTPUT = step_benchmark._OUTPUT  # pylint: disable=protected-access
DEFAULT_OUTPUT = os.path.join(_ROOT, 'benchmarks', 'results', 'scaling.json')
_DEVICES = flags.DEFINE_list('devices', ['1', '2', '4', '8'],
                             'CPU device counts to time.')
_WORKER = flags.DEFINE_integer(
    'worker_devices', 0, 'Internal: time on this many devices and print the '
    'result as JSON (run by the parent in a subprocess).')


def time_on_this_process(config, steps: int, warmup: int) -> dict:
  """The sharded step's timing here; on one device also the unsharded."""
  step, state, batch = step_benchmark.create_step(config)
  rng = jax.random.key(config.seed)
  # A host copy first: timing donates (consumes) the state.
  host_copy = jax.device_get((state, batch))
  result = {'devices': jax.device_count(),
            'per_device_batch': config.batch_size // jax.device_count(),
            **step_benchmark.time_steps(step, state, batch, rng,
                                        steps=steps, warmup=warmup)}
  result['steps_per_s'] = 1.0 / result['step_s']
  if jax.device_count() == 1:
    result['against_unsharded'] = sharded_against_unsharded(
        step, host_copy, rng, steps=steps, warmup=warmup)
  result['machine'] = machine.machine_info()
  return result


def sharded_against_unsharded(step, host_copy, rng, *, steps: int,
                              warmup: int) -> dict:
  """Median step seconds, sharded (1-device mesh) and plain, interleaved.

  Alternating the two calls exposes both to the same machine load, which
  on a shared machine drifts more than the difference being measured.
  """
  mesh = sharding.create_mesh()
  state, batch = host_copy
  placed = {
      'sharded': (sharding.replicate(state, mesh),
                  sharding.shard_batch(batch, mesh)),
      # No mesh, no shardings: plain arrays on the one device.
      'unsharded': jax.device_put(host_copy, jax.devices()[0]),
  }
  compiled, seconds = {}, {name: [] for name in placed}
  for name, (state, batch) in placed.items():
    compiled[name] = jax.jit(step, donate_argnums=0).lower(
        state, batch, rng).compile()
  for index in range(warmup + steps):
    for name, fn in compiled.items():
      state, batch = placed[name]
      start = time.perf_counter()
      state, metrics = fn(state, batch, rng)
      jax.block_until_ready((state, metrics))
      placed[name] = (state, batch)
      if index >= warmup:
        seconds[name].append(time.perf_counter() - start)
  medians = {f'{name}_step_s': statistics.median(values)
             for name, values in seconds.items()}
  medians['overhead'] = (medians['sharded_step_s'] /
                         medians['unsharded_step_s'] - 1)
  return medians


def run_worker(devices: int) -> dict:
  """Times `devices` fake CPU devices in a fresh process."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', XLA_FLAGS=(
      f'{os.environ.get("XLA_FLAGS", "")} '
      f'--xla_force_host_platform_device_count={devices}').strip())
  # The parent's --config and --config.* flags, as given.
  config_flags_ = [arg for arg in sys.argv[1:]
                   if arg.startswith('--config')]
  output = subprocess.run(
      [sys.executable, '-m', 'benchmarks.scaling_benchmark', *config_flags_,
       f'--worker_devices={devices}', f'--steps={_STEPS.value}',
       f'--warmup={_WARMUP.value}'],
      cwd=_ROOT, env=env, check=True, capture_output=True, text=True).stdout
  return json.loads(output.strip().splitlines()[-1])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  config = _CONFIG.value
  if _WORKER.value:
    print(json.dumps(time_on_this_process(config, _STEPS.value,
                                          _WARMUP.value)), flush=True)
    return
  results = []
  for devices in map(int, _DEVICES.value):
    result = run_worker(devices)
    print(json.dumps({k: v for k, v in result.items() if k != 'machine'}),
          flush=True)
    results.append(result)
  info = results[0].pop('machine')
  for result in results[1:]:
    result.pop('machine')
  output = (_OUTPUT.value if flags.FLAGS['output'].present
            else DEFAULT_OUTPUT)
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  with open(output, 'w', encoding='utf-8') as f:
    json.dump({'machine': info, 'config': config.to_dict(),
               'steps': _STEPS.value, 'warmup': _WARMUP.value,
               'results': results}, f, indent=2)


if __name__ == '__main__':
  app.run(main)
