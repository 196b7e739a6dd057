import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bioseq.alphabets import get_alphabet
from bioseq.data import BatchLoader, TokenExpander
from bioseq.encoding import EncodingPolicy, LengthPolicy, SequenceEncoder
from bioseq.errors import BioseqError
from bioseq.models import REGISTRY, build_model

ARCHITECTURES = sorted(REGISTRY)
DNA = get_alphabet("dna")


def inputs(seqs, *, length=None, alphabet=DNA):
    """Strings -> (x, mask) through the real encoder, loader and expander."""
    encoder = SequenceEncoder(alphabet, EncodingPolicy(), LengthPolicy(length=length))
    chunk = encoder.encode([f"s{i}" for i in range(len(seqs))], seqs)
    loader = BatchLoader(chunk.tokens, chunk.starts, chunk.lengths, np.arange(len(seqs)),
                         batch_size=len(seqs))
    return TokenExpander(alphabet, ambiguous="soft")(next(iter(loader)))


def tiny_model(architecture, tiny_hparams, n_outputs=3, **extra):
    torch.manual_seed(0)
    return build_model(architecture, in_channels=4, n_outputs=n_outputs,
                       **{**tiny_hparams(architecture), **extra})


def test_every_architecture_has_tiny_settings(tiny_hparams):
    for architecture in ARCHITECTURES:
        assert tiny_hparams(architecture)
    assert ARCHITECTURES == ["bigru", "bilstm", "cnn", "cnn_bilstm", "transformer"]


