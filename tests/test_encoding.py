import numpy as np
import pytest
import torch

from bioseq.alphabets import get_alphabet
from bioseq.encoding import (
    EncodingPolicy,
    LengthPolicy,
    SequenceEncoder,
    decode,
    expansion_table,
    one_hot,
    reverse_complement,
    span_mask,
)
from bioseq.errors import BioseqError

DNA = get_alphabet("dna")
PROTEIN = get_alphabet("protein")


def encoder(alphabet="dna", *, ambiguous="soft", soft_masked="upper", **length):
    return SequenceEncoder(get_alphabet(alphabet), EncodingPolicy(ambiguous, soft_masked),
                           LengthPolicy(**length))


def encode(seqs, alphabet="dna", *, ids=None, width=None, ambiguous="soft",
           soft_masked="upper", **length):
    ids = ids or [f"r{i + 1}" for i in range(len(seqs))]
    enc = encoder(alphabet, ambiguous=ambiguous, soft_masked=soft_masked, **length)
    return enc.encode(ids, seqs, width=width, source="test.fa")


def decoded(chunk, alphabet=DNA):
    return [decode(row, alphabet) for row in chunk.tokens]


def onehot_rows(seq, alphabet="dna", **policy):
    """One-hot of one sequence as (length, alphabet) rows."""
    chunk = encode([seq], alphabet, **policy)
    table = torch.from_numpy(expansion_table(get_alphabet(alphabet),
                                             ambiguous=policy.get("ambiguous", "soft")))
    return one_hot(torch.from_numpy(chunk.tokens.copy()), table)[0].T.numpy()


def rc_strings(chunk):
    rc = reverse_complement(torch.from_numpy(chunk.tokens.copy()),
                            torch.from_numpy(chunk.starts).long(),
                            torch.from_numpy(chunk.lengths).long(),
                            torch.tensor(DNA.token_complement()))
    return [decode(row, DNA) for row in rc.numpy()]


# ---------------------------------------------------------------- round trips and windows

def test_fitting_width_round_trips_every_dna_symbol():
    seq = "ACGTNRYSWKMBDHV"
    chunk = encode([seq])
    assert decoded(chunk) == [seq]
    assert chunk.tokens.dtype == np.uint8
    assert chunk.tokens[0].tolist() == list(range(15))


def test_protein_round_trip():
    seq = "MKTAYIAKQRQISFVKSHFSRQXBZJUO"
    assert decoded(encode([seq], "protein"), PROTEIN) == [seq]


@pytest.mark.parametrize(("anchor", "expected", "starts"), [
    ("left", ["ACG---", "ACGTAC", "T-----"], [0, 0, 0]),
    ("right", ["---ACG", "ACGTAC", "-----T"], [3, 0, 5]),
    ("center", ["-ACG--", "ACGTAC", "--T---"], [1, 0, 2]),
])
def test_padding_placement_per_anchor(anchor, expected, starts):
    chunk = encode(["ACG", "ACGTAC", "T"], length=6, anchor=anchor)
    assert decoded(chunk) == expected
    assert chunk.starts.tolist() == starts
    assert chunk.lengths.tolist() == [3, 6, 1]
    assert chunk.starts.dtype == np.int32 and chunk.lengths.dtype == np.int32


@pytest.mark.parametrize(("anchor", "kept"), [
    ("left", "AACCGG"), ("right", "CGGTTA"), ("center", "ACCGGT"),
])
def test_truncation_keeps_the_anchored_part(anchor, kept):
    chunk = encode(["AACCGGTTA"], length=6, anchor=anchor, truncate=True)
    assert decoded(chunk) == [kept]
    assert chunk.starts.tolist() == [0]
    assert chunk.lengths.tolist() == [6]
    assert chunk.counts["truncated_records"] == 1
    assert chunk.counts["truncated_positions"] == 3


def test_centre_truncation_of_even_excess_drops_equal_ends():
    chunk = encode(["TTACGTAA"], length=4, anchor="center", truncate=True)
    assert decoded(chunk) == ["ACGT"]


def test_over_long_sequence_without_truncate_names_the_record():
    with pytest.raises(BioseqError) as err:
        encode(["ACG", "ACGTA"], ids=["ok", "long1"], length=4)
    assert str(err.value) == ("test.fa: record 'long1': sequence has length 5, over the maximum "
                              "of 4 (set truncate: true to trim it)")


def test_max_length_cap_refuses_longer_sequences():
    with pytest.raises(BioseqError, match="'r2': sequence has length 5, over the maximum of 3"):
        encode(["ACG", "ACGTA"], max_length=3)


def test_max_length_cap_with_truncate_trims_and_counts():
    chunk = encode(["AC", "ACGTA", "GGGGGG"], max_length=3, truncate=True)
    assert decoded(chunk) == ["AC-", "ACG", "GGG"]
    assert chunk.counts["truncated_records"] == 2
    assert chunk.counts["truncated_positions"] == 5


