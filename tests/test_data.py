import numpy as np
import pytest
import torch

from bioseq.alphabets import get_alphabet
from bioseq.data import BatchLoader, TokenExpander
from bioseq.encoding import EncodingPolicy, LengthPolicy, SequenceEncoder, decode

DNA = get_alphabet("dna")
SEQS = ["ACGTACGTAC", "AC", "ACGTA", "GGG", "ACGTACGTACGT", "T", "CCCCCCC", "AAAA"]


def chunk_of(seqs, anchor="left", length=None):
    encoder = SequenceEncoder(DNA, EncodingPolicy(), LengthPolicy(length=length, anchor=anchor))
    return encoder.encode([f"s{i}" for i in range(len(seqs))], seqs)


def loader_of(chunk, indices, **kwargs):
    return BatchLoader(chunk.tokens, chunk.starts, chunk.lengths, np.asarray(indices), **kwargs)


def epoch_indices(loader):
    return np.concatenate([batch.index for batch in loader])


# ---------------------------------------------------------------- BatchLoader

@pytest.mark.parametrize("shuffle", [False, True])
def test_every_index_exactly_once_per_epoch(splice, shuffle):
    index = splice.indices("val")
    loader = BatchLoader(splice.tokens, splice.starts, splice.lengths, index,
                         targets=splice.labels, batch_size=64, shuffle=shuffle, seed=1)
    assert len(loader) == 5  # 300 records
    for _ in range(2):
        seen = epoch_indices(loader)
        assert len(seen) == 300
        assert sorted(seen.tolist()) == sorted(index.tolist())
        assert (seen.tolist() == index.tolist()) is (not shuffle)


def test_batches_carry_the_rows_and_targets_of_their_indices(splice):
    index = splice.indices("test")[:70]
    loader = BatchLoader(splice.tokens, splice.starts, splice.lengths, index,
                         targets=splice.labels, batch_size=32, shuffle=True, seed=0)
    sizes = []
    for batch in loader:
        sizes.append(len(batch.index))
        assert np.array_equal(batch.tokens.numpy(), splice.tokens[batch.index])
        assert batch.targets.tolist() == splice.labels[batch.index].tolist()
        assert batch.starts.dtype == torch.int64 and batch.lengths.dtype == torch.int64
        assert batch.tokens.dtype == torch.uint8
    assert sizes == [32, 32, 6]


def test_shuffled_order_is_seeded_and_changes_between_epochs(splice):
    index = splice.indices("val")

    def loader(seed):
        return BatchLoader(splice.tokens, splice.starts, splice.lengths, index,
                           batch_size=50, shuffle=True, seed=seed)

    a, b = loader(7), loader(7)
    first_a, first_b = epoch_indices(a), epoch_indices(b)
    assert np.array_equal(first_a, first_b)
    assert not np.array_equal(first_a, epoch_indices(a))
    assert not np.array_equal(first_a, epoch_indices(loader(8)))


def test_width_is_trimmed_to_the_longest_in_the_batch():
    chunk = chunk_of(SEQS)
    assert chunk.tokens.shape == (8, 12)
    loader = loader_of(chunk, [1, 3, 5, 7, 2, 0], batch_size=4, trim=True)
    widths = [batch.tokens.shape[1] for batch in loader]
    assert widths == [4, 10]  # max(2, 3, 1, 4); max(5, 10)
    batch = next(iter(loader_of(chunk, [3, 1], batch_size=2, trim=True)))
    assert [decode(row, DNA) for row in batch.tokens.numpy()] == ["GGG", "AC-"]


def test_padded_to_longest_windows_are_left_placed_whatever_the_anchor():
    """With length: null a sequence sits at the same positions whatever its batch holds;
    the anchor only picks which part of an over-long sequence is kept."""
    chunk = chunk_of(SEQS, anchor="right")
    batch = next(iter(loader_of(chunk, [1, 3], batch_size=2, trim=True)))
    assert batch.tokens.shape == (2, 3)
    assert decode(batch.tokens[0].numpy(), DNA) == "AC-"


def test_trim_off_keeps_the_full_width():
    chunk = chunk_of(SEQS)
    batch = next(iter(loader_of(chunk, [1, 3], batch_size=2, trim=False)))
    assert batch.tokens.shape == (2, 12)


def test_empty_index_yields_nothing():
    loader = loader_of(chunk_of(SEQS), [], batch_size=4)
    assert len(loader) == 0
    assert list(loader) == []


# ---------------------------------------------------------------- TokenExpander

def test_expander_gives_one_hot_and_span_mask():
    chunk = chunk_of(["ACGN", "GT"], anchor="center", length=4)
    batch = next(iter(loader_of(chunk, [0, 1], batch_size=2)))
    x, mask = TokenExpander(DNA, ambiguous="soft")(batch)
    assert x.shape == (2, 4, 4)
    assert mask.tolist() == [[True, True, True, True], [False, True, True, False]]
    np.testing.assert_array_equal(x[0].T.numpy(), [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0],
                                                   [0.25, 0.25, 0.25, 0.25]])
    np.testing.assert_array_equal(x[1].T.numpy(), [[0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1],
                                                   [0, 0, 0, 0]])


