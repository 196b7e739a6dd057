"""In-silico saturation mutagenesis (ISM): every single-letter substitution of a sequence
scored by a model, as a (length, alphabet, outputs) matrix of score changes."""

from __future__ import annotations

import json
import logging
import os
import re
from typing import NamedTuple

import numpy as np
import pandas as pd

from .edits import score_edits
from .encoding import decode
from .errors import BioseqError
from .genome import Genome, Interval, window_start
from .io import atomic_path
from .predict import Predictor
from .variants import check_variant_model


class SaturationMutagenesis(NamedTuple):
    sequence: str
    letters: str  # the alphabet's letters, in the order of the second axis
    output_names: tuple[str, ...]  # binary models: the positive class only
    reference: np.ndarray  # (outputs,) scores of the sequence as given
    effects: np.ndarray  # (length, letters, outputs) mutant - reference; 0 at the given letter
    region: str | None = None  # contig:start-end (1-based, inclusive) when read from a genome


def saturation_mutagenesis(predictor: Predictor, sequence: str, *, rc_average: bool = False,
                           batch_size: int = 512, region: str | None = None
                           ) -> SaturationMutagenesis:
    """Score the sequence and all length x letters single substitutions in one batched pass."""
    if predictor.task == "per_residue":
        raise BioseqError("saturation mutagenesis needs a per-sequence model, not per_residue")
    chunk = predictor.encoder.encode(["sequence"], [sequence], source="<ism sequence>")
    start, length = int(chunk.starts[0]), int(chunk.lengths[0])
    letters = predictor.alphabet.letters
    k = len(letters)
    mutants = substitution_rows(chunk.tokens, start=start, length=length, letters=k)
    if start == 0 and length == chunk.tokens.shape[1]:  # unpadded: mutants recomputed locally
        reference_scores, mutant_scores = score_edits(
            predictor, chunk.tokens, mutants, np.zeros(len(mutants), np.int64),
            batch_size=batch_size, rc_average=rc_average)
        scores = np.concatenate([mutant_scores, reference_scores])
    else:
        rows = np.concatenate([mutants, chunk.tokens])  # the last row is as given
        scores = predictor.score_tokens(rows, np.repeat(chunk.starts, len(rows)),
                                        np.repeat(chunk.lengths, len(rows)),
                                        batch_size=batch_size, rc_average=rc_average,
                                        full_precision=True)
    names = predictor.label_names
    if predictor.task == "binary":
        scores, names = scores[:, 1:], names[1:]
    reference = scores[-1]
    effects = (scores[:-1] - reference).reshape(length, k, -1)  # (length*k, out) -> (L, k, out)
    kept = decode(chunk.tokens[0, start : start + length], predictor.alphabet)
    return SaturationMutagenesis(kept, letters, tuple(names), reference, effects, region)


def substitution_rows(tokens: np.ndarray, *, start: int, length: int, letters: int
                      ) -> np.ndarray:
    """(1, width) tokens -> (length * letters, width): row i * letters + j has letter j at
    position start + i (j = the given letter too: that row equals the input)."""
    rows = np.repeat(tokens, length * letters, axis=0)
    mutant = np.arange(length * letters)
    rows[mutant, start + mutant // letters] = mutant % letters
    return rows


REGION = re.compile(r"^([^:\s]+):([\d,]+)-([\d,]+)$")


def region_mutagenesis(predictor: Predictor, genome: Genome, region: str, *,
                       window: int | None = None, rc_average: bool = False,
                       model_path: str = "model") -> SaturationMutagenesis:
    """Mutagenesis of the model window centred on a genomic region (`contig:start-end`);
    a region of another width than the model's window is said in the log."""
    width = check_variant_model(predictor, window=window, path=model_path)
    sequence, found = genome_window(genome, region, width)
    if found != region.replace(",", ""):
        logging.getLogger("bioseq").warning("the model reads %d bp: mutating %s, the window "
                                            "centred on %s", width, found, region)
    return saturation_mutagenesis(predictor, sequence, rc_average=rc_average, region=found)


def genome_window(genome: Genome, region: str, width: int | None) -> tuple[str, str]:
    """`contig:start-end` (1-based, inclusive) -> (the model window centred on it, its
    region). `width=None` takes the region as it is."""
    match = REGION.match(region.strip())
    if not match:
        raise BioseqError(f"region must look like chr20:1000-1200, not '{region}'")
    name, first, last = match[1], int(match[2].replace(",", "")), int(match[3].replace(",", ""))
    contig = genome.contig(name)
    if contig is None:
        raise BioseqError(f"contig '{name}' is not in the reference {genome.describe()}")
    if not 1 <= first <= last:
        raise BioseqError(f"region start must be >= 1 and <= its end, not '{region}'")
    width = width or last - first + 1
    start = window_start(Interval(contig, first - 1, last, region, None), width, "center")
    return genome.fetch(contig, start, start + width), f"{name}:{start + 1}-{start + width}"


def ism_table(result: SaturationMutagenesis) -> pd.DataFrame:
    """Long-ish table: one row per output and position, one column per letter."""
    length = len(result.sequence)
    frames = []
    for j, name in enumerate(result.output_names):
        frame = pd.DataFrame({"output": name, "position": np.arange(1, length + 1),
                              "reference": list(result.sequence)})
        for i, letter in enumerate(result.letters):
            frame[letter] = result.effects[:, i, j]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def write_ism(result: SaturationMutagenesis, out_dir: str | os.PathLike) -> None:
    """`out_dir`/ism.tsv, ism.npy (length, letters, outputs) and ism.json (what they are)."""
    with atomic_path(out_dir, directory=True, marker="ism.json") as tmp:
        ism_table(result).to_csv(tmp / "ism.tsv", sep="\t", index=False, float_format="%.6g")
        np.save(tmp / "ism.npy", result.effects.astype(np.float32))
        meta = {"sequence": result.sequence, "region": result.region,
                "letters": result.letters, "outputs": list(result.output_names),
                "reference_scores": [float(x) for x in result.reference],
                "npy_axes": ["position", "letter", "output"]}
        (tmp / "ism.json").write_text(json.dumps(meta, indent=2) + "\n")