def test_longest_mode_pads_to_the_longest_of_the_chunk():
    chunk = encode(["A", "ACGTA", "CC"])
    assert chunk.tokens.shape == (3, 5)
    assert decoded(chunk) == ["A----", "ACGTA", "CC---"]


def test_width_for_respects_length_and_cap():
    assert encoder(length=60).width_for(100) == 60
    assert encoder().width_for(17) == 17
    assert encoder(max_length=10).width_for(17) == 10
    assert encoder(max_length=10).width_for(7) == 7


# ---------------------------------------------------------------- soft one-hot values

@pytest.mark.parametrize(("code", "row"), [
    ("A", [1, 0, 0, 0]), ("T", [0, 0, 0, 1]),
    ("R", [0.5, 0, 0.5, 0]), ("Y", [0, 0.5, 0, 0.5]), ("S", [0, 0.5, 0.5, 0]),
    ("W", [0.5, 0, 0, 0.5]), ("K", [0, 0, 0.5, 0.5]), ("M", [0.5, 0.5, 0, 0]),
    ("N", [0.25] * 4), ("B", [0, 1 / 3, 1 / 3, 1 / 3]), ("D", [1 / 3, 0, 1 / 3, 1 / 3]),
    ("H", [1 / 3, 1 / 3, 0, 1 / 3]), ("V", [1 / 3, 1 / 3, 1 / 3, 0]),
])
def test_dna_soft_one_hot_rows(code, row):
    np.testing.assert_allclose(onehot_rows(code)[0], row, rtol=0, atol=1e-7)


def _protein_row(weights: dict) -> list[float]:
    return [weights.get(letter, 0.0) for letter in PROTEIN.letters]


@pytest.mark.parametrize(("code", "weights"), [
    ("X", dict.fromkeys("ACDEFGHIKLMNPQRSTVWY", 1 / 20)),
    ("B", {"D": 0.5, "N": 0.5}),
    ("Z", {"E": 0.5, "Q": 0.5}),
    ("J", {"I": 0.5, "L": 0.5}),
    ("U", {"C": 1.0}),
    ("O", {"K": 1.0}),
    ("W", {"W": 1.0}),
])
def test_protein_soft_one_hot_rows(code, weights):
    row = onehot_rows(code, "protein")[0]
    np.testing.assert_allclose(row, _protein_row(weights), rtol=0, atol=1e-7)


def test_soft_rows_sum_to_one_and_padding_is_zero():
    rows = onehot_rows("ACGTNRYSWKMBDHV")
    np.testing.assert_allclose(rows.sum(1), np.ones(15), atol=1e-6)
    table = expansion_table(DNA)
    assert table.shape == (16, 4)
    assert not table[DNA.pad_token].any()


def test_zeros_policy_gives_zero_rows_for_codes_only():
    rows = onehot_rows("ANRT", ambiguous="zeros")
    np.testing.assert_array_equal(rows, [[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]])


def test_zeros_policy_still_counts_codes():
    chunk = encode(["ANRN"], ambiguous="zeros")
    assert chunk.counts["ambiguous_positions"] == 3
    assert chunk.counts["ambiguous_by_symbol"] == {"N": 2, "R": 1}


def test_error_policy_names_record_code_and_position():
    with pytest.raises(BioseqError) as err:
        encode(["ACGT", "ACRT"], ids=["clean", "dirty"], ambiguous="error")
    assert str(err.value) == ("test.fa: record 'dirty': ambiguity code 'R' at window position 3 "
                              "(policy ambiguous: error)")


def test_error_policy_accepts_canonical_sequences():
    assert decoded(encode(["ACGT", "TT"], ambiguous="error")) == ["ACGT", "TT--"]


# ---------------------------------------------------------------- case, RNA and bad input

def test_lower_case_is_upper_cased_and_counted():
    chunk = encode(["acgtNn", "ACgt"])
    assert decoded(chunk) == ["ACGTNN", "ACGT--"]
    assert chunk.counts["soft_masked_positions"] == 7
    assert chunk.counts["ambiguous_by_symbol"] == {"N": 2}


