"""Bidirectional LSTM/GRU and the DanQ-style CNN + BiLSTM hybrid."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from . import cpu_has_bf16, register
from .cnn import ConvBackbone


def _spans(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """First real position and number of real positions per row of a (batch, length) mask."""
    return mask.int().argmax(1), mask.sum(1)


def _autocast_without_bf16_cpu(x: torch.Tensor) -> bool:
    """Whether x is on a CPU without bf16 instructions, under autocast. There autocast
    hands oneDNN's LSTM a bf16 problem it cannot build ("could not create a primitive
    descriptor"), and emulated bf16 would be slower than fp32 anyway."""
    return x.device.type == "cpu" and torch.is_autocast_enabled("cpu") and not cpu_has_bf16()


class RecurrentBackbone(nn.Module):
    """Bidirectional RNN: padding never enters the recurrence in either direction."""

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
        if _autocast_without_bf16_cpu(x):
            with torch.autocast("cpu", enabled=False):
                out, mask = self._recur(x.float(), mask)
            return out.to(x.dtype), mask
        return self._recur(x, mask)

    def _recur(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, _, width = x.shape
        if bool(mask.all()):  # full windows: nothing to pack (packed RNNs are slow on CPU)
            out, _ = self.rnn(x.transpose(1, 2))
            return self.dropout(out.transpose(1, 2)), mask  # (B, 2H, L)
        starts, lengths = _spans(mask)
        pos = torch.arange(width, device=x.device).expand(batch, width)
        # shift every sequence to the left edge so the recurrence sees only real positions
        aligned = (pos + starts[:, None]).clamp(max=width - 1)
        seq = _take(x.transpose(1, 2), aligned)
        if x.device.type == "cpu":
            out = self._left_aligned(seq, lengths, pos)  # (B, L, 2H)
        else:  # cuDNN runs packed sequences natively
            packed = pack_padded_sequence(seq, lengths.cpu(), batch_first=True,
                                          enforce_sorted=False)
            out, _ = self.rnn(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=width)
        back = (pos - starts[:, None]).clamp(min=0)  # and back to each window position
        out = _take(out, back) * mask[..., None]
        return self.dropout(out.transpose(1, 2)), mask  # (B, 2H, L)

    def _left_aligned(self, seq: torch.Tensor, lengths: torch.Tensor,
                      pos: torch.Tensor) -> torch.Tensor:
        """The packed bidirectional result for left-aligned (B, L, C) input (`pos`: the
        (B, L) position grid), without
        packing, which is slower on a CPU (benchmarks/bench_recurrent.py). Padding trails
        each sequence, so the forward direction runs on the padded batch as it is and the
        backward one on each sequence reversed within its length; both are exact at the
        real positions (to float rounding; under bf16 autocast the recurrence runs in bf16,
        as it always did for full windows). The weights are the module's own, so
        checkpoints are unchanged."""
        reverse = (lengths[:, None] - 1 - pos).clamp(min=0)  # (B, L)
        real = (pos < lengths[:, None])[..., None]
        weights, rnn = self.rnn._flat_weights, self.rnn
        per_direction = len(weights) // (2 * rnn.num_layers)
        # padding trails the forward recurrence; zeroed so that nothing there (not even a
        # NaN) reaches the output or the gradients
        out = torch.where(real, seq, 0)
        for layer in range(rnn.num_layers):
            if layer:
                out = nn.functional.dropout(out, rnn.dropout, self.training)
            both = []
            for direction in (0, 1):
                first = (2 * layer + direction) * per_direction
                inputs = out if direction == 0 else _take(out, reverse)
                result = self._one_direction(inputs, weights[first:first + per_direction])
                both.append(result if direction == 0 else _take(result, reverse))
            out = torch.where(real, torch.cat(both, 2), 0)  # (B, L, 2H)
        return out

    def _one_direction(self, inputs: torch.Tensor, weights: list[torch.Tensor]) -> torch.Tensor:
        """One layer, one direction of the module's cell over (B, L, C) input."""
        # torch._VF is what nn.GRU / nn.LSTM call themselves; there is no public
        # functional form that takes one direction's weights
        state = inputs.new_zeros(1, inputs.shape[0], self.rnn.hidden_size)
        if self.rnn.mode == "GRU":
            return torch._VF.gru(inputs, state, weights, self.rnn.bias, 1, 0.0,
                                 self.training, False, True)[0]
        return torch._VF.lstm(inputs, (state, state), weights, self.rnn.bias, 1, 0.0,
                              self.training, False, True)[0]


def _take(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """values[b, index[b, t]] for (B, L, C) values and a (B, L) index."""
    return values.gather(1, index[..., None].expand(-1, -1, values.shape[2]))


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
