import pickle

import numpy as np
import pytest
import torch

import bioseq
from bioseq.alphabets import get_alphabet
from bioseq.checkpoint import load_model, read_checkpoint, save_checkpoint
from bioseq.encoding import EncodingPolicy, LengthPolicy, SequenceEncoder
from bioseq.errors import BioseqError
from bioseq.models import REGISTRY, build_model
from bioseq.predict import Predictor

LABELS = ("EI", "IE", "N")
ENCODING = EncodingPolicy(ambiguous="soft", soft_masked="upper")


def save(path, model, *, length=None, task="multiclass", labels=LABELS, **kwargs):
    length = length or LengthPolicy()
    save_checkpoint(path, model, alphabet="dna", encoding=ENCODING, length=length, task=task,
                    label_names=labels, **kwargs)
    return path


def predictor_of(model, length=None, task="multiclass", labels=LABELS):
    encoder = SequenceEncoder(get_alphabet("dna"), ENCODING, length or LengthPolicy())
    return Predictor(model, encoder=encoder, task=task, label_names=labels)


def trained_like(model):
    """Give every parameter and buffer non-default values (BatchNorm statistics included)."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.1)
    return model


class Trap:
    """Unpickling this creates a file: proof that arbitrary objects were loaded."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("architecture", sorted(REGISTRY))
def test_save_then_load_predicts_identically(architecture, tmp_path, tiny_hparams,
                                             splice_records):
    torch.manual_seed(0)
    model = trained_like(build_model(architecture, in_channels=4, n_outputs=3,
                                     **tiny_hparams(architecture))).eval()
    seqs = {name: seq[: 40 + i] for i, (name, seq, _) in enumerate(splice_records[:12])}
    before = predictor_of(model).predict(seqs)
    loaded = load_model(save(tmp_path / "model.pt", model), device="cpu")
    after = loaded.predict(seqs)
    assert after.columns.tolist() == before.columns.tolist()
    assert after["id"].tolist() == list(seqs)
    assert np.array_equal(after[[f"prob_{c}" for c in LABELS]].to_numpy(),
                          before[[f"prob_{c}" for c in LABELS]].to_numpy())
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key


def test_flatten_model_round_trip_keeps_its_input_length(tmp_path, tiny_hparams,
                                                         splice_records):
    torch.manual_seed(0)
    model = build_model("cnn", in_channels=4, n_outputs=3, input_length=60, head_pool="flatten",
                        **tiny_hparams("cnn")).eval()
    length = LengthPolicy(length=60, anchor="center")
    loaded = load_model(save(tmp_path / "flat.pt", model, length=length), device="cpu")
    assert loaded.model.input_length == 60
    assert loaded.encoder.length == length
    seqs = [seq for _, seq, _ in splice_records[:4]]
    assert loaded.predict(seqs).equals(predictor_of(model, length).predict(seqs))


def test_checkpoint_is_a_plain_weights_only_dict(tmp_path, tiny_hparams):
    model = build_model("bigru", in_channels=4, n_outputs=3, **tiny_hparams("bigru"))
    path = save(tmp_path / "model.pt", model, length=LengthPolicy(length=60),
                training={"best_epoch": 3})
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["format"] == "bioseq-checkpoint"
    assert checkpoint["architecture"] == "bigru"
    assert checkpoint["hparams"] == tiny_hparams("bigru")
    assert checkpoint["alphabet"] == "dna"
    assert checkpoint["encoding"] == {"ambiguous": "soft", "soft_masked": "upper"}
    assert checkpoint["length"] == {"length": 60, "max_length": None, "anchor": "left",
                                    "truncate": False, "overlap": None}
    assert checkpoint["label_names"] == ["EI", "IE", "N"]
    assert checkpoint["bioseq_version"] == bioseq.__version__
    assert checkpoint["task"] == "multiclass"
    assert checkpoint["training"] == {"best_epoch": 3}
    assert set(checkpoint["state_dict"]) == set(model.state_dict())


def test_predictor_exposes_the_checkpoint_without_weights(tmp_path, tiny_hparams):
    model = build_model("cnn", in_channels=4, n_outputs=3, **tiny_hparams("cnn"))
    loaded = load_model(save(tmp_path / "model.pt", model), device="cpu")
    assert "state_dict" not in loaded.checkpoint
    assert loaded.checkpoint["architecture"] == "cnn"
    assert loaded.label_names == LABELS
    assert loaded.device == torch.device("cpu")
    assert not loaded.model.training


def test_missing_checkpoint(tmp_path):
    with pytest.raises(BioseqError, match="no such file"):
        load_model(tmp_path / "absent.pt")


def test_text_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "model.pt"
    path.write_text("architecture: cnn\n")
    with pytest.raises(BioseqError, match="not a bioseq checkpoint") as err:
        load_model(path)
    assert "\n" not in str(err.value)
    assert str(err.value).startswith(f"{path}: ")