def test_soft_masked_zeros_gives_zero_rows_but_keeps_the_span():
    chunk = encode(["acGT"], soft_masked="zeros")
    assert chunk.lengths.tolist() == [4]
    rows = onehot_rows("acGT", soft_masked="zeros")
    np.testing.assert_array_equal(rows, [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    assert chunk.counts["soft_masked_positions"] == 2
    assert chunk.counts["padded_positions"] == 0


def test_soft_masked_zeros_does_not_count_masked_codes_as_ambiguous():
    chunk = encode(["ACnN"], soft_masked="zeros")
    assert chunk.counts["ambiguous_positions"] == 1
    assert chunk.counts["ambiguous_by_symbol"] == {"N": 1}


def test_rna_u_is_read_as_t():
    chunk = encode(["ACGU", "uuag"], "rna")
    assert decoded(chunk) == ["ACGT", "TTAG"]


def test_u_is_illegal_in_dna():
    with pytest.raises(BioseqError, match="illegal character 'U' for alphabet 'dna'"):
        encode(["ACGU"])


def test_illegal_character_names_record_character_and_position():
    with pytest.raises(BioseqError) as err:
        encode(["ACGT", "AC*T"], ids=["good", "bad_one"])
    assert str(err.value) == ("test.fa: record 'bad_one': illegal character '*' for alphabet "
                              "'dna' at window position 3")


def test_non_ascii_character_names_the_record():
    with pytest.raises(BioseqError, match="record 'r2': non-ASCII character 'é' at position 2"):
        encode(["AAAA", "AéGT"])


def test_empty_sequence_names_the_record():
    with pytest.raises(BioseqError) as err:
        encode(["ACGT", ""], ids=["full", "hollow"])
    assert str(err.value) == "test.fa: record 'hollow': empty sequence"


def test_invalid_policies_are_errors():
    with pytest.raises(BioseqError, match="ambiguous must be one of"):
        EncodingPolicy(ambiguous="drop")
    with pytest.raises(BioseqError, match="soft_masked must be one of"):
        EncodingPolicy(soft_masked="lower")
    with pytest.raises(BioseqError, match="anchor must be one of"):
        LengthPolicy(anchor="middle")
    with pytest.raises(BioseqError, match="length must be a positive integer, not 0"):
        LengthPolicy(length=0)


# ---------------------------------------------------------------- counts

def test_counts_are_exact():
    chunk = encode(["ACGTN", "aRR", "GATTACAGA", "S"], length=6, truncate=True)
    assert chunk.counts == {
        "records": 4, "positions": 15, "padded_positions": 9, "padded_records": 3,
        "soft_masked_positions": 1, "ambiguous_positions": 4,
        "ambiguous_by_symbol": {"N": 1, "R": 2, "S": 1},
        "truncated_records": 1, "truncated_positions": 3,
    }


def test_protein_counts_by_symbol():
    chunk = encode(["MXXUB", "OZJ"], "protein")
    assert chunk.counts["ambiguous_by_symbol"] == {"X": 2, "B": 1, "Z": 1, "J": 1, "U": 1,
                                                   "O": 1}
    assert chunk.counts["padded_positions"] == 2


# ---------------------------------------------------------------- tensors

def test_one_hot_shape_is_batch_alphabet_length():
    chunk = encode(["ACGTA", "CC"])
    x = one_hot(torch.from_numpy(chunk.tokens.copy()), torch.from_numpy(expansion_table(DNA)))
    assert x.shape == (2, 4, 5)
    assert x.dtype == torch.float32
    np.testing.assert_array_equal(x[1].numpy(), [[0, 0, 0, 0, 0], [1, 1, 0, 0, 0],
                                                 [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]])


def test_protein_one_hot_shape():
    chunk = encode(["MKV", "W"], "protein")
    x = one_hot(torch.from_numpy(chunk.tokens.copy()),
                torch.from_numpy(expansion_table(PROTEIN)))
    assert x.shape == (2, 20, 3)


def test_span_mask_values():
    mask = span_mask(torch.tensor([0, 2, 1]), torch.tensor([3, 2, 0]), 5)
    assert mask.tolist() == [
        [True, True, True, False, False],
        [False, False, True, True, False],
        [False, False, False, False, False],
    ]


def test_reverse_complement_of_iupac_codes():
    chunk = encode(["ACGTRYSWKMBDHVN"])
    assert rc_strings(chunk) == ["NBDHVKMWSRYACGT"]


@pytest.mark.parametrize(("anchor", "expected"), [
    ("left", ["CGT---", "AVMT--", "GTACGT"]),
    ("right", ["---CGT", "--AVMT", "GTACGT"]),
    ("center", ["-CGT--", "-AVMT-", "GTACGT"]),
])
def test_reverse_complement_keeps_padding_in_place(anchor, expected):
    chunk = encode(["ACG", "AKBT", "ACGTAC"], length=6, anchor=anchor)
    assert rc_strings(chunk) == expected


@pytest.mark.parametrize("anchor", ["left", "right", "center"])
def test_reverse_complement_twice_is_identity(anchor, splice_records):
    seqs = [seq[: 20 + i] for i, (_, seq, _) in enumerate(splice_records[:30])]
    seqs[3] = "ACGTRYSWKMBDHVN"
    chunk = encode(seqs, length=49, anchor=anchor)
    tokens = torch.from_numpy(chunk.tokens.copy())
    starts = torch.from_numpy(chunk.starts).long()
    lengths = torch.from_numpy(chunk.lengths).long()
    complement = torch.tensor(DNA.token_complement())
    once = reverse_complement(tokens, starts, lengths, complement)
    assert not torch.equal(once, tokens)
    assert once.dtype == torch.uint8
    assert torch.equal(reverse_complement(once, starts, lengths, complement), tokens)
