"""bioseq: deep learning on DNA, RNA and protein sequences."""

__version__ = "0.1.0"

from .alphabets import ALPHABETS, get_alphabet  # noqa: E402
from .checkpoint import load_model, save_checkpoint  # noqa: E402
from .config import DatasetConfig, ModelConfig, TrainConfig  # noqa: E402
from .encoding import EncodingPolicy, LengthPolicy, SequenceEncoder  # noqa: E402
from .errors import BioseqError  # noqa: E402
from .genome import Genome  # noqa: E402
from .models import REGISTRY, build_model  # noqa: E402
from .mutagenesis import saturation_mutagenesis  # noqa: E402
from .predict import Predictor  # noqa: E402
from .store import EncodedStore, encode_dataset  # noqa: E402
from .training import fit  # noqa: E402
from .variants import VariantOptions, score_vcf  # noqa: E402

__all__ = [
    "ALPHABETS", "BioseqError", "DatasetConfig", "EncodedStore", "EncodingPolicy", "Genome",
    "LengthPolicy", "ModelConfig", "Predictor", "REGISTRY", "SequenceEncoder", "TrainConfig",
    "VariantOptions", "build_model", "encode_dataset", "fit", "get_alphabet", "load_model",
    "save_checkpoint", "saturation_mutagenesis", "score_vcf",
]
