"""Scores of reference windows and of edited copies of them (variant REF/ALT pairs,
saturation mutagenesis), with the edited copies recomputed only where they differ
(`models.local_edits`) when the model allows it, else by full forward passes."""

from __future__ import annotations

import numpy as np
import torch

from . import tasks
from .encoding import one_hot
from .models.local_edits import edit_spans, edited_logits, supports_local_edits
from .predict import Predictor

LOCAL_FRACTION = 8  # edits wider than width / 8 (long indel windows) take the full pass


def score_edits(predictor: Predictor, ref_tokens: np.ndarray, alt_tokens: np.ndarray,
                ref_rows: np.ndarray, *, batch_size: int, rc_average: bool = False,
                local: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """References (R, width) and edited rows (N, width) of unpadded tokens, edited row n
    made from reference `ref_rows[n]` -> scores (R, outputs), (N, outputs) in the model's
    units, full precision. `local=False` runs every row whole (the slow reference path)."""
    width = ref_tokens.shape[1]
    if not (local and supports_local_edits(predictor.model)) or len(alt_tokens) == 0:
        return _full(predictor, ref_tokens, alt_tokens, batch_size, rc_average)
    ref_t = torch.tensor(ref_tokens, device=predictor.device)  # (may be read-only views)
    alt_t = torch.tensor(alt_tokens, device=predictor.device)
    rows_t = torch.from_numpy(ref_rows.astype(np.int64)).to(predictor.device)
    low, high = edit_spans(ref_t[rows_t], alt_t)
    spans = (high - low).cpu().numpy()
    narrow = spans <= max(width // LOCAL_FRACTION, 1)
    outputs = len(predictor.label_names)  # scores have one column per label or target
    ref_scores = np.zeros((len(ref_tokens), outputs), np.float32)
    alt_scores = np.zeros((len(alt_tokens), outputs), np.float32)
    seen = np.zeros(len(ref_tokens), bool)
    for rows in _local_batches(np.flatnonzero(narrow), spans, ref_rows, batch_size):
        batch = torch.from_numpy(rows).to(predictor.device)
        refs, inverse = torch.unique(rows_t[batch], return_inverse=True)
        refs_np = refs.cpu().numpy()
        ref_scores[refs_np], alt_scores[rows] = _edited_scores(
            predictor, ref_t[refs], alt_t[batch], inverse, low[batch], high[batch], rc_average)
        seen[refs_np] = True
    wide, unseen = np.flatnonzero(~narrow), np.flatnonzero(~seen)
    if len(wide) or len(unseen):
        ref_scores[unseen], alt_scores[wide] = _full(predictor, ref_tokens[unseen],
                                                     alt_tokens[wide], batch_size, rc_average)
    unchanged = spans == 0  # a "mutant" to the reference's own letter
    alt_scores[unchanged] = ref_scores[ref_rows[unchanged]]
    return ref_scores, alt_scores


def _local_batches(rows: np.ndarray, spans: np.ndarray, ref_rows: np.ndarray,
                   batch_size: int):
    """Batches of `rows` of one edit width each (an MNV does not widen an SNV's strips, and
    a row's strip never depends on its batch), sorted by reference so a batch shares few
    (mutagenesis: all rows share one)."""
    rows = rows[np.lexsort((ref_rows[rows], spans[rows]))]
    for group in np.split(rows, np.flatnonzero(np.diff(spans[rows])) + 1):
        for begin in range(0, len(group), batch_size):
            yield group[begin : begin + batch_size]


def _edited_scores(predictor: Predictor, refs: torch.Tensor, alts: torch.Tensor,
                   ref_rows: torch.Tensor, low: torch.Tensor, high: torch.Tensor,
                   rc_average: bool) -> tuple[np.ndarray, np.ndarray]:
    """One batch through the local path, both strands when `rc_average`."""
    table, task = predictor.expander.table, predictor.task
    span = max(int((high - low).max()), 1)
    ref_logits, alt_logits = edited_logits(predictor.model, one_hot(refs, table),
                                           one_hot(alts, table), ref_rows, low, span)
    ref_scores, alt_scores = tasks.scores(task, ref_logits), tasks.scores(task, alt_logits)
    if rc_average:
        complement = predictor.expander.complement
        width = refs.shape[1]
        # a window without padding reverse-complements whole; the edit lands mirrored
        ref_rc, alt_rc = edited_logits(
            predictor.model, one_hot(complement[refs.flip(1).long()], table),
            one_hot(complement[alts.flip(1).long()], table), ref_rows, width - high, span)
        ref_scores = (ref_scores + tasks.scores(task, ref_rc)) / 2
        alt_scores = (alt_scores + tasks.scores(task, alt_rc)) / 2
    unscale = predictor.target_scaling
    return (tasks.unscale(task, ref_scores.cpu().numpy(), unscale),
            tasks.unscale(task, alt_scores.cpu().numpy(), unscale))


def _full(predictor: Predictor, ref_tokens: np.ndarray, alt_tokens: np.ndarray,
          batch_size: int, rc_average: bool) -> tuple[np.ndarray, np.ndarray]:
    """Every row through the plain forward pass (one encode-free call for both sets)."""
    rows = np.concatenate([ref_tokens, alt_tokens])
    width = rows.shape[1]
    scores = predictor.score_tokens(rows, np.zeros(len(rows), np.int64),
                                    np.full(len(rows), width, np.int64), batch_size=batch_size,
                                    rc_average=rc_average, full_precision=True)
    return scores[: len(ref_tokens)], scores[len(ref_tokens) :]
