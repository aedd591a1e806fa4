import pytest
import torch

from oneshot.testing import ToySupernet


@pytest.fixture
def toy_supernet():
    torch.manual_seed(0)
    return ToySupernet()
