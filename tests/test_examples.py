"""examples/digits_classifier.py: both training styles agree, learn the task, plot the curves."""

import importlib.util
from pathlib import Path

from conftest import REORDER_RTOL, assert_close

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
  path = ROOT / 'examples' / f'{name}.py'
  spec = importlib.util.spec_from_file_location(f'examples_{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_digits_classifier_both_styles_agree(tmp_path):
  digits = _load('digits_classifier')
  plot = tmp_path / 'out' / 'loss.png'
  res = digits.main(['--plot', str(plot), '--no-progress'])

  bs_losses = res['losses']['brainstate']
  nnx_losses = res['losses']['nnx']
  assert len(bs_losses) == len(nnx_losses) == res['steps']
  assert_close(bs_losses, nnx_losses, rtol=REORDER_RTOL, atol=0)
  assert bs_losses[-1] < 0.1 * bs_losses[0]  # it actually trained

  acc = res['test_accuracy']
  assert acc['brainstate'] == acc['nnx']
  assert acc['brainstate'] > 0.9

  assert Path(res['plot']) == plot
  assert plot.is_file() and plot.stat().st_size > 0
