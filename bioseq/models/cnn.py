"""Basset/DeepSEA-style convolution stack."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_functional
import torch.nn.functional as F
from torch import nn

from . import register


def pool_mask(mask: torch.Tensor, pool: int) -> torch.Tensor:
    """Downsample a (batch, length) mask the way MaxPool1d(pool, ceil_mode=True) does."""
    if pool == 1:
        return mask
    return F.max_pool1d(mask.unsqueeze(1).float(), pool, ceil_mode=True).squeeze(1) > 0


def _sum_over_processes(values: torch.Tensor) -> torch.Tensor:
    """Sum across the processes of a multi-process (DDP) run, differentiably; else as is."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return dist_functional.all_reduce(values)
    return values


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm whose batch statistics count real positions only (padding would bias them).

    In multi-process training the statistics are those of the global batch (summed over
    processes), as in single-process training: each process holds only a part of it.
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        synced = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        if not self.training or (not synced and bool(mask.all())):
            return super().forward(x)
        weights = mask.unsqueeze(1).float()  # (B, 1, L)
        values = x.float()  # statistics in fp32 under autocast too
        sums = _sum_over_processes(torch.cat([weights.sum().reshape(1),
                                              (values * weights).sum((0, 2))]))
        count, mean = sums[0], sums[1:] / sums[0]
        var = _sum_over_processes(((values - mean[:, None]) ** 2 * weights).sum((0, 2))) / count
        with torch.no_grad():
            unbiased = var * count / (count - 1).clamp(min=1)
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(unbiased, self.momentum)
            self.num_batches_tracked += 1
        scale = self.weight / torch.sqrt(var + self.eps)
        return ((values - mean[:, None]) * scale[:, None] + self.bias[:, None]).to(x.dtype)


class ConvBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, pool: int,
                 dropout: float, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding="same",
                              dilation=dilation, bias=False)
        self.norm = MaskedBatchNorm1d(out_channels)
        self.pool = pool
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # zeroing padding after every layer keeps it from leaking into real positions;
        # fixed windows have none, and skipping the no-op saves a pass over the activations
        full = bool(mask.all())
        x = F.relu(self.norm(self.conv(x), mask))
        if not full:
            x = x * mask.unsqueeze(1)
        if self.pool > 1:
            x = F.max_pool1d(x, self.pool, ceil_mode=True)
            mask = mask[:, :: self.pool] if full else pool_mask(mask, self.pool)
        return self.dropout(x), mask


class ConvBackbone(nn.Module):
    """Convolution blocks; `dilations` widen the receptive field without pooling and
    `residual=True` adds each block's input to its output where the shapes agree
    (a ResNet-style stack that keeps the length, for per-residue outputs)."""

    def __init__(self, in_channels: int, *, channels: Sequence[int] = (128, 128, 128),
                 kernel_sizes: Sequence[int] = (9, 7, 5), pool: int | Sequence[int] = 2,
                 dilations: int | Sequence[int] = 1, residual: bool = False,
                 dropout: float = 0.2):
        super().__init__()
        n = len(channels)
        pools = [pool] * n if isinstance(pool, int) else list(pool)
        dilations = [dilations] * n if isinstance(dilations, int) else list(dilations)
        if not n == len(kernel_sizes) == len(pools) == len(dilations):
            raise TypeError("channels, kernel_sizes, pool and dilations need one entry per layer")
        sizes = [in_channels, *channels]
        self.blocks = nn.ModuleList(
            ConvBlock(sizes[i], sizes[i + 1], kernel_sizes[i], pool=pools[i], dropout=dropout,
                      dilation=dilations[i])
            for i in range(n)
        )
        self.skips = [residual and sizes[i] == sizes[i + 1] and pools[i] == 1 for i in range(n)]
        self.out_channels = sizes[-1]

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x * mask.unsqueeze(1)
        for block, skip in zip(self.blocks, self.skips, strict=True):
            out, mask = block(x, mask)
            x = out + x if skip else out
        return x, mask


@register("cnn")
def cnn(in_channels: int, **hparams) -> nn.Module:
    return ConvBackbone(in_channels, **hparams)
