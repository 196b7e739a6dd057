"""Scores of sequences that differ from a reference in a few adjacent positions.

A substitution changes a convolution's output only within the kernel's reach of it, so the
edited sequence needs the reference's activations plus a narrow recomputed strip at every
layer (the idea of fastISM, Nair et al. 2022, Bioinformatics 38:2397). For a 200-bp SNV
window of a two-layer CNN the edited sequence costs about a sixth of a full pass. The
results are those of the full forward pass up to float rounding (tests compare the two).

Supported: `SequenceModel`s whose backbone is the `cnn` stack, in eval mode, on windows
without padding (variant windows and mutagenesis rows). Anything else takes the full pass.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from .cnn import ConvBackbone
from .heads import FlattenHead


class Strip(NamedTuple):
    """Per edited row, the recomputed positions [start, start + width) of one layer."""

    values: torch.Tensor  # (edits, channels, width)
    start: torch.Tensor  # (edits,) long


def supports_local_edits(model: torch.nn.Module) -> bool:
    return (isinstance(getattr(model, "backbone", None), ConvBackbone) and not model.training
            and getattr(model, "output", "sequence") == "sequence")


def edit_spans(ref_tokens: torch.Tensor, alt_tokens: torch.Tensor) -> tuple[torch.Tensor,
                                                                            torch.Tensor]:
    """(n, width) token rows -> (first, one past the last) differing position per row;
    rows that do not differ get the empty span (0, 0)."""
    differs = ref_tokens != alt_tokens  # (n, width)
    width = differs.shape[1]
    first = differs.int().argmax(1)
    last = width - differs.flip(1).int().argmax(1)
    changed = differs.any(1)
    return torch.where(changed, first, 0), torch.where(changed, last, 0)


def _take(tensor: torch.Tensor, rows: torch.Tensor | None, start: torch.Tensor, width: int, *,
          fill: float = 0.0) -> torch.Tensor:
    """tensor (R, C, L)[rows, :, start:start+width] per row -> (N, C, width), a copy;
    `rows=None` takes every row in order. Positions outside [0, L) read as `fill` (0: a
    convolution's padding; -inf: what a ceil_mode max-pool window ignores)."""
    length = tensor.shape[2]
    low, high = int(start.min()), int(start.max()) + width
    if low < 0 or high > length:  # pad only the few positions beyond either end
        before, after = max(-low, 0), max(high - length, 0)
        tensor, start = F.pad(tensor, (before, after), value=fill), start + before
        low += before
    if int(start.max()) == low:  # one start for all (centred SNVs): a slice
        piece = tensor[:, :, low : low + width]
        return piece.clone() if rows is None else piece[rows]
    strips = tensor.unfold(2, width, 1)  # (R, C, L - width + 1, width), a view
    rows = torch.arange(len(start), device=start.device) if rows is None else rows
    return strips[rows, :, start]  # (N, C, width)


def _put(target: torch.Tensor, values: torch.Tensor, offset: torch.Tensor) -> None:
    """target (N, C, W)[n, :, offset:offset+w] = values (N, C, w), per row, in place."""
    width = values.shape[2]
    if int(offset.min()) == int(offset.max()):  # one offset for all: a slice
        target[:, :, int(offset[0]) : int(offset[0]) + width] = values
        return
    index = offset[:, None] + torch.arange(width, device=offset.device)  # (N, w)
    target[torch.arange(len(target), device=target.device)[:, None], :, index] = \
        values.permute(0, 2, 1)


def _window(start: torch.Tensor, width: int, length: int) -> tuple[torch.Tensor, int]:
    """A strip of `width` starting at `start`, moved inside [0, length) and capped there;
    it still covers every position of the wanted range that lies inside."""
    width = min(width, length)
    return start.clamp(min=0, max=length - width), width


def _block_strip(block, folded: tuple[torch.Tensor, torch.Tensor], inputs: torch.Tensor,
                 convolved: torch.Tensor, rows: torch.Tensor | None, strip: Strip,
                 skip: bool) -> Strip:
    """One conv block on the edited rows: `strip` is where their input differs from the
    reference's `inputs` (R, C, L); `convolved` (R, C', L) the reference's convolution
    output before the ReLU."""
    conv = block.conv
    length = inputs.shape[2]
    reach = conv.dilation[0] * (conv.kernel_size[0] - 1)
    left, right = reach // 2, reach - reach // 2  # how padding="same" splits it
    start, width = _window(strip.start - right, strip.values.shape[2] + reach, length)
    window = _take(inputs, rows, start - left, width + reach)  # (N, C, width + reach)
    _put(window, strip.values, strip.start - start + left)
    weight, bias = folded
    out = F.relu(F.conv1d(window, weight, bias, dilation=conv.dilation))  # (N, C', width)
    if skip:
        out = out + window[:, :, left : left + width]
    if block.pool == 1:
        return Strip(out, start)
    pool = block.pool
    pooled_length = -(-length // pool)
    pooled_start, pooled_width = _window(start // pool, -(-width // pool) + 1, pooled_length)
    # (N, C', span); ceil_mode: the last window may run past the end
    window = _take(convolved, rows, pooled_start * pool, pooled_width * pool, fill=float("-inf"))
    _put(window, out, start - pooled_start * pool)
    # max(ReLU(a), b) = ReLU(max(a, b)) for the ReLU outputs b: as in _reference_trace
    return Strip(F.relu_(F.max_pool1d(window, pool)), pooled_start)


def _folded(block) -> tuple[torch.Tensor, torch.Tensor]:
    """The block's convolution with its (eval-mode) BatchNorm folded in: weight, bias."""
    norm, conv = block.norm, block.conv
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)  # (C',)
    bias = norm.bias - norm.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    return conv.weight * scale[:, None, None], bias


def _reference_trace(backbone: ConvBackbone, x: torch.Tensor, folded: list):
    """The backbone on the references, keeping each block's input and convolution output
    (before the ReLU)."""
    trace = []
    for block, skip, (weight, bias) in zip(backbone.blocks, backbone.skips, folded,
                                           strict=True):
        convolved = F.conv1d(x, weight, bias, padding="same", dilation=block.conv.dilation)
        # the ReLU commutes with max-pooling, so it runs on the pooled maxima only
        out = F.relu_(F.max_pool1d(convolved, block.pool, ceil_mode=True)) if block.pool > 1 \
            else F.relu(convolved)
        trace.append((x, convolved))
        x = out + x if skip else out
    return x, trace


@torch.no_grad()
def edited_logits(model: torch.nn.Module, ref_x: torch.Tensor, alt_x: torch.Tensor,
                  ref_rows: torch.Tensor, start: torch.Tensor, width: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of references (R, alphabet, L) and of edited rows (N, alphabet, L); edited row
    n is reference `ref_rows[n]` changed within [start[n], start[n] + width) only.
    Windows have no padding. -> (R, outputs), (N, outputs)."""
    backbone = model.backbone
    folded = [_folded(block) for block in backbone.blocks]
    features, trace = _reference_trace(backbone, ref_x, folded)
    feature_mask = torch.ones(features.shape[0], features.shape[2], dtype=torch.bool,
                              device=features.device)
    start, width = _window(start, width, ref_x.shape[2])
    strip = Strip(_take(alt_x, None, start, width), start)
    if len(ref_rows) == len(ref_x) and bool((ref_rows == torch.arange(
            len(ref_x), device=ref_rows.device)).all()):
        ref_rows = None  # edited row n of reference n (variants): slices, not gathers
    for block, skip, fold, (inputs, convolved) in zip(
            backbone.blocks, backbone.skips, folded, trace, strict=True):
        strip = _block_strip(block, fold, inputs, convolved, ref_rows, strip, skip)
    if isinstance(model.head, FlattenHead) and int(strip.start.min()) == int(strip.start.max()):
        return _flatten_head_logits(model.head, features, ref_rows, strip)
    edited = features.clone() if ref_rows is None else features[ref_rows]  # (N, C, L')
    _put(edited, strip.values, strip.start)
    edited_mask = feature_mask if ref_rows is None else feature_mask[ref_rows]
    return model.head(features, feature_mask), model.head(edited, edited_mask)


def _flatten_head_logits(head: FlattenHead, features: torch.Tensor,
                         ref_rows: torch.Tensor | None, strip: Strip
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """A flatten head (eval mode, no padding) on the references' features (R, C, L') and on
    the edited rows', which differ from their reference's only in the strip's columns, all
    at one start: the edited rows' first layer is the reference's plus the strip's change
    times the weights of those columns. -> (R, outputs), (N, outputs)."""
    first, tail = head.mlp[2], head.mlp[3:]  # Flatten, Dropout | Linear | ReLU, Dropout, Linear
    if not isinstance(first, torch.nn.Linear):
        raise TypeError(f"FlattenHead's third layer is {type(first).__name__}, not Linear")
    channels, length = features.shape[1:]
    begin, width = int(strip.start[0]), strip.values.shape[2]
    hidden = F.linear(features.flatten(1), first.weight, first.bias)  # (R, hidden)
    before = features[:, :, begin : begin + width]
    change = strip.values - (before if ref_rows is None else before[ref_rows])  # (N, C, w)
    weight = first.weight.view(-1, channels, length)[:, :, begin : begin + width]
    edited = (hidden if ref_rows is None else hidden[ref_rows]) + \
        change.flatten(1) @ weight.reshape(len(weight), -1).T  # (N, hidden)
    return tail(hidden), tail(edited)