@pytest.mark.parametrize("n_outputs", [1, 3])
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_output_shape(architecture, n_outputs, tiny_hparams, splice_records):
    seqs = [seq[: 30 + 7 * i] for i, (_, seq, _) in enumerate(splice_records[:5])]
    model = tiny_model(architecture, tiny_hparams, n_outputs).eval()
    with torch.no_grad():
        out = model(*inputs(seqs))
    assert out.shape == (5, n_outputs)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_backward_gives_finite_gradients_for_all_parameters(architecture, tiny_hparams,
                                                            splice_records):
    seqs = [seq[: 25 + 9 * i] for i, (_, seq, _) in enumerate(splice_records[1000:1004])]
    model = tiny_model(architecture, tiny_hparams).train()
    loss = F.cross_entropy(model(*inputs(seqs)), torch.tensor([0, 1, 2, 1]))
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_prediction_does_not_depend_on_padding(architecture, tiny_hparams, splice_records):
    short = splice_records[5][1][:23]
    longer = splice_records[2000][1]
    model = tiny_model(architecture, tiny_hparams, head_pool="meanmax").eval()
    with torch.no_grad():
        alone = model(*inputs([short]))
        padded = model(*inputs([short, longer]))
        padded_more = model(*inputs([longer, short], length=80))
    torch.testing.assert_close(padded[0], alone[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(padded_more[1], alone[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_flatten_head_needs_input_length(architecture, tiny_hparams):
    with pytest.raises(BioseqError) as err:
        tiny_model(architecture, tiny_hparams, head_pool="flatten")
    assert str(err.value) == "head_pool: flatten needs fixed-length input (dataset length: N)"


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_flatten_head_on_fixed_width_input(architecture, tiny_hparams, splice_records):
    torch.manual_seed(0)
    model = build_model(architecture, in_channels=4, n_outputs=3, input_length=60,
                        head_pool="flatten", **tiny_hparams(architecture)).eval()
    assert model.input_length == 60
    seqs = [seq for _, seq, _ in splice_records[:3]]
    with torch.no_grad():
        assert model(*inputs(seqs, length=60)).shape == (3, 3)


def test_unknown_architecture_lists_the_choices():
    with pytest.raises(BioseqError) as err:
        build_model("resnet", in_channels=4, n_outputs=1)
    assert str(err.value) == ("unknown architecture 'resnet' (choose from bigru, bilstm, cnn, "
                              "cnn_bilstm, transformer)")


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_unknown_hyper_parameter_is_an_error(architecture):
    with pytest.raises(BioseqError, match=f"architecture '{architecture}': .*'kernal_size'"):
        build_model(architecture, in_channels=4, n_outputs=1, kernal_size=3)


def test_cnn_layer_lists_must_agree():
    with pytest.raises(BioseqError, match="kernel_sizes, pool and dilations need one entry"):
        build_model("cnn", in_channels=4, n_outputs=1, channels=[8, 8], kernel_sizes=[5])


def test_bad_head_pool_is_an_error():
    with pytest.raises(BioseqError, match="head_pool must be 'meanmax' or 'flatten', not 'avg'"):
        build_model("cnn", in_channels=4, n_outputs=1, channels=[8], kernel_sizes=[3],
                    head_pool="avg")


def test_bad_transformer_embedding_is_an_error():
    with pytest.raises(BioseqError, match="embedding must be 'conv' or 'linear'"):
        build_model("transformer", in_channels=4, n_outputs=1, embedding="onehot")


def test_model_remembers_how_it_was_built(tiny_hparams):
    params = tiny_hparams("bigru")
    model = build_model("bigru", in_channels=4, n_outputs=2, **params)
    assert model.architecture == "bigru"
    assert model.hparams == params
    assert model.input_length is None


def test_protein_model_has_20_input_channels(tiny_hparams):
    protein = get_alphabet("protein")
    model = build_model("transformer", in_channels=protein.size, n_outputs=2,
                        **tiny_hparams("transformer")).eval()
    with torch.no_grad():
        out = model(*inputs(["MKVLAAGIXB", "MKW"], alphabet=protein))
    assert out.shape == (2, 2)


def test_transformer_pooling_keeps_padding_out():
    """Max-pooling a window that spans the last real position and padding must not let the
    padding's zero win over negative embeddings."""
    torch.manual_seed(0)
    model = build_model("transformer", in_channels=4, n_outputs=2, d_model=16, heads=2,
                        layers=1, pool=2).eval()
    x = F.one_hot(torch.tensor([[0, 1, 2, 3, 0]]), 4).float().transpose(1, 2)  # (1, 4, 5)
    alone = model(x, torch.ones(1, 5, dtype=torch.bool))
    padded = torch.cat([x, torch.zeros(1, 4, 3)], dim=2)
    mask = torch.tensor([[True] * 5 + [False] * 3])
    torch.testing.assert_close(model(padded, mask), alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("attention_dropout", "random"), [(None, False), (0.0, False),
                                                           (0.5, True)])
def test_transformer_attention_dropout_is_its_own_setting(attention_dropout, random):
    """With the other dropout sites at 0, training-mode outputs vary only when the
    attention weights are dropped."""
    torch.manual_seed(0)
    model = build_model("transformer", in_channels=4, n_outputs=2, d_model=16, heads=2,
                        layers=2, dropout=0.0, attention_dropout=attention_dropout,
                        head_dropout=0.0).train()
    x, mask = inputs(["ACGTACGTAC", "ACGTTT"])
    first, second = model(x, mask), model(x, mask)
    assert not torch.equal(first, second) if random else torch.equal(first, second)


@pytest.mark.parametrize(("dropout", "attention_dropout", "expected"),
                         [(0.3, None, 0.3), (0.3, 0.0, 0.0), (0.0, 0.2, 0.2)])
def test_unset_attention_dropout_follows_dropout(dropout, attention_dropout, expected):
    model = build_model("transformer", in_channels=4, n_outputs=2, d_model=16, heads=2,
                        layers=2, dropout=dropout, attention_dropout=attention_dropout)
    layers = model.backbone.encoder.layers
    assert [layer.self_attn.dropout for layer in layers] == [expected] * 2
    assert [layer.dropout.p for layer in layers] == [dropout] * 2  # the other sites


def test_masked_batch_norm_counts_real_positions_only():
    from bioseq.models.cnn import MaskedBatchNorm1d

    torch.manual_seed(0)
    norm = MaskedBatchNorm1d(3).train()
    x = torch.randn(4, 3, 10)
    mask = torch.ones(4, 10, dtype=torch.bool)
    mask[1, 6:] = False
    mask[3, 2:] = False
    out = norm(x, mask)
    real = torch.cat([x[b][:, mask[b]] for b in range(4)], dim=1)  # (channels, positions)
    expected = (real - real.mean(1, keepdim=True)) / torch.sqrt(
        real.var(1, unbiased=False, keepdim=True) + norm.eps)
    got = torch.cat([out[b][:, mask[b]] for b in range(4)], dim=1)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(norm.running_mean, 0.1 * real.mean(1), atol=1e-6, rtol=0)


def test_cnn_training_step_does_not_depend_on_batch_padding():
    """In training mode (batch statistics) a sequence's output is the same whether its
    batch is padded further or not."""
    torch.manual_seed(0)
    model = build_model("cnn", in_channels=4, n_outputs=1, channels=(8,), kernel_sizes=(3,),
                        pool=1, dropout=0.0, head_dropout=0.0).train()
    x = F.one_hot(torch.randint(0, 4, (2, 6)), 4).float().transpose(1, 2)
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, 4:] = False
    x = x * mask.unsqueeze(1)
    wider = torch.cat([x, torch.zeros(2, 4, 5)], dim=2)
    wider_mask = torch.cat([mask, torch.zeros(2, 5, dtype=torch.bool)], dim=1)
    torch.testing.assert_close(model(wider, wider_mask), model(x, mask), atol=1e-5, rtol=0)


# ---------------------------------------------------------------- per-position outputs

def position_model(architecture, tiny_hparams, n_outputs=3):
    torch.manual_seed(0)
    hparams = {**tiny_hparams(architecture)}
    if architecture in ("cnn", "cnn_bilstm"):  # per-position outputs need the full length
        hparams["pool"] = [1] * len(hparams["channels"]) if architecture == "cnn" else 1
    return build_model(architecture, in_channels=4, n_outputs=n_outputs, output="position",
                       **hparams)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_position_head_shape_and_backward(architecture, tiny_hparams, splice_records):
    model = position_model(architecture, tiny_hparams)
    x, mask = inputs([splice_records[0][1][:30], splice_records[1][1][:17]])
    logits = model(x, mask)
    assert logits.shape == (2, 3, 30)
    assert torch.equal(logits[1, :, 17:], torch.zeros(3, 13))  # padding gives nothing
    logits.sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_masked_loss_equals_the_loss_of_each_sequence_alone(architecture, tiny_hparams,
                                                           splice_records):
    """Batch loss over real residues == residue-weighted mean of the unpadded losses."""
    from bioseq import tasks

    model = position_model(architecture, tiny_hparams).eval()
    seqs = [splice_records[i][1][:n] for i, n in ((0, 60), (1, 23), (2, 41))]
    rng = np.random.default_rng(0)
    labels = [torch.from_numpy(rng.integers(0, 3, len(s))) for s in seqs]
    labels[1][:5] = tasks.IGNORE  # unresolved residues count for nothing
    targets = torch.full((3, 60), tasks.IGNORE, dtype=torch.int64)
    for row, label in enumerate(labels):
        targets[row, : len(label)] = label
    with torch.no_grad():
        batch_loss = tasks.loss("per_residue", model(*inputs(seqs)), targets)
        total, count = 0.0, 0
        for seq, label in zip(seqs, labels, strict=True):
            alone = model(*inputs([seq]))
            valid = label != tasks.IGNORE
            total += F.cross_entropy(alone[0].T[valid], label[valid], reduction="sum").item()
            count += int(valid.sum())
    assert batch_loss.item() == pytest.approx(total / count, abs=1e-5)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_position_outputs_do_not_depend_on_padding(architecture, tiny_hparams,
                                                   splice_records):
    model = position_model(architecture, tiny_hparams).eval()
    short, longer = splice_records[5][1][:23], splice_records[2000][1]
    with torch.no_grad():
        alone = model(*inputs([short]))
        batched = model(*inputs([longer, short]))
    torch.testing.assert_close(batched[1, :, :23], alone[0], atol=1e-5, rtol=0)


def test_pooling_backbone_cannot_give_position_outputs(tiny_hparams):
    with pytest.raises(BioseqError, match="changes the sequence length.*set pool: 1"):
        build_model("cnn", in_channels=4, n_outputs=3, output="position",
                     **tiny_hparams("cnn"))
    with pytest.raises(BioseqError, match="head_pool does not apply"):
        build_model("bigru", in_channels=4, n_outputs=3, output="position", hidden=4,
                    head_pool="flatten")


def test_residual_dilated_cnn_keeps_padding_out(splice_records):
    torch.manual_seed(0)
    model = build_model("cnn", in_channels=4, n_outputs=3, output="position",
                        channels=[8, 8, 8], kernel_sizes=[5, 3, 3], dilations=[1, 2, 4],
                        residual=True, pool=1).eval()
    assert model.backbone.skips == [False, True, True]  # 4 -> 8 channels cannot skip
    short, longer = splice_records[5][1][:23], splice_records[2000][1]
    with torch.no_grad():
        alone = model(*inputs([short]))
        batched = model(*inputs([longer, short]))
    torch.testing.assert_close(batched[1, :, :23], alone[0], atol=1e-5, rtol=0)


def test_dilations_need_one_entry_per_layer():
    with pytest.raises(BioseqError, match="one entry per layer"):
        build_model("cnn", in_channels=4, n_outputs=2, channels=[8, 8], kernel_sizes=[3, 3],
                    dilations=[1, 2, 4])


# ---------------------------------------------------------------- stacked cnn_bilstm

STACKED_HYBRID = {"channels": [8, 8, 8], "kernel_size": 3, "dilations": [1, 2, 4],
                  "residual": True, "pool": 1, "cell": "gru", "hidden": 6, "dropout": 0.1}


def test_cnn_bilstm_with_a_channel_list_stacks_dilated_residual_blocks():
    torch.manual_seed(0)
    model = build_model("cnn_bilstm", in_channels=4, n_outputs=3, output="position",
                        **STACKED_HYBRID)
    blocks = model.backbone.conv.blocks
    assert [block.conv.dilation[0] for block in blocks] == [1, 2, 4]
    assert [block.conv.kernel_size[0] for block in blocks] == [3, 3, 3]
    assert model.backbone.conv.skips == [False, True, True]  # 4 -> 8 channels has no skip
    assert isinstance(model.backbone.rnn.rnn, torch.nn.GRU)
    assert model.backbone.out_channels == 12


@pytest.mark.parametrize("hparams", [{"channels": []},
                                     {"channels": [8, 8], "kernel_size": [5, 3, 3]}])
def test_stacked_cnn_bilstm_layer_lists_must_agree(hparams):
    with pytest.raises(BioseqError, match="needs at least one layer in channels and one "
                                          "kernel_size for all or one per layer"):
        build_model("cnn_bilstm", in_channels=4, n_outputs=1, **hparams)


def test_stacked_cnn_bilstm_per_position_output_ignores_padding(splice_records):
    torch.manual_seed(0)
    model = build_model("cnn_bilstm", in_channels=4, n_outputs=3, output="position",
                        **STACKED_HYBRID).eval()
    short, longer = splice_records[5][1][:23], splice_records[2000][1]
    with torch.no_grad():
        alone = model(*inputs([short]))  # (1, 3, 23)
        padded = model(*inputs([longer, short], length=80))  # (2, 3, 80)
    assert alone.shape == (1, 3, 23)
    torch.testing.assert_close(padded[1, :, :23], alone[0], atol=1e-5, rtol=0)
    x, mask = inputs([longer, short], length=80)
    model.train()
    model(x, mask).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


# ---------------------------------------------------------------- recurrence without packing
def packed_reference(rnn_backbone, x, mask):
    """The backbone's output computed the textbook way: packed sequences, (B, 2H, L)."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    starts, lengths = mask.int().argmax(1), mask.sum(1)
    rows = [x[b, :, s:s + n].T for b, (s, n) in enumerate(zip(starts, lengths, strict=True))]
    padded = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)
    packed = pack_padded_sequence(padded, lengths, batch_first=True, enforce_sorted=False)
    out, _ = pad_packed_sequence(rnn_backbone.rnn(packed)[0], batch_first=True)
    full = x.new_zeros(x.shape[0], out.shape[2], x.shape[2])
    for b, (s, n) in enumerate(zip(starts, lengths, strict=True)):
        full[b, :, s:s + n] = out[b, :n].T
    return full


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("layers", [1, 2])
def test_cpu_recurrence_equals_packed_sequences(cell, layers):
    from bioseq.models.recurrent import RecurrentBackbone
    torch.manual_seed(0)
    backbone = RecurrentBackbone(5, cell=cell, hidden=6, layers=layers, dropout=0.3).eval()
    x = torch.randn(4, 5, 17, requires_grad=True)
    mask = torch.zeros(4, 17, dtype=torch.bool)
    for b, (start, length) in enumerate([(0, 17), (0, 9), (3, 11), (16, 1)]):
        mask[b, start:start + length] = True  # leading padding too, as centred windows have
    out, _ = backbone(x, mask)
    expected = packed_reference(backbone, x, mask)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    assert out[~mask[:, None, :].expand_as(out)].abs().max() == 0  # padding stays zero
    weights = list(backbone.parameters())
    out_grad = torch.randn_like(out)  # one upstream gradient through both versions
    grads = torch.autograd.grad((out * out_grad).sum(), [x, *weights])
    expected_grads = torch.autograd.grad((expected * out_grad).sum(), [x, *weights])
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_cpu_recurrence_in_training_drops_between_layers_as_the_module_does(cell):
    from bioseq.models.recurrent import RecurrentBackbone
    torch.manual_seed(0)
    backbone = RecurrentBackbone(5, cell=cell, hidden=6, layers=2).train()
    backbone.rnn.dropout, backbone.dropout.p = 1.0, 0.0  # deterministic: layer 2 sees zeros
    x = torch.randn(3, 5, 12)
    mask = torch.arange(12)[None, :] < torch.tensor([[12], [7], [3]])
    expected = packed_reference(backbone, x, mask)
    torch.testing.assert_close(backbone(x, mask)[0], expected, atol=1e-6, rtol=0)
    backbone.rnn.dropout = 0.0
    assert (backbone(x, mask)[0] - expected).abs().max() > 0.01  # the test can tell


def test_cpu_recurrence_keeps_non_finite_padding_out():
    from bioseq.models.recurrent import RecurrentBackbone
    backbone = RecurrentBackbone(5, cell="gru", hidden=6, layers=2).eval()
    x = torch.randn(2, 5, 9, requires_grad=True)
    mask = torch.arange(9)[None, :] < torch.tensor([[9], [4]])
    out, _ = backbone(torch.where(mask[:, None, :], x, float("nan")), mask)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cpu_recurrence_under_bf16_autocast_equals_packed_sequences(cell, dtype):
    from bioseq.models.recurrent import RecurrentBackbone
    torch.manual_seed(0)
    backbone = RecurrentBackbone(5, cell=cell, hidden=6, layers=2).eval()
    x = torch.randn(3, 5, 12).to(dtype)  # one-hot input, or what a bf16 conv stack gives
    mask = torch.arange(12)[None, :] < torch.tensor([[12], [7], [3]])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = backbone(x, mask)
        expected = packed_reference(backbone, x, mask)
    if dtype == torch.bfloat16:
        assert out.dtype == expected.dtype == torch.bfloat16
    # the same result to bf16 rounding (the two paths sum in different orders); a real
    # error, such as an unreversed backward direction, is of order 0.1
    torch.testing.assert_close(out.float(), expected.float(), atol=2e-2, rtol=0)


@pytest.mark.parametrize("full_windows", [True, False])
def test_lstm_under_bf16_autocast_runs_on_any_cpu(full_windows, monkeypatch):
    """On a CPU without bf16 instructions (AVX2 only) torch's own nn.LSTM fails under
    autocast with fp32 input; the backbone runs its recurrence in fp32 there. Forced here
    so that machines with bf16 run that path too."""
    from bioseq.models import recurrent
    torch.manual_seed(0)
    backbone = recurrent.RecurrentBackbone(5, cell="lstm", hidden=6, layers=2).eval()
    x = torch.randn(3, 5, 12)
    lengths = [12, 12, 12] if full_windows else [12, 7, 3]
    mask = torch.arange(12)[None, :] < torch.tensor(lengths)[:, None]
    fp32, _ = backbone(x, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        backbone(x, mask)  # the machine's own path: must not raise
        monkeypatch.setattr(recurrent, "_autocast_without_bf16_cpu", lambda _: True)
        out, _ = backbone(x, mask)
        half, _ = backbone(x.bfloat16(), mask)
    torch.testing.assert_close(out, fp32, atol=1e-6, rtol=0)  # fp32 throughout
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), fp32, atol=2e-2, rtol=0)
