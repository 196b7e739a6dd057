"""Alphabets: channel order, ambiguity codes, complements and the token vocabulary.

Tensor convention used everywhere in bioseq: model inputs are float tensors of shape
`(batch, alphabet, length)`. On disk and between processes sequences travel as uint8
*token* matrices `(batch, length)`; token `t < alphabet.size` is a canonical letter, the
next ids are ambiguity codes, and `alphabet.pad_token` marks padding. `encoding.one_hot`
turns tokens into the float layout per batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .errors import BioseqError


@dataclass(frozen=True)
class Alphabet:
    name: str
    letters: str  # canonical letters, in channel order
    ambiguity: Mapping[str, str]  # code -> the canonical letters it stands for
    aliases: Mapping[str, str]  # extra input letters read as a canonical letter (RNA U -> T)
    complement: Mapping[str, str] | None = None  # None for alphabets without strands

    @property
    def size(self) -> int:
        """Number of channels of the one-hot encoding."""
        return len(self.letters)

    @property
    def symbols(self) -> str:
        """Every symbol with a token, in token order (canonical letters, then codes)."""
        return self.letters + "".join(self.ambiguity)

    @property
    def pad_token(self) -> int:
        return len(self.symbols)

    @property
    def n_tokens(self) -> int:
        return self.pad_token + 1

    @property
    def has_strands(self) -> bool:
        return self.complement is not None

    def token_complement(self) -> list[int]:
        """Token id -> token id of its complement (padding maps to itself)."""
        if self.complement is None:
            raise BioseqError(f"alphabet '{self.name}' has no reverse complement")
        symbols = self.symbols
        return [symbols.index(self.complement[s]) for s in symbols] + [self.pad_token]


_DNA_CODES = {
    "N": "ACGT", "R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT", "M": "AC",
    "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG",
}  # fmt: skip
_DNA_COMPLEMENT = {
    "A": "T", "C": "G", "G": "C", "T": "A", "N": "N", "R": "Y", "Y": "R", "S": "S",
    "W": "W", "K": "M", "M": "K", "B": "V", "V": "B", "D": "H", "H": "D",
}  # fmt: skip
_AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
# Selenocysteine (U) and pyrrolysine (O) are read as the residue they derive from.
_PROTEIN_CODES = {"X": _AMINO_ACIDS, "B": "DN", "Z": "EQ", "J": "IL", "U": "C", "O": "K"}

ALPHABETS: Mapping[str, Alphabet] = MappingProxyType(
    {
        "dna": Alphabet("dna", "ACGT", MappingProxyType(_DNA_CODES), MappingProxyType({}),
                        MappingProxyType(_DNA_COMPLEMENT)),
        "rna": Alphabet("rna", "ACGT", MappingProxyType(_DNA_CODES),
                        MappingProxyType({"U": "T"}), MappingProxyType(_DNA_COMPLEMENT)),
        "protein": Alphabet("protein", _AMINO_ACIDS, MappingProxyType(_PROTEIN_CODES),
                            MappingProxyType({})),
    }
)


def get_alphabet(name: str) -> Alphabet:
    try:
        return ALPHABETS[name]
    except KeyError:
        raise BioseqError(
            f"unknown alphabet '{name}' (choose from {', '.join(ALPHABETS)})"
        ) from None
