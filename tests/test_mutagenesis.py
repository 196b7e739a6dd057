"""Saturation mutagenesis: every substitution equals a direct prediction of the mutant."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_variants import SLICE, dna_checkpoint, protein_checkpoint

import bioseq
from bioseq.errors import BioseqError
from bioseq.genome import Genome
from bioseq.mutagenesis import genome_window, ism_table, saturation_mutagenesis, write_ism


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    return bioseq.load_model(dna_checkpoint(tmp_path_factory.mktemp("m") / "cnn.pt"),
                             device="cpu")


@pytest.fixture(scope="module")
def donor():
    """The 60-bp window centred on a donor site the demo splice model calls (20:1318045)."""
    with Genome(SLICE) as genome:
        return genome_window(genome, "20:1318016-1318075", 60)


def test_region_is_the_model_window_centred_on_it(donor):
    sequence, region = donor
    assert region == "20:1318016-1318075" and len(sequence) == 60
    assert sequence[24:35] == "CTCAAGGTAAG"  # 20:1318040-1318050, by hand


def test_every_substitution_matches_a_direct_prediction(predictor, donor):
    sequence = donor[0]
    result = saturation_mutagenesis(predictor, sequence, region=donor[1])
    assert result.effects.shape == (60, 4, 3) and result.letters == "ACGT"
    own = [result.letters.index(c) for c in sequence]
    assert np.abs(result.effects[np.arange(60), own]).max() == 0.0
    mutants, where = [], []
    for position in (0, 29, 30, 59):
        for j, letter in enumerate("ACGT"):
            mutants.append(sequence[:position] + letter + sequence[position + 1 :])
            where.append((position, j))
    frame = predictor.predict([sequence, *mutants])
    probs = frame[[f"prob_{c}" for c in predictor.label_names]].to_numpy()
    np.testing.assert_allclose(result.reference, probs[0], atol=1e-6)
    for row, (position, j) in enumerate(where, start=1):
        np.testing.assert_allclose(result.effects[position, j], probs[row] - probs[0],
                                   atol=2e-6)


def test_binary_models_report_the_positive_class(tmp_path):
    path = dna_checkpoint(tmp_path / "b.pt", width=20, task="binary", labels=("no", "yes"))
    result = saturation_mutagenesis(bioseq.load_model(path, device="cpu"), "ACGT" * 5)
    assert result.output_names == ("yes",) and result.effects.shape == (20, 4, 1)


def test_written_files_agree(tmp_path, predictor, donor):
    result = saturation_mutagenesis(predictor, donor[0], region=donor[1])
    write_ism(result, tmp_path / "ism")
    matrix = np.load(tmp_path / "ism" / "ism.npy")
    np.testing.assert_allclose(matrix, result.effects, atol=1e-7)
    meta = json.loads((tmp_path / "ism" / "ism.json").read_text())
    assert meta["region"] == "20:1318016-1318075" and meta["outputs"] == ["EI", "IE", "N"]
    table = ism_table(result)
    assert len(table) == 3 * 60 and list(table.columns) == ["output", "position", "reference",
                                                            "A", "C", "G", "T"]


def test_bad_regions(predictor):
    with Genome(SLICE) as genome:
        with pytest.raises(BioseqError, match="region must look like"):
            genome_window(genome, "20:100", 60)
        with pytest.raises(BioseqError, match="contig 'chr1' is not in the reference"):
            genome_window(genome, "chr1:1-100", 60)


def test_per_residue_models_are_refused(tmp_path):
    model = bioseq.load_model(protein_checkpoint(tmp_path / "p.pt"), device="cpu")
    with pytest.raises(BioseqError, match="needs a per-sequence model"):
        saturation_mutagenesis(model, "MKVL")
