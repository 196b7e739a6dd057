"""Transformer encoder with a convolutional or linear embedding."""

from __future__ import annotations

import math

import torch
from torch import nn

from . import register
from .cnn import pool_mask


def sinusoidal_positions(length: int, dim: int, device: torch.device) -> torch.Tensor:
    """(length, dim) fixed sinusoidal encoding; works for any length."""
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32)
                          * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    return table


class TransformerBackbone(nn.Module):
    def __init__(self, in_channels: int, *, d_model: int = 64, heads: int = 4, layers: int = 2,
                 feedforward: int | None = None, dropout: float = 0.1,
                 attention_dropout: float | None = None, embedding: str = "conv",
                 kernel_size: int = 9, pool: int = 1):
        super().__init__()
        if embedding not in ("conv", "linear"):
            raise TypeError(f"embedding must be 'conv' or 'linear', not '{embedding}'")
        size = kernel_size if embedding == "conv" else 1
        self.embed = nn.Conv1d(in_channels, d_model, size, padding="same")
        self.pool = nn.MaxPool1d(pool, ceil_mode=True) if pool > 1 else None
        self.pool_size = pool
        layer = nn.TransformerEncoderLayer(
            d_model, heads, feedforward or 4 * d_model, dropout, batch_first=True,
            norm_first=True, activation="gelu",
        )
        # dropout on the (batch, heads, L, L) attention weights costs one random number per
        # pair of positions, most of a CPU training step on long proteins; 0 turns it off
        # (and lets attention take the fused kernel) while the other dropout sites stay
        layer.self_attn.dropout = dropout if attention_dropout is None else attention_dropout
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.out_channels = d_model

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.embed(x * mask.unsqueeze(1)) * mask.unsqueeze(1)  # (B, D, L)
        if self.pool is not None:  # -inf keeps padding out of the maxima of edge windows
            h = self.pool(h.masked_fill(~mask.unsqueeze(1), float("-inf")))
            mask = pool_mask(mask, self.pool_size)
            h = h.masked_fill(~mask.unsqueeze(1), 0.0)
        h = h.transpose(1, 2)  # (B, L, D)
        h = h + sinusoidal_positions(h.shape[1], h.shape[2], h.device)
        h = self.norm(self.encoder(h, src_key_padding_mask=~mask))
        return h.transpose(1, 2) * mask.unsqueeze(1), mask  # (B, D, L)


@register("transformer")
def transformer(in_channels: int, **hparams) -> nn.Module:
    return TransformerBackbone(in_channels, **hparams)