def test_expander_zeros_policy():
    batch = next(iter(loader_of(chunk_of(["ANRT"]), [0])))
    x, _ = TokenExpander(DNA, ambiguous="zeros")(batch)
    np.testing.assert_array_equal(x[0].T.numpy(), [[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0],
                                                   [0, 0, 0, 1]])


def test_expander_reverse_is_the_reverse_complement_inside_the_span():
    chunk = chunk_of(["AACG", "GT"], anchor="center", length=4)
    batch = next(iter(loader_of(chunk, [0, 1], batch_size=2)))
    expander = TokenExpander(DNA, ambiguous="soft")
    x_rc, mask = expander(batch, reverse=True)
    x, _ = expander(chunk_batch(["CGTT", "-AC-"]))
    assert torch.equal(x_rc, x)
    assert mask.tolist() == [[True] * 4, [False, True, True, False]]


def chunk_batch(rows):
    """A batch from already-placed rows ('-' = padding)."""
    tokens = np.array([[DNA.symbols.index(c) if c != "-" else DNA.pad_token for c in row]
                       for row in rows], np.uint8)
    starts = np.array([len(r) - len(r.lstrip("-")) for r in rows], np.int32)
    lengths = np.array([len(r.strip("-")) for r in rows], np.int32)
    return next(iter(BatchLoader(tokens, starts, lengths, np.arange(len(rows)),
                                 batch_size=len(rows), trim=False)))


def test_random_reverse_flips_a_seeded_subset(splice):
    index = splice.indices("train")[:64]
    batch = next(iter(BatchLoader(splice.tokens, splice.starts, splice.lengths, index,
                                  batch_size=64)))
    original = batch.tokens.clone()
    expander = TokenExpander(DNA, ambiguous="soft")
    flipped = expander.random_reverse(batch, torch.Generator().manual_seed(0))
    again = expander.random_reverse(batch, torch.Generator().manual_seed(0))
    assert torch.equal(flipped.tokens, again.tokens)
    assert torch.equal(batch.tokens, original)  # the input batch is not modified
    changed = (flipped.tokens != original).any(1)
    expected = torch.rand(64, generator=torch.Generator().manual_seed(0)) < 0.5
    assert torch.equal(changed, expected)
    rc, _ = expander(batch, reverse=True)
    x, _ = expander(flipped)
    assert torch.equal(x[expected], rc[expected])


def test_fixed_windows_keep_their_full_width_by_default():
    chunk = chunk_of(SEQS)
    widths = [batch.tokens.shape[1] for batch in loader_of(chunk, [1, 3, 5], batch_size=2)]
    assert widths == [12, 12]


def test_length_buckets_cover_every_index_once_and_group_similar_lengths():
    rng = np.random.default_rng(0)
    seqs = ["A" * int(n) for n in rng.integers(1, 200, 400)]
    chunk = chunk_of(seqs)
    loader = loader_of(chunk, np.arange(400), batch_size=16, shuffle=True, seed=1, bucket=True,
                       trim=True)
    batches = loader.batches()
    assert sorted(np.concatenate(batches).tolist()) == list(range(400))
    lengths = chunk.lengths
    bucketed_spread = np.mean([np.ptp(lengths[b]) for b in batches])
    plain = loader_of(chunk, np.arange(400), batch_size=16, shuffle=True, seed=1).batches()
    assert bucketed_spread < np.mean([np.ptp(lengths[b]) for b in plain]) / 5
    widths = [batch.tokens.shape[1] for batch in loader]
    assert sum(widths) * 16 < 0.6 * 400 * 199  # far less padding than one width for all
    again = loader_of(chunk, np.arange(400), batch_size=16, shuffle=True, seed=1, bucket=True)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again.batches(), strict=True))


def test_scores_come_back_in_index_order_when_bucketed():
    from bioseq.models import build_model
    from bioseq.predict import predict_scores

    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), int(n))) for n in rng.integers(5, 60, 50)]
    chunk = chunk_of(seqs)
    torch.manual_seed(0)
    model = build_model("bigru", in_channels=4, n_outputs=2, hidden=4, layers=1).eval()
    expander = TokenExpander(DNA, ambiguous="soft")
    indices = rng.permutation(50)[:37]
    plain = predict_scores(model, loader_of(chunk, indices, batch_size=8, trim=True), expander,
                           task="multiclass")
    bucketed = predict_scores(model, loader_of(chunk, indices, batch_size=8, trim=True,
                                               bucket=True), expander, task="multiclass")
    np.testing.assert_allclose(bucketed, plain, atol=1e-6)
