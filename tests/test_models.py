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
    with pytest.raises(BioseqError, match="channels, kernel_sizes and pool need one entry per"):
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
