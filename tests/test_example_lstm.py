"""examples/lstm_classifier.py is BrainState code: it prints the same numbers on both libraries."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / 'examples' / 'lstm_classifier.py'


def test_lstm_classifier_same_numbers_as_brainstate():
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=str(ROOT))
  procs = [subprocess.Popen([sys.executable, str(SCRIPT), *flag], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
           for flag in ([], ['--brainstate'])]
  (ours, err_ours), (theirs, err_theirs) = (p.communicate(timeout=600) for p in procs)
  assert procs[0].returncode == 0, err_ours
  assert procs[1].returncode == 0, err_theirs
  lines = ours.strip().splitlines()
  assert len(lines) == 5 and all(l.startswith('epoch ') for l in lines), ours
  assert ours == theirs
  first, last = (float(l.split('loss ')[1].split(',')[0]) for l in (lines[0], lines[-1]))
  assert last < 0.5 * first  # it learns
  assert float(lines[-1].rsplit(' ', 1)[1]) > 0.8
