import numpy as np
import pytest

from bioseq.errors import BioseqError
from bioseq.splits import (
    assign_splits,
    check_class_counts,
    find_duplicates,
    row_hashes,
    split_counts,
)

# five windows of width 5 (not a multiple of 8): rows 0, 2 and 4 are identical
TOKENS = np.array([
    [0, 1, 2, 3, 15],
    [0, 1, 2, 3, 3],
    [0, 1, 2, 3, 15],
    [3, 2, 1, 0, 15],
    [0, 1, 2, 3, 15],
], np.uint8)
STARTS = np.zeros(5, np.int32)
LENGTHS = np.array([4, 5, 4, 4, 4], np.int32)


def rows_of(tokens, starts, lengths):
    def rows(i):
        return tokens[i].tobytes(), starts[i], lengths[i]
    return rows


def dedup(labels, split=None, hashes=None):
    hashes = row_hashes(TOKENS, STARTS, LENGTHS) if hashes is None else hashes
    return find_duplicates(hashes, rows_of(TOKENS, STARTS, LENGTHS), np.asarray(labels), split)


# ---------------------------------------------------------------- hashing

def test_row_hashes_equal_for_equal_rows_and_different_otherwise():
    h = row_hashes(TOKENS, STARTS, LENGTHS)
    assert h.dtype == np.uint64
    assert h[0] == h[2] == h[4]
    assert len({int(h[0]), int(h[1]), int(h[3])}) == 3


def test_row_hashes_see_the_span_not_only_the_tokens():
    tokens = np.array([[0, 1, 15, 15], [0, 1, 15, 15], [0, 1, 15, 15]], np.uint8)
    h = row_hashes(tokens, np.array([0, 1, 0]), np.array([2, 2, 3]))
    assert len(set(h.tolist())) == 3


def test_row_hashes_depend_on_every_column_of_a_long_row(splice_records):
    seq = np.frombuffer(splice_records[0][1].encode(), np.uint8) % 4
    tokens = np.tile(seq, (60, 1)).astype(np.uint8)
    for i in range(60):  # change one position per row
        tokens[i, i] = (tokens[i, i] + 1) % 4
    h = row_hashes(tokens, np.zeros(60, np.int32), np.full(60, 60, np.int32))
    assert len(set(h.tolist())) == 60


def test_row_hashes_are_deterministic():
    assert np.array_equal(row_hashes(TOKENS, STARTS, LENGTHS), row_hashes(TOKENS.copy(),
                                                                           STARTS, LENGTHS))


# ---------------------------------------------------------------- duplicates

def test_agreeing_copies_keep_the_first_without_splits():
    result = dedup([0, 1, 0, 1, 0])
    assert result.keep.tolist() == [True, True, False, True, False]
    assert result.dropped == [(2, "duplicate", 0), (4, "duplicate", 0)]
    assert (result.duplicates, result.conflicts) == (2, 0)


def test_disagreeing_copies_are_all_dropped():
    result = dedup([0, 1, 0, 1, 1])
    assert result.keep.tolist() == [False, True, False, True, False]
    assert result.dropped == [(0, "conflicting_labels", 2), (2, "conflicting_labels", 0),
                              (4, "conflicting_labels", 0)]
    assert (result.duplicates, result.conflicts) == (0, 3)


def test_the_most_held_out_copy_wins():
    split = np.array([0, 0, 2, 0, 1], np.int8)
    result = dedup([0, 1, 0, 1, 0], split)
    assert result.keep.tolist() == [False, True, True, True, False]
    assert result.dropped == [(0, "duplicate", 2), (4, "duplicate", 2)]


def test_hash_collisions_are_checked_against_the_rows():
    hashes = np.array([7, 7, 7, 7, 7], np.uint64)  # every row claims the same hash
    result = dedup([0, 1, 0, 1, 0], hashes=hashes)
    assert result.keep.tolist() == [True, True, False, True, False]
    assert result.duplicates == 2


def test_multilabel_rows_compare_as_rows():
    labels = np.array([[1, 0], [0, 0], [1, 0], [1, 1], [1, 1]], np.float32)
    result = dedup(labels)
    assert result.conflicts == 3
    assert not result.keep[[0, 2, 4]].any()


