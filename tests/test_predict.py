import numpy as np
import pandas as pd
import pytest
import torch

from bioseq.alphabets import get_alphabet
from bioseq.encoding import EncodingPolicy, LengthPolicy, SequenceEncoder
from bioseq.errors import BioseqError
from bioseq.models import build_model
from bioseq.predict import Predictor

LABELS = ("EI", "IE", "N")
PROBS = [f"prob_{c}" for c in LABELS]
COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


def make_predictor(tiny_hparams, *, task="multiclass", labels=LABELS, alphabet="dna",
                   length=None, scaling=None, architecture="cnn"):
    torch.manual_seed(0)
    n_outputs = 1 if task == "binary" else len(labels)
    alpha = get_alphabet(alphabet)
    model = build_model(architecture, in_channels=alpha.size, n_outputs=n_outputs,
                        **tiny_hparams(architecture))
    encoder = SequenceEncoder(alpha, EncodingPolicy(), length or LengthPolicy())
    return Predictor(model, encoder=encoder, task=task, label_names=labels,
                     target_scaling=scaling)


@pytest.fixture
def predictor(tiny_hparams):
    return make_predictor(tiny_hparams)


def test_predict_strings_gives_numbered_ids_and_columns(predictor, splice_records):
    seqs = [seq for _, seq, _ in splice_records[:5]]
    frame = predictor.predict(seqs)
    assert frame.columns.tolist() == ["id", "predicted", "prob_EI", "prob_IE", "prob_N"]
    assert frame["id"].tolist() == ["seq1", "seq2", "seq3", "seq4", "seq5"]
    np.testing.assert_allclose(frame[PROBS].sum(axis=1), 1.0, atol=1e-6)
    expected = [LABELS[i] for i in frame[PROBS].to_numpy().argmax(1)]
    assert frame["predicted"].tolist() == expected


def test_predict_mapping_uses_its_keys_and_matches_the_list_form(predictor, splice_records):
    mapping = {name: seq for name, seq, _ in splice_records[100:106]}
    by_map = predictor.predict(mapping)
    by_list = predictor.predict(list(mapping.values()), ids=list(mapping))
    assert by_map["id"].tolist() == list(mapping)
    pd.testing.assert_frame_equal(by_map, by_list)


def test_predictions_do_not_depend_on_the_batch_size(predictor, splice_records):
    seqs = [seq[: 30 + i] for i, (_, seq, _) in enumerate(splice_records[:9])]
    one = predictor.predict(seqs, batch_size=256)[PROBS].to_numpy()
    small = predictor.predict(seqs, batch_size=2)[PROBS].to_numpy()
    np.testing.assert_allclose(small, one, atol=1e-6)


def test_predict_fasta_reads_every_record(predictor, splice_head, splice_records):
    path = splice_head(10)
    frame = predictor.predict_fasta(path)
    assert frame["id"].tolist() == [name for name, _, _ in splice_records[:10]]
    assert frame.columns.tolist() == ["id", "predicted", *PROBS]
    np.testing.assert_allclose(frame[PROBS].sum(axis=1), 1.0, atol=1e-6)
    direct = predictor.predict({n: s for n, s, _ in splice_records[:10]})
    np.testing.assert_allclose(frame[PROBS].to_numpy(), direct[PROBS].to_numpy(), atol=1e-6)


def test_predict_fasta_gzip(predictor, splice_head):
    frame = predictor.predict_fasta(splice_head(3, "three.fa.gz"))
    assert frame["id"].tolist() == ["ATRINS-DONOR-521", "ATRINS-DONOR-905",
                                    "BABAPOE-DONOR-30"]


def test_rc_average_is_the_mean_of_both_strands(predictor, splice_records):
    seqs = [seq[:45] for _, seq, _ in splice_records[:4]]
    reverse = [s.translate(COMPLEMENT)[::-1] for s in seqs]
    forward = predictor.predict(seqs)[PROBS].to_numpy()
    backward = predictor.predict(reverse)[PROBS].to_numpy()
    averaged = predictor.predict(seqs, rc_average=True)[PROBS].to_numpy()
    np.testing.assert_allclose(averaged, (forward + backward) / 2, atol=1e-6)


def test_rc_average_on_protein_is_an_error(tiny_hparams):
    protein = make_predictor(tiny_hparams, alphabet="protein")
    assert protein.predict(["MKVL"])["id"].tolist() == ["seq1"]
    with pytest.raises(BioseqError, match="rc_average needs a DNA/RNA model, not protein"):
        protein.predict(["MKVL"], rc_average=True)


