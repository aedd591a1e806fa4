import pytest
import torch
from torchvision.ops import deform_conv2d as reference

from oneshot_panoptic.modeling.deform import deform_conv2d_sampled


@pytest.mark.parametrize(
    "n, c, c_out, h, w, k, stride, padding, dilation, groups, offset_groups, scale",
    [
        (2, 4, 6, 9, 11, 3, 1, 1, 1, 1, 1, 1.5),
        (1, 6, 4, 10, 8, 5, 1, 4, 2, 1, 1, 3.0),  # ATConv-like dilation, large offsets (many out of bounds)
        (2, 4, 4, 12, 12, 3, 2, 1, 1, 2, 2, 0.7),  # stride, conv groups and offset groups
        (1, 3, 5, 6, 7, 3, 1, 0, 1, 1, 1, 10.0),  # everything far outside the image
    ],
)
def test_matches_torchvision_values_and_gradients(n, c, c_out, h, w, k, stride, padding, dilation, groups, offset_groups, scale):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, h, w, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(c_out, c // groups, k, k, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(c_out, generator=g, dtype=torch.float64, requires_grad=True)
    ho = (h + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    wo = (w + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    offset = (torch.randn(n, 2 * offset_groups * k * k, ho, wo, generator=g, dtype=torch.float64) * scale).requires_grad_()
    mask = torch.rand(n, offset_groups * k * k, ho, wo, generator=g, dtype=torch.float64).requires_grad_()
    args = (stride, padding, dilation)

    ours = deform_conv2d_sampled(x, offset, weight, bias, *args, mask=mask)
    ref = reference(x, offset, weight, bias, *args, mask=mask)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-9)

    grad_out = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    inputs = (x, offset, weight, bias, mask)
    ours_grads = torch.autograd.grad(ours, inputs, grad_out)
    ref_grads = torch.autograd.grad(ref, inputs, grad_out)
    for name, a, b in zip(("input", "offset", "weight", "bias", "mask"), ours_grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-7, msg=name)


def test_zero_offsets_equal_plain_conv():
    x = torch.randn(2, 4, 8, 8)
    weight = torch.randn(3, 4, 3, 3)
    offset = torch.zeros(2, 18, 8, 8)
    mask = torch.ones(2, 9, 8, 8)
    out = deform_conv2d_sampled(x, offset, weight, None, 1, 1, 1, mask=mask)
    torch.testing.assert_close(out, torch.nn.functional.conv2d(x, weight, padding=1), rtol=1e-5, atol=1e-5)
