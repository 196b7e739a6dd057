import pytest

from bioseq.alphabets import ALPHABETS, get_alphabet
from bioseq.errors import BioseqError


def test_three_alphabets_are_registered():
    assert sorted(ALPHABETS) == ["dna", "protein", "rna"]


def test_dna_channel_order_and_token_layout():
    dna = get_alphabet("dna")
    assert dna.letters == "ACGT"
    assert dna.size == 4
    assert dna.symbols == "ACGTNRYSWKMBDHV"
    assert dna.pad_token == 15
    assert dna.n_tokens == 16


def test_rna_reads_u_as_t_and_shares_dna_channels():
    rna = get_alphabet("rna")
    assert rna.letters == "ACGT"
    assert dict(rna.aliases) == {"U": "T"}
    assert rna.has_strands


def test_protein_layout_has_20_channels_and_no_strands():
    protein = get_alphabet("protein")
    assert protein.letters == "ACDEFGHIKLMNPQRSTVWY"
    assert protein.size == 20
    assert protein.symbols == "ACDEFGHIKLMNPQRSTVWYXBZJUO"
    assert protein.pad_token == 26
    assert not protein.has_strands


def test_every_dna_symbol_complement_is_an_involution():
    dna = get_alphabet("dna")
    for symbol in dna.symbols:
        assert dna.complement[dna.complement[symbol]] == symbol


def test_dna_token_complement_maps_iupac_pairs_and_keeps_padding():
    dna = get_alphabet("dna")
    complement = dna.token_complement()
    pairs = {"A": "T", "C": "G", "R": "Y", "K": "M", "B": "V", "D": "H", "S": "S", "W": "W",
             "N": "N"}
    for a, b in pairs.items():
        assert complement[dna.symbols.index(a)] == dna.symbols.index(b)
        assert complement[dna.symbols.index(b)] == dna.symbols.index(a)
    assert complement[dna.pad_token] == dna.pad_token
    assert len(complement) == dna.n_tokens


def test_protein_token_complement_is_an_error():
    with pytest.raises(BioseqError, match="alphabet 'protein' has no reverse complement"):
        get_alphabet("protein").token_complement()


def test_unknown_alphabet_lists_the_choices():
    with pytest.raises(BioseqError) as err:
        get_alphabet("aa")
    assert str(err.value) == "unknown alphabet 'aa' (choose from dna, rna, protein)"
