"""The generic evaluation loop."""

import torch
from torch import nn

from oneshot import Evaluator, inference_on_batches


class MeanOutput(Evaluator):
    def __init__(self):
        self.values = []
        self.grad_enabled = []

    def reset(self):
        self.values = []

    def process(self, inputs, outputs):
        self.grad_enabled.append(torch.is_grad_enabled())
        self.values.append(float(outputs.mean()))

    def evaluate(self):
        return {"fitness": sum(self.values) / len(self.values), "batches": float(len(self.values))}


def test_loop_runs_in_eval_mode_without_gradients_and_restores_the_mode():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.9))  # dropout would make train mode visible
    model.train()
    evaluator = MeanOutput()
    batches = [torch.ones(4, 2), torch.zeros(4, 2)]
    first = inference_on_batches(model, batches, evaluator)
    assert model.training and evaluator.grad_enabled == [False, False]
    assert first["batches"] == 2.0
    assert inference_on_batches(model, batches, evaluator) == first  # reset between runs, deterministic
    # a custom forward picks the input out of the batch
    pairs = [(b, None) for b in batches]
    assert inference_on_batches(model, pairs, evaluator, forward=lambda m, b: m(b[0])) == first
