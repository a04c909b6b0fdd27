"""Where the time of a compiled step goes: jax.profiler, grouped by model part.

Traces a few calls of a jitted function, reads the Perfetto trace that
jax.profiler writes, and matches each XLA thunk (a fusion, a matmul, a while
loop...) to its HLO instruction in the compiled module. The instruction's
metadata op_name is the Flax module path of the op that produced it
(".../transpose(jvp(AttentionOCR))/encoder/backbone/stage2_block0/..."), so
thunk self-time can be summed by part (backbone, BiLSTM encoder, attention
decoder, loss, optimizer) and by pass (forward, backward).

Used by model_step_benchmark.py --profile.
"""

import collections
from collections.abc import Callable, Sequence
import glob
import gzip
import json
import os
import re
import tempfile
import time
from typing import Any

import jax

# (substring of the op name, part): the first key found in the name wins.
PARTS = (('backbone', 'backbone'), ('encoder', 'encoder (BiLSTM)'),
         ('decoder', 'decoder (attention)'), ('ctc_head', 'ctc head'),
         ('classifier', 'classifier'), ('adam', 'optimizer'),
         ('scale_by', 'optimizer'), ('apply_updates', 'optimizer'))

_INSTRUCTION = re.compile(
    r'^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=.*?metadata=\{[^}]*?op_name="([^"]*)"')


def instruction_op_names(hlo_text: str) -> dict[str, str]:
  """HLO instruction name -> its metadata op_name, over all computations."""
  names = {}
  for line in hlo_text.splitlines():
    match = _INSTRUCTION.match(line)
    if match:
      names[match.group(1)] = match.group(2)
  return names


def classify(op_name: str) -> tuple[str, str]:
  """(part, pass) of an op from its Flax/JAX name stack."""
  if 'transpose(' in op_name:
    direction = 'backward'
  elif 'jvp(' in op_name:
    direction = 'forward'
  else:
    direction = 'other'
  lowered = op_name.lower()
  for key, part in PARTS:
    if key in lowered:
      return part, direction
  if direction != 'other':
    return 'loss and heads', direction
  return 'other (update, casts)', direction


def self_times(events: Sequence[dict[str, Any]],
               known: Callable[[str], bool]) -> dict[str, float]:
  """Self time (us) per event name, nesting known events per thread."""
  by_thread = collections.defaultdict(list)
  for event in events:
    if event.get('ph') == 'X' and known(event.get('name', '')):
      by_thread[(event.get('pid'), event.get('tid'))].append(event)
  totals = collections.Counter()
  for thread_events in by_thread.values():
    thread_events.sort(key=lambda e: (e['ts'], -e.get('dur', 0)))
    stack = []  # [end, name, children's time, duration]
    def close(entry):
      end, name, children, dur = entry
      totals[name] += dur - children
      if stack:
        stack[-1][2] += dur
    for event in thread_events:
      start, dur = event['ts'], event.get('dur', 0)
      while stack and stack[-1][0] <= start:
        close(stack.pop())
      stack.append([start + dur, event['name'], 0.0, dur])
    while stack:
      close(stack.pop())
  return dict(totals)


def profile(fn: Callable[..., Any], args: Sequence[Any], steps: int = 5,
            top: int = 12) -> dict[str, Any]:
  """Traces `steps` calls of jit(fn)(*args); returns time by part and pass.

  Returns:
    {'wall_s': seconds per call while traced, 'thunk_s': summed thunk self
    time per call (above wall_s when thunks run in parallel), 'by_part':
    {part: {pass: seconds per call}}, 'top_ops': the costliest thunks.}
  """
  compiled = jax.jit(fn).lower(*args).compile()
  op_names = instruction_op_names(compiled.as_text())
  jax.block_until_ready(compiled(*args))
  with tempfile.TemporaryDirectory() as trace_dir:
    with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
      start = time.perf_counter()
      for _ in range(steps):
        jax.block_until_ready(compiled(*args))
      wall = (time.perf_counter() - start) / steps
    path, = glob.glob(os.path.join(trace_dir, '**', 'perfetto_trace.json.gz'),
                      recursive=True)
    with gzip.open(path, 'rt') as f:
      trace = json.load(f)
  events = trace['traceEvents'] if isinstance(trace, dict) else trace
  times = self_times(events, lambda name: name in op_names)
  by_part = collections.defaultdict(collections.Counter)
  for name, micros in times.items():
    part, direction = classify(op_names[name])
    by_part[part][direction] += micros / steps / 1e6
  top_ops = sorted(times.items(), key=lambda kv: -kv[1])[:top]
  return {
      'wall_s': wall,
      'thunk_s': sum(times.values()) / steps / 1e6,
      'by_part': {part: dict(passes) for part, passes in sorted(
          by_part.items(), key=lambda kv: -sum(kv[1].values()))},
      'top_ops': [{'thunk': name, 'op_name': op_names[name],
                   'seconds': micros / steps / 1e6}
                  for name, micros in top_ops],
  }


def format_table(result: dict[str, Any]) -> str:
  """Markdown table of seconds per step by part and pass."""
  passes = ('forward', 'backward', 'other')
  lines = ['| part | forward s | backward s | other s | share |',
           '|---|---|---|---|---|']
  total = result['thunk_s'] or 1.0
  for part, times in result['by_part'].items():
    cells = ' | '.join(f'{times.get(p, 0.0):.4f}' for p in passes)
    share = sum(times.values()) / total
    lines.append(f'| {part} | {cells} | {share:.0%} |')
  lines.append(f"| total (thunk self time) | | | {result['thunk_s']:.4f} | "
               f"wall {result['wall_s']:.4f} s |")
  return '\n'.join(lines)
