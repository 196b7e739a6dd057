"""Bidirectional LSTM/GRU and the DanQ-style CNN + BiLSTM hybrid."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from . import register
from .cnn import ConvBackbone


def _spans(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """First real position and number of real positions per row of a (batch, length) mask."""
    return mask.int().argmax(1), mask.sum(1)


class RecurrentBackbone(nn.Module):
    """Packed bidirectional RNN: padding never enters the recurrence in either direction."""

    def __init__(self, in_channels: int, *, cell: str = "gru", hidden: int = 128,
                 layers: int = 2, dropout: float = 0.2):
        super().__init__()
        if cell not in ("gru", "lstm"):
            raise TypeError(f"cell must be 'gru' or 'lstm', not '{cell}'")
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn(in_channels, hidden, num_layers=layers, batch_first=True,
                       bidirectional=True, dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.out_channels = 2 * hidden

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, _, width = x.shape
        if bool(mask.all()):  # full windows: nothing to pack (packed RNNs are slow on CPU)
            out, _ = self.rnn(x.transpose(1, 2))
            return self.dropout(out.transpose(1, 2)), mask  # (B, 2H, L)
        starts, lengths = _spans(mask)
        pos = torch.arange(width, device=x.device).expand(batch, width)
        # shift every sequence to the left edge so packing sees only real positions
        aligned = (pos + starts[:, None]).clamp(max=width - 1)
        seq = x.transpose(1, 2).gather(1, aligned[..., None].expand(-1, -1, x.shape[1]))
        packed = pack_padded_sequence(seq, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=width)  # (B, L, 2H)
        back = (pos - starts[:, None]).clamp(min=0)  # and back to each window position
        out = out.gather(1, back[..., None].expand(-1, -1, out.shape[2])) * mask[..., None]
        return self.dropout(out.transpose(1, 2)), mask  # (B, 2H, L)


class ConvRecurrentBackbone(nn.Module):
    """DanQ: a wide convolution finds motifs, a BiLSTM models their order. A list of
    `channels` gives a stack instead (the `cnn` blocks: `kernel_size`, `dilations` and
    `pool` per layer or one for all, `residual`), e.g. a dilated residual CNN whose
    per-residue features a BiGRU then reads end to end."""

    def __init__(self, in_channels: int, *, channels: int | Sequence[int] = 128,
                 kernel_size: int | Sequence[int] = 19, pool: int | Sequence[int] = 4,
                 dilations: int | Sequence[int] = 1, residual: bool = False,
                 hidden: int = 64, layers: int = 1, cell: str = "lstm", dropout: float = 0.2):
        super().__init__()
        channels = (channels,) if isinstance(channels, int) else tuple(channels)
        kernel_sizes = ((kernel_size,) * len(channels) if isinstance(kernel_size, int)
                        else tuple(kernel_size))
        if not channels or len(kernel_sizes) != len(channels):
            raise TypeError("cnn_bilstm needs at least one layer in channels and one "
                            "kernel_size for all or one per layer")
        self.conv = ConvBackbone(in_channels, channels=channels, kernel_sizes=kernel_sizes,
                                 pool=pool, dilations=dilations, residual=residual,
                                 dropout=dropout)
        self.rnn = RecurrentBackbone(channels[-1], cell=cell, hidden=hidden, layers=layers,
                                     dropout=dropout)
        self.out_channels = self.rnn.out_channels

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.rnn(*self.conv(x, mask))


@register("bilstm")
def bilstm(in_channels: int, **hparams) -> nn.Module:
    return RecurrentBackbone(in_channels, cell="lstm", **hparams)


@register("bigru")
def bigru(in_channels: int, **hparams) -> nn.Module:
    return RecurrentBackbone(in_channels, cell="gru", **hparams)


@register("cnn_bilstm")
def cnn_bilstm(in_channels: int, **hparams) -> nn.Module:
    return ConvRecurrentBackbone(in_channels, **hparams)