def test_id_count_must_match(predictor):
    with pytest.raises(BioseqError, match="1 ids for 2 sequences"):
        predictor.predict(["ACGT", "GGCC"], ids=["only"])


def test_empty_input_gives_an_empty_frame(predictor):
    frame = predictor.predict([])
    assert len(frame) == 0
    assert frame.columns.tolist() == ["id", "predicted", *PROBS]


def test_illegal_character_names_the_file_and_record(predictor, write_fasta):
    path = write_fasta("bad.fa", [("ok", "ACGT"), ("oops", "ACXT")])
    with pytest.raises(BioseqError) as err:
        predictor.predict_fasta(path)
    assert str(err.value).startswith(f"{path}: record 'oops': illegal character 'X'")


def test_fixed_length_model_refuses_longer_sequences(tiny_hparams):
    predictor = make_predictor(tiny_hparams, length=LengthPolicy(length=10))
    assert len(predictor.predict(["ACGTACGTAC", "ACG"])) == 2
    with pytest.raises(BioseqError, match="record 'seq2': sequence has length 11, over the"):
        predictor.predict(["ACGT", "ACGTACGTACG"])


@pytest.mark.parametrize("anchor", ["left", "center"])
def test_flatten_model_predicts_sequences_shorter_than_its_window(tiny_hparams, anchor):
    torch.manual_seed(0)
    model = build_model("cnn", in_channels=4, n_outputs=3, input_length=60, head_pool="flatten",
                        **tiny_hparams("cnn"))
    encoder = SequenceEncoder(get_alphabet("dna"), EncodingPolicy(),
                              LengthPolicy(length=60, anchor=anchor))
    predictor = Predictor(model, encoder=encoder, task="multiclass", label_names=LABELS)
    frame = predictor.predict(["ACGT" * 10, "GATTACA" * 5])  # 40 and 35 nt in 60-nt windows
    np.testing.assert_allclose(frame[PROBS].sum(axis=1), 1.0, atol=1e-6)


def test_binary_predictor_columns(tiny_hparams):
    predictor = make_predictor(tiny_hparams, task="binary", labels=("neg", "pos"))
    frame = predictor.predict(["ACGTAC", "TTTT"])
    assert frame.columns.tolist() == ["id", "predicted", "prob_neg", "prob_pos"]
    np.testing.assert_allclose(frame[["prob_neg", "prob_pos"]].sum(axis=1), 1.0, atol=1e-6)


def test_regression_predictions_are_unscaled(tiny_hparams):
    raw = make_predictor(tiny_hparams, task="regression", labels=("kd", "tm"))
    scaled = make_predictor(tiny_hparams, task="regression", labels=("kd", "tm"),
                            scaling={"mean": [10.0, -1.0], "std": [2.0, 0.5]})
    seqs = ["ACGTAC", "TTTTGA", "GGA"]
    a, b = raw.predict(seqs), scaled.predict(seqs)
    assert b.columns.tolist() == ["id", "pred_kd", "pred_tm"]
    np.testing.assert_allclose(b["pred_kd"], a["pred_kd"] * 2.0 + 10.0, atol=1e-5)
    np.testing.assert_allclose(b["pred_tm"], a["pred_tm"] * 0.5 - 1.0, atol=1e-5)


def test_multilabel_predicted_lists_labels_over_one_half(tiny_hparams):
    predictor = make_predictor(tiny_hparams, task="multilabel", labels=("cpg", "tata"))
    frame = predictor.predict(["ACGTAC", "TATAAA"])
    assert frame.columns.tolist() == ["id", "predicted", "prob_cpg", "prob_tata"]
    for _, row in frame.iterrows():
        expected = ";".join(n for n in ("cpg", "tata") if row[f"prob_{n}"] >= 0.5)
        assert row["predicted"] == expected


def test_rc_averaged_scores_are_strand_symmetric(predictor, splice_records):
    seqs = [seq[:45] for _, seq, _ in splice_records[:4]]
    reverse = [s.translate(COMPLEMENT)[::-1] for s in seqs]
    np.testing.assert_allclose(predictor.predict(seqs, rc_average=True)[PROBS].to_numpy(),
                               predictor.predict(reverse, rc_average=True)[PROBS].to_numpy(),
                               atol=1e-6)
