"""Output heads on top of backbone features."""

from __future__ import annotations

import torch
from torch import nn


def masked_mean_max(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(batch, channels, length) + (batch, length) mask -> (batch, 2 * channels)."""
    weights = mask.unsqueeze(1).to(features.dtype)  # (B, 1, L)
    mean = (features * weights).sum(-1) / weights.sum(-1).clamp(min=1.0)
    maximum = features.masked_fill(~mask.unsqueeze(1), float("-inf")).amax(-1)
    return torch.cat([mean, maximum], dim=1)


class SequenceHead(nn.Module):
    """Masked mean + max pooling over real positions, then a small MLP."""

    def __init__(self, in_channels: int, n_outputs: int, *, hidden: int = 128,
                 dropout: float = 0.3):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(2 * in_channels, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, n_outputs),
        )

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.mlp(masked_mean_max(features, mask))


class FlattenHead(nn.Module):
    """Position-aware head for fixed-width inputs: all features of all positions -> MLP."""

    def __init__(self, in_channels: int, n_outputs: int, *, positions: int, hidden: int = 128,
                 dropout: float = 0.3):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(in_channels * positions, hidden),
            nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_outputs),
        )

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.mlp(features * mask.unsqueeze(1))  # (B, C, L) -> (B, outputs)


class PositionHead(nn.Module):
    """The same small MLP at every position (1x1 convolutions): per-residue outputs."""

    def __init__(self, in_channels: int, n_outputs: int, *, hidden: int = 128,
                 dropout: float = 0.3):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Conv1d(in_channels, hidden, 1), nn.ReLU(), nn.Dropout(dropout),
            nn.Conv1d(hidden, n_outputs, 1),
        )

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, C, L) features -> (B, outputs, L); padded positions are zero."""
        return self.mlp(features) * mask.unsqueeze(1)