def test_pickled_python_object_is_refused_without_being_loaded(tmp_path):
    sentinel = tmp_path / "was_unpickled"
    path = tmp_path / "evil.pt"
    torch.save({"format": "bioseq-checkpoint", "trap": Trap(sentinel)}, path)
    with pytest.raises(BioseqError, match="not a bioseq checkpoint"):
        load_model(path)
    assert not sentinel.exists()


def test_plain_pickle_is_refused_without_being_loaded(tmp_path):
    sentinel = tmp_path / "was_unpickled"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(Trap(sentinel), protocol=2))
    with pytest.raises(BioseqError, match="not a bioseq checkpoint"):
        read_checkpoint(path)
    assert not sentinel.exists()


def test_foreign_torch_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(BioseqError) as err:
        load_model(path)
    assert str(err.value) == f"{path}: not a bioseq checkpoint"


def test_newer_format_version_is_refused(tmp_path, tiny_hparams):
    model = build_model("cnn", in_channels=4, n_outputs=3, **tiny_hparams("cnn"))
    path = save(tmp_path / "model.pt", model)
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["format_version"] = 99
    torch.save(checkpoint, path)
    with pytest.raises(BioseqError, match="checkpoint format 99 is newer than this bioseq"):
        load_model(path)


def test_binary_checkpoint_has_one_output(tmp_path, tiny_hparams):
    model = build_model("cnn", in_channels=4, n_outputs=1, **tiny_hparams("cnn"))
    loaded = load_model(save(tmp_path / "bin.pt", model, task="binary", labels=("neg", "pos")),
                        device="cpu")
    frame = loaded.predict(["ACGTACGT", "GGGCCC"])
    assert frame.columns.tolist() == ["id", "predicted", "prob_neg", "prob_pos"]
    np.testing.assert_allclose(frame[["prob_neg", "prob_pos"]].sum(axis=1), 1.0, atol=1e-6)


def test_regression_checkpoint_keeps_its_target_scaling(tmp_path, tiny_hparams):
    torch.manual_seed(0)
    model = build_model("transformer", in_channels=4, n_outputs=2,
                        **tiny_hparams("transformer")).eval()
    scaling = {"mean": [10.0, -1.0], "std": [2.0, 0.5]}
    path = save(tmp_path / "reg.pt", model, task="regression", labels=("kd", "tm"),
                target_scaling=scaling)
    loaded = load_model(path, device="cpu")
    assert loaded.target_scaling == scaling
    seqs = ["ACGTACGGA", "TTGACA"]
    encoder = SequenceEncoder(get_alphabet("dna"), ENCODING, LengthPolicy())
    direct = Predictor(model, encoder=encoder, task="regression", label_names=("kd", "tm"),
                       target_scaling=scaling).predict(seqs)
    after = loaded.predict(seqs)
    assert after.columns.tolist() == ["id", "pred_kd", "pred_tm"]
    assert np.array_equal(after[["pred_kd", "pred_tm"]].to_numpy(),
                          direct[["pred_kd", "pred_tm"]].to_numpy())


STACKED_CNN_BILSTM = {"channels": [8, 8], "kernel_size": [5, 3], "dilations": [1, 2],
                      "residual": True, "pool": 1, "cell": "gru", "hidden": 4}


def position_hparams(architecture, tiny_hparams):
    hparams = dict(tiny_hparams(architecture))
    if architecture == "cnn":
        hparams["pool"] = [1] * len(hparams["channels"])
    if architecture == "cnn_bilstm":
        hparams["pool"] = 1
    return hparams


@pytest.mark.parametrize("architecture", [*sorted(REGISTRY), "stacked cnn_bilstm"])
def test_position_model_round_trip_is_identical(architecture, tmp_path, tiny_hparams,
                                                splice_records):
    if architecture == "stacked cnn_bilstm":
        architecture, hparams = "cnn_bilstm", STACKED_CNN_BILSTM
    else:
        hparams = position_hparams(architecture, tiny_hparams)
    torch.manual_seed(0)
    model = trained_like(build_model(architecture, in_channels=4, n_outputs=3,
                                     output="position", **hparams)).eval()
    loaded = load_model(save(tmp_path / "m.pt", model, task="per_residue"), device="cpu")
    assert loaded.model.output == "position" and loaded.model.hparams == hparams
    encoder = loaded.encoder
    chunk = encoder.encode(["a", "b"], [splice_records[0][1], splice_records[1][1][:31]])
    tokens = chunk.tokens.copy()
    x = torch.nn.functional.one_hot(torch.from_numpy(tokens).long() % 4, 4).float()
    x = x.transpose(1, 2)  # (B, L, 4) -> (B, 4, L)
    mask = torch.from_numpy(tokens != get_alphabet("dna").pad_token)
    with torch.no_grad():
        assert torch.equal(loaded.model(x, mask), model(x, mask))
