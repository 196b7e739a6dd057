"""Shared fixtures: the real splice data (resources/splice/splice.fasta), an encoded store
of it built once per session, FASTA writers and tiny model settings."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch

from bioseq.config import dataset_config
from bioseq.store import EncodedStore, encode_dataset

REPO = Path(__file__).resolve().parents[1]
SPLICE_FASTA = REPO / "resources" / "splice" / "splice.fasta"
NETSURFP_SLICE = {kind: REPO / "tests" / "data" / f"netsurfp2_slice_{kind}.fasta"
                  for kind in ("sequences", "labels", "mask")}


def residue_dataset(**overrides) -> dict:
    """Config entry of the 32-chain NetSurfP-2.0 fixture as a per-residue data set."""
    return {"alphabet": "protein", "task": "per_residue",
            "fasta": str(NETSURFP_SLICE["sequences"]),
            "residue_labels": str(NETSURFP_SLICE["labels"]),
            "residue_mask": str(NETSURFP_SLICE["mask"]),
            "split": {"field": "SET", "validation_field": "VALIDATION"}, **overrides}

# The smallest settings of every registered architecture: fast enough to test them all.
TINY_HPARAMS = {
    "cnn": {"channels": [8, 8], "kernel_sizes": [5, 3], "pool": [2, 1], "dropout": 0.1},
    "bilstm": {"hidden": 8, "layers": 1, "dropout": 0.1},
    "bigru": {"hidden": 8, "layers": 1, "dropout": 0.1},
    "cnn_bilstm": {"channels": 8, "kernel_size": 5, "pool": 2, "hidden": 8, "dropout": 0.1},
    "transformer": {"d_model": 16, "heads": 2, "layers": 1, "kernel_size": 5, "dropout": 0.1},
}
TINY_HEAD = {"head_hidden": 8, "head_dropout": 0.1}


@pytest.fixture(autouse=True, scope="session")
def _few_threads():
    """The test machine has 2 cores shared with other work."""
    torch.set_num_threads(1)


def parse_splice(path: Path = SPLICE_FASTA) -> list[tuple[str, str, str]]:
    """(id, sequence, label) of every record, read without bioseq (one line per sequence)."""
    records = []
    lines = path.read_text().splitlines()
    for header, seq in zip(lines[0::2], lines[1::2], strict=True):
        name, field = header[1:].split()
        records.append((name, seq, field.removeprefix("label=")))
    return records


def fasta_text(records) -> str:
    """FASTA text of (id, sequence) or (id, sequence, description) tuples."""
    lines = []
    for record in records:
        name, seq, *description = record
        header = " ".join([name, *description])
        lines += [f">{header}", seq]
    return "\n".join(lines) + "\n"


@pytest.fixture
def write_fasta(tmp_path):
    """write_fasta(name, records) -> path of a FASTA file in tmp_path."""

    def write(name: str, records) -> Path:
        path = tmp_path / name
        path.write_text(fasta_text(records))
        return path

    return write


@pytest.fixture(scope="session")
def splice_fasta() -> Path:
    return SPLICE_FASTA


@pytest.fixture(scope="session")
def splice_records():
    return parse_splice()


@pytest.fixture
def splice_head(tmp_path):
    """splice_head(n, name) -> a FASTA file holding the first n splice records verbatim
    (gzip-compressed when the name ends in .gz)."""

    def write(n: int, name: str = "head.fa") -> Path:
        text = "\n".join(SPLICE_FASTA.read_text().splitlines()[: 2 * n]) + "\n"
        path = tmp_path / name
        if name.endswith(".gz"):
            with gzip.open(path, "wt") as handle:
                handle.write(text)
        else:
            path.write_text(text)
        return path

    return write


@pytest.fixture(scope="session")
def splice_build(tmp_path_factory) -> tuple[Path, dict]:
    """The whole splice data set encoded at length 60 (random stratified split, seed 0):
    the store directory and the metadata encode_dataset returned."""
    out = tmp_path_factory.mktemp("splice") / "store"
    config = dataset_config("splice", {"fasta": str(SPLICE_FASTA), "length": {"length": 60}})
    return out, encode_dataset(config, out)


@pytest.fixture(scope="session")
def splice_store(splice_build) -> Path:
    return splice_build[0]


@pytest.fixture(scope="session")
def splice(splice_store) -> EncodedStore:
    return EncodedStore(splice_store)


@pytest.fixture
def tiny_hparams():
    """tiny_hparams(architecture) -> the smallest hyper-parameters plus a small head."""

    def get(architecture: str) -> dict:
        return {**TINY_HPARAMS[architecture], **TINY_HEAD}

    return get


@pytest.fixture(scope="session")
def residue_store(tmp_path_factory) -> Path:
    """The NetSurfP-2.0 fixture encoded as a per-residue store (its own SET/VALIDATION split)."""
    out = tmp_path_factory.mktemp("residues") / "store"
    encode_dataset(dataset_config("netsurfp", residue_dataset(length={"max_length": 120})), out)
    return out