def test_no_duplicates_keeps_everything():
    tokens = np.eye(4, dtype=np.uint8)
    starts, lengths = np.zeros(4, np.int32), np.full(4, 4, np.int32)
    result = find_duplicates(row_hashes(tokens, starts, lengths),
                             rows_of(tokens, starts, lengths), np.zeros(4, np.int64), None)
    assert result.keep.all()
    assert result.dropped == []


# ---------------------------------------------------------------- split assignment

def stratified(labels, keep=None, seed=0, val=0.1, test=0.2, stratify=True):
    labels = np.asarray(labels)
    keep = np.ones(len(labels), bool) if keep is None else keep
    return assign_splits(labels, keep, given=None, val_fraction=val, test_fraction=test,
                         seed=seed, stratify=stratify)


def test_stratified_fractions_are_exact_per_class():
    labels = np.repeat([0, 1, 2], [100, 50, 20])
    split = stratified(labels)
    for cls, (n_train, n_val, n_test) in {0: (70, 10, 20), 1: (35, 5, 10),
                                          2: (14, 2, 4)}.items():
        members = split[labels == cls]
        assert [(members == s).sum() for s in (0, 1, 2)] == [n_train, n_val, n_test]
    assert split.dtype == np.int8


def test_fractions_are_rounded_per_class():
    # class 0: 15 x 0.2 = 3 test, 15 x 0.1 = 1.5 -> 2 val; class 1: 1.4 -> 1, 0.7 -> 1
    labels = np.repeat([0, 1], [15, 7])
    split = stratified(labels, val=0.1, test=0.2)
    assert [(split[labels == 0] == s).sum() for s in (0, 1, 2)] == [10, 2, 3]
    assert [(split[labels == 1] == s).sum() for s in (0, 1, 2)] == [5, 1, 1]


def test_split_assignment_is_seeded_and_reproducible():
    labels = np.repeat([0, 1], [40, 40])
    first, again = stratified(labels, seed=3), stratified(labels, seed=3)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, stratified(labels, seed=4))


def test_unstratified_split_uses_overall_fractions():
    labels = np.repeat([0, 1], [5, 45])
    split = stratified(labels, val=0.2, test=0.2, stratify=False)
    assert [(split == s).sum() for s in (0, 1, 2)] == [30, 10, 10]


def test_dropped_records_get_no_split():
    labels = np.repeat([0, 1], [10, 10])
    keep = np.ones(20, bool)
    keep[[0, 15]] = False
    split = stratified(labels, keep=keep, val=0.0, test=0.5)
    assert split[[0, 15]].tolist() == [-1, -1]
    # 9 kept per class: round(4.5) == 4 test, 5 train
    assert [(split == s).sum() for s in (-1, 0, 1, 2)] == [2, 10, 0, 8]


def test_given_splits_win_over_fractions():
    given = np.array([0, 2, 1, 0], np.int8)
    keep = np.array([True, True, False, True])
    split = assign_splits(np.zeros(4, np.int64), keep, given=given, val_fraction=0.5,
                          test_fraction=0.4, seed=0, stratify=True)
    assert split.tolist() == [0, 2, -1, 0]
    assert given.tolist() == [0, 2, 1, 0]  # not modified in place


@pytest.mark.parametrize(("val", "test"), [(0.5, 0.5), (-0.1, 0.1), (0.1, 1.0)])
def test_bad_fractions_are_an_error(val, test):
    with pytest.raises(BioseqError, match="split fractions must be in \\[0, 1\\)"):
        stratified([0, 1], val=val, test=test)


def test_class_counts_need_two_kept_examples():
    labels = np.array([0, 0, 1, 1])
    check_class_counts(labels, np.ones(4, bool), ("a", "b"), where="here")
    with pytest.raises(BioseqError) as err:
        check_class_counts(labels, np.array([True, True, True, False]), ("a", "b"),
                           where="here")
    assert str(err.value) == ("here: class 'b' has 1 example(s) after removing duplicates; "
                              "every class needs at least 2")


def test_class_without_examples_is_an_error():
    with pytest.raises(BioseqError, match="class 'c' has 0 example"):
        check_class_counts(np.array([0, 0, 1, 1]), np.ones(4, bool), ("a", "b", "c"), where="x")


def test_split_counts():
    assert split_counts(np.array([0, 0, 1, 2, -1, 0], np.int8)) == {
        "train": 3, "val": 1, "test": 1, "dropped": 1}
