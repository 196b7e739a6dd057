"""Edited rows recomputed locally give the full forward pass's scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bioseq.checkpoint import load_model, save_checkpoint
from bioseq.edits import score_edits
from bioseq.encoding import EncodingPolicy, LengthPolicy
from bioseq.models import build_model
from bioseq.models.local_edits import edit_spans, edited_logits, supports_local_edits
from bioseq.predict import Predictor

WIDTH = 37
CNN_SHAPES = {  # pooling that does not divide the width, dilation, even kernels, residuals
    "flatten": dict(channels=[16, 16], kernel_sizes=[7, 7], pool=[2, 2], head_pool="flatten"),
    "meanmax": dict(channels=[12, 12, 12], kernel_sizes=[9, 7, 5], pool=[3, 1, 2],
                    dilations=[1, 2, 1], residual=True),
    "dilated": dict(channels=[8, 8, 8, 8], kernel_sizes=[4, 5, 3, 6], pool=1,
                    dilations=[1, 3, 9, 2], residual=True),
}


def _model(shape: str, outputs: int = 3) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model("cnn", in_channels=4, n_outputs=outputs, input_length=WIDTH,
                        **CNN_SHAPES[shape])
    for module in model.modules():  # running statistics away from 0/1, so BN matters
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _edits(n_refs: int, n_edits: int, span: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    refs = torch.randint(0, 4, (n_refs, WIDTH), generator=generator)
    rows = torch.randint(0, n_refs, (n_edits,), generator=generator)
    starts = torch.randint(0, WIDTH, (n_edits,), generator=generator)
    starts[:2] = torch.tensor([0, WIDTH - 1])  # both window ends
    alts = refs[rows].clone()
    for i, start in enumerate(starts.tolist()):
        end = min(start + span, WIDTH)
        alts[i, start:end] = (alts[i, start:end] + 1 + torch.randint(
            0, 3, (end - start,), generator=generator)) % 4  # always another base
    return refs, alts, rows, starts


def _one_hot(tokens: torch.Tensor) -> torch.Tensor:
    return F.one_hot(tokens, 4).permute(0, 2, 1).float()  # (B, L, 4) -> (B, 4, L)


def _full(model, tokens):
    with torch.no_grad():
        return model(_one_hot(tokens), torch.ones(tokens.shape, dtype=torch.bool))


@pytest.mark.parametrize("shape", sorted(CNN_SHAPES))
@pytest.mark.parametrize("span", [1, 3])
def test_local_logits_equal_the_full_forward_pass(shape, span):
    model = _model(shape)
    refs, alts, rows, starts = _edits(5, 40, span)
    low, high = edit_spans(refs[rows], alts)
    assert (low == starts).all() and ((high - low) <= span).all()
    ref_logits, alt_logits = edited_logits(model, _one_hot(refs), _one_hot(alts), rows,
                                           starts, span)
    expected = _full(model, alts)
    assert (expected - _full(model, refs)[rows]).abs().max() > 1e-3  # the edits matter
    torch.testing.assert_close(ref_logits, _full(model, refs), rtol=0, atol=1e-5)
    torch.testing.assert_close(alt_logits, expected, rtol=0, atol=1e-5)
    # one edited row per reference, in order (variants): the slicing path
    ref_logits, alt_logits = edited_logits(model, _one_hot(refs[rows]), _one_hot(alts),
                                           torch.arange(len(rows)), starts, span)
    torch.testing.assert_close(alt_logits, expected, rtol=0, atol=1e-5)
    centred = torch.full_like(starts, WIDTH // 2)  # one start for all: slices throughout
    snv = refs[rows].clone()
    snv[:, WIDTH // 2] = (snv[:, WIDTH // 2] + 1) % 4
    alt_logits = edited_logits(model, _one_hot(refs[rows]), _one_hot(snv),
                               torch.arange(len(rows)), centred, 1)[1]
    torch.testing.assert_close(alt_logits, _full(model, snv), rtol=0, atol=1e-5)
    # a strip narrower than the edits misses some of them: the comparison can fail
    if span > 1:
        narrow = edited_logits(model, _one_hot(refs), _one_hot(alts), rows, starts, 1)[1]
        assert (narrow - expected).abs().max() > 1e-4


def _predictor(tmp_path, architecture: str = "cnn", **hparams) -> Predictor:
    torch.manual_seed(1)
    model = build_model(architecture, in_channels=4, n_outputs=3, input_length=WIDTH,
                        **hparams)
    path = tmp_path / f"{architecture}.pt"
    save_checkpoint(path, model, alphabet="dna", encoding=EncodingPolicy(),
                    length=LengthPolicy(length=WIDTH), task="multiclass",
                    label_names=("a", "b", "c"))
    return load_model(path, device="cpu")


@pytest.mark.parametrize("rc_average", [False, True])
def test_score_edits_equal_scores_of_every_row(tmp_path, rc_average):
    """SNVs, MNVs, rows changed over most of the window (indels shift the flanks), rows
    equal to their reference and a reference no row uses, in batches smaller than the set."""
    predictor = _predictor(tmp_path, **CNN_SHAPES["meanmax"])
    assert supports_local_edits(predictor.model)
    refs, snvs, rows, _ = _edits(5, 30, 1, seed=2)
    mnvs = refs[rows[:10]].clone()
    mnvs[:, 10:13] = (mnvs[:, 10:13] + 1) % 4
    shifted = refs[:3].roll(5, dims=1)  # differs nearly everywhere: the full pass
    same = refs[:2].clone()
    alts = torch.cat([snvs, mnvs, shifted, same]).to(torch.uint8).numpy()
    alt_rows = torch.cat([rows, rows[:10], torch.arange(3), torch.arange(2)]).numpy()
    refs = torch.cat([refs, refs[:1].flip(1)])  # a sixth reference that no row uses
    ref_tokens = refs.to(torch.uint8).numpy()
    ref_scores, alt_scores = score_edits(predictor, ref_tokens, alts, alt_rows, batch_size=8,
                                         rc_average=rc_average)
    every = np.concatenate([ref_tokens, alts])
    expected = predictor.score_tokens(every, np.zeros(len(every), np.int64),
                                      np.full(len(every), WIDTH, np.int64), batch_size=64,
                                      rc_average=rc_average, full_precision=True)
    np.testing.assert_allclose(ref_scores, expected[: len(refs)], rtol=0, atol=1e-6)
    np.testing.assert_allclose(alt_scores, expected[len(refs) :], rtol=0, atol=1e-6)
    unchanged = np.arange(len(alts))[-2:]
    assert (alt_scores[unchanged] == ref_scores[alt_rows[unchanged]]).all()  # exactly


def test_other_architectures_take_the_full_pass(tmp_path):
    predictor = _predictor(tmp_path, "bigru", hidden=8)
    assert not supports_local_edits(predictor.model)
    refs, alts, rows, _ = _edits(3, 6, 1)
    ref_scores, alt_scores = score_edits(predictor, refs.to(torch.uint8).numpy(),
                                         alts.to(torch.uint8).numpy(), rows.numpy(),
                                         batch_size=4)
    every = torch.cat([refs, alts]).to(torch.uint8).numpy()
    expected = predictor.score_tokens(every, np.zeros(len(every), np.int64),
                                      np.full(len(every), WIDTH, np.int64), batch_size=64,
                                      full_precision=True)
    np.testing.assert_allclose(np.concatenate([ref_scores, alt_scores]), expected, atol=1e-6)
