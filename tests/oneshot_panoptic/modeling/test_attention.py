"""Inter-modular attention: exact upsampled statistics, directions, residual calibration."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from oneshot import SearchSpace, activate
from oneshot_panoptic.modeling.attention import InterModularAttention, upsampled_mean


def _pyramid(
    batch: int, channels: int, sizes: list[tuple[int, int]], seed: int = 0
) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, channels, h, w, generator=gen) for h, w in sizes]


# P2..P6 of a 96×160 padded image (P6 = max-pool of P5, ceil) and an odd-sized pyramid.
SIZES = [
    [(24, 40), (12, 20), (6, 10), (3, 5), (2, 3)],
    [(25, 17), (13, 9), (7, 5), (4, 3)],
]


@pytest.mark.parametrize("sizes", SIZES)
def test_upsampled_mean_equals_pooling_the_upsampled_concatenation(
    sizes: list[tuple[int, int]],
) -> None:
    feats = _pyramid(2, 3, sizes)
    target = feats[0].shape[-2:]
    explicit = torch.cat(
        [feats[0]]
        + [F.interpolate(f, size=target, mode="bilinear", align_corners=False) for f in feats[1:]],
        dim=1,
    ).mean(dim=(2, 3))
    torch.testing.assert_close(upsampled_mean(feats), explicit, rtol=1e-5, atol=1e-6)


def _module(fpn_channels: int = 16, sem_channels: int = 8) -> InterModularAttention:
    return InterModularAttention(fpn_channels=fpn_channels, semantic_channels=sem_channels)


def test_labels_components_and_widths() -> None:
    module = _module()
    space = SearchSpace.from_module(module)
    assert space.labels == tuple(f"inter.{i}" for i in range(9))
    assert set(space.components) == {"inter"}
    assert space.num_choices == (3,) * 9
    fg = module.fg_to_bg[0].candidates["r4"]
    bg = module.bg_to_fg[0].candidates["r16"]
    assert (fg.fc1.in_features, fg.fc2.out_features) == (5 * 16, 8)  # all five FPN levels
    assert (bg.fc1.in_features, bg.fc2.out_features) == (4 * 8, 16)


def test_forward_matches_the_paper_equations() -> None:
    torch.manual_seed(0)
    module = _module()
    fpn = _pyramid(2, 16, SIZES[0], seed=1)
    sem = _pyramid(2, 8, SIZES[0][:4], seed=2)
    arch = [0, 1, 2, 0, 1, 2, 0, 1, 2]
    with activate(module, arch):
        fpn_out, sem_out = module(fpn, sem)
        z_fpn, z_sem = upsampled_mean(fpn), upsampled_mean(sem)  # from uncalibrated features
        for i, s in enumerate(sem):
            a = module.fg_to_bg[i](z_fpn)
            torch.testing.assert_close(sem_out[i], s + a * s)
        for i, f in enumerate(fpn):
            a = module.bg_to_fg[i](z_sem)
            torch.testing.assert_close(fpn_out[i], f + a * f)
    assert [t.shape for t in fpn_out] == [t.shape for t in fpn]
    assert [t.shape for t in sem_out] == [t.shape for t in sem]


def test_foreground_to_background_reads_p2_and_p6() -> None:
    """The reference code ignored P2; here every FPN level changes the semantic calibration."""
    torch.manual_seed(0)
    module = _module(sem_channels=32)
    fpn = _pyramid(1, 16, SIZES[0], seed=1)
    sem = _pyramid(1, 32, SIZES[0][:4], seed=2)
    with activate(module, [0] * 9), torch.no_grad():
        _, base = module(fpn, sem)
        for level in (0, 4):
            changed = list(fpn)
            changed[level] = changed[level] + 3.0 * torch.randn(1, 16, 1, 1)
            _, out = module(changed, sem)
            assert not torch.allclose(out[0], base[0]), (
                f"semantic attention ignores FPN level {level}"
            )


def test_wrong_number_of_levels_raises() -> None:
    module = _module()
    with activate(module, [0] * 9), pytest.raises(ValueError):
        module(_pyramid(1, 16, SIZES[0][:4]), _pyramid(1, 8, SIZES[0][:4]))
