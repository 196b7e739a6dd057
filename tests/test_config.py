import dataclasses
from pathlib import Path

import pytest
import yaml

from bioseq.alphabets import ALPHABETS
from bioseq.config import (
    TASKS,
    DatasetConfig,
    ResourcesConfig,
    SplitConfig,
    TrainConfig,
    WorkflowConfig,
    check_workflow_config,
    dataset_config,
    load_yaml,
    model_config,
)
from bioseq.encoding import (
    AMBIGUOUS_POLICIES,
    ANCHORS,
    SOFT_MASKED_POLICIES,
    EncodingPolicy,
    LengthPolicy,
)
from bioseq.errors import BioseqError
from bioseq.models import REGISTRY

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
CONFIG = REPO / "config.yaml"
DATASET = {"fasta": "x.fa"}


def one_line_error(call, *args, **kwargs) -> str:
    with pytest.raises(BioseqError) as err:
        call(*args, **kwargs)
    message = str(err.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- unknown keys

@pytest.mark.parametrize(("entry", "where", "key"), [
    ({**DATASET, "lenght": {"length": 60}}, "dataset 'd'", "lenght"),
    ({**DATASET, "length": {"length": 60, "anchr": "left"}}, "dataset 'd'.length", "anchr"),
    ({**DATASET, "encoding": {"ambigous": "soft"}}, "dataset 'd'.encoding", "ambigous"),
    ({**DATASET, "split": {"test_frac": 0.2}}, "dataset 'd'.split", "test_frac"),
])
def test_unknown_dataset_keys_are_named(entry, where, key):
    message = one_line_error(dataset_config, "d", entry)
    assert message.startswith(f"{where}: unknown key(s) {key} (known: ")


@pytest.mark.parametrize(("entry", "where", "key"), [
    ({"architecture": "cnn", "parms": {}}, "model 'm'", "parms"),
    ({"architecture": "cnn", "train": {"epoch": 3}}, "model 'm'.train", "epoch"),
])
def test_unknown_model_keys_are_named(entry, where, key):
    message = one_line_error(model_config, "m", entry)
    assert message.startswith(f"{where}: unknown key(s) {key} (known: ")


def test_unknown_key_in_shared_training_defaults_is_named():
    message = one_line_error(model_config, "m", {"architecture": "cnn"}, {"learning_rate": 1})
    assert message.startswith("model 'm'.train: unknown key(s) learning_rate (known: ")


def test_known_keys_are_listed_with_the_unknown_one():
    message = one_line_error(dataset_config, "d", {**DATASET, "split": {"sed": 1}})
    assert message == ("dataset 'd'.split: unknown key(s) sed (known: field, seed, "
                       "test_fraction, val_fraction)")


def test_several_unknown_keys_are_all_named():
    message = one_line_error(dataset_config, "d", {**DATASET, "zeta": 1, "alpha": 2})
    assert message.startswith("dataset 'd': unknown key(s) alpha, zeta (known: ")


def workflow(**overrides):
    config = load_yaml(CONFIG)
    config.update(overrides)
    return config


@pytest.mark.parametrize(("overrides", "start"), [
    ({"reports": "x.html"}, "config: unknown key(s) reports"),
    ({"resources": {"cpus": 4}}, "config.resources: unknown key(s) cpus"),
    ({"training": {"epochz": 4}}, "config.training: unknown key(s) epochz"),
    ({"models": {"cnn": {"architecture": "cnn", "trian": {}}}}, "model 'cnn': unknown key(s) "
                                                                "trian"),
    ({"datasets": {"s": {"fasta": "x.fa", "encoding": {"soft": 1}}}},
     "dataset 's'.encoding: unknown key(s) soft"),
])
def test_workflow_config_rejects_unknown_keys_at_every_level(overrides, start):
    assert one_line_error(check_workflow_config, workflow(**overrides)).startswith(start)


# ---------------------------------------------------------------- values

def test_repo_config_passes():
    checked = check_workflow_config(load_yaml(CONFIG))
    assert isinstance(checked, WorkflowConfig)
    assert list(checked.datasets) == ["splice"]
    assert list(checked.models) == ["cnn", "bigru", "transformer"]
    assert checked.resources == ResourcesConfig(threads=1, gpu=1)
    assert checked.report == "results/report.html"


def test_repo_splice_dataset_is_typed():
    dataset = dataset_config("splice", load_yaml(CONFIG)["datasets"]["splice"])
    assert dataset.fasta == ("resources/splice/splice.fasta",)
    assert dataset.length == LengthPolicy(length=60, anchor="center", truncate=False)
    assert dataset.encoding == EncodingPolicy()
    assert dataset.split == SplitConfig(val_fraction=0.1, test_fraction=0.1, seed=0)
    assert dataset.inputs == ("resources/splice/splice.fasta",)


def test_model_train_overrides_the_shared_training_defaults():
    model = model_config("m", {"architecture": "cnn", "train": {"lr": 0.01}},
                         {"lr": 0.002, "epochs": 5})
    assert model.train == TrainConfig(lr=0.01, epochs=5)
    assert model.params == {}


def test_empty_workflow_sections_are_an_error():
    message = one_line_error(check_workflow_config, workflow(models={}))
    assert message == "config: 'datasets' and 'models' must each name at least one entry"


def test_nested_section_must_be_a_mapping():
    message = one_line_error(dataset_config, "d", {**DATASET, "length": 60})
    assert message == "dataset 'd'.length: expected a mapping, not 60"


@pytest.mark.parametrize(("entry", "message"), [
    ({"fasta": "x.fa", "class_fastas": {"a": "a.fa"}}, "give exactly one of 'fasta' or "
                                                       "'class_fastas'"),
    ({}, "give exactly one of 'fasta' or 'class_fastas'"),
    ({"fasta": "x.fa", "task": "ranking"}, "task must be one of"),
    ({"fasta": "x.fa", "task": "regression"}, "task regression needs 'label_columns'"),
    ({"fasta": "x.fa", "label_columns": ["y"]}, "'label_columns' needs 'labels_table'"),
    ({"class_fastas": {"a": "a.fa"}, "task": "regression", "label_columns": ["y"],
      "labels_table": "t.tsv"}, "'class_fastas' needs task binary or multiclass"),
    ({"fasta": "x.fa", "length": {"anchor": "middle"}}, "anchor must be one of"),
    ({"fasta": "x.fa", "encoding": {"ambiguous": "skip"}}, "ambiguous must be one of"),
])
def test_invalid_dataset_values(entry, message):
    assert message in one_line_error(dataset_config, "d", entry)


def test_paths_become_tuples():
    dataset = dataset_config("d", {"class_fastas": {"pos": "p.fa", "neg": ["n1.fa", "n2.fa"]},
                                   "classes": "neg"})
    assert dataset.class_fastas == {"pos": ("p.fa",), "neg": ("n1.fa", "n2.fa")}
    assert dataset.inputs == ("p.fa", "n1.fa", "n2.fa")
    assert dataset.classes == ("neg",)


def test_load_yaml_errors(tmp_path):
    assert "no such file" in one_line_error(load_yaml, tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("datasets: [unclosed\n")
    assert one_line_error(load_yaml, bad).startswith(f"{bad}: invalid YAML (")
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    assert one_line_error(load_yaml, listing) == f"{listing}: expected a mapping at the top level"


# ---------------------------------------------------------------- schema defaults

@pytest.fixture(scope="module")
def schema():
    return yaml.safe_load(SCHEMA.read_text())


def schema_defaults(properties: dict) -> dict:
    return {k: v["default"] for k, v in properties.items() if "default" in v}


def dataclass_defaults(cls) -> dict:
    return {f.name: f.default for f in dataclasses.fields(cls)
            if f.default is not dataclasses.MISSING}


def normalise(value):
    return list(value) if isinstance(value, tuple) else value


@pytest.mark.parametrize(("section", "cls"), [
    ("length", LengthPolicy), ("encoding", EncodingPolicy), ("split", SplitConfig),
])
def test_schema_dataset_section_defaults_equal_the_dataclasses(schema, section, cls):
    properties = schema["$defs"]["dataset"]["properties"][section]["properties"]
    assert set(properties) == {f.name for f in dataclasses.fields(cls)}
    assert schema_defaults(properties) == dataclass_defaults(cls)


def test_schema_train_defaults_equal_train_config(schema):
    properties = schema["$defs"]["train"]["properties"]
    assert set(properties) == {f.name for f in dataclasses.fields(TrainConfig)}
    assert schema_defaults(properties) == dataclass_defaults(TrainConfig)


def test_schema_resources_defaults_equal_resources_config(schema):
    properties = schema["properties"]["resources"]["properties"]
    assert schema_defaults(properties) == dataclass_defaults(ResourcesConfig)
    assert set(properties) == {f.name for f in dataclasses.fields(ResourcesConfig)}


def test_schema_dataset_defaults_equal_dataset_config(schema):
    properties = schema["$defs"]["dataset"]["properties"]
    assert set(properties) == {f.name for f in dataclasses.fields(DatasetConfig)} - {"name"}
    defaults = dataclass_defaults(DatasetConfig)
    documented = schema_defaults(properties)
    for key, value in documented.items():
        if key in ("length", "encoding", "split"):  # sections: their own fields are compared
            assert value == {}
            assert defaults[key] == type(defaults[key])()
        else:
            assert normalise(defaults[key]) == value, key
    # fields without a documented default are optional inputs that default to "absent"
    for key in set(defaults) - set(documented):
        assert not defaults[key], key


def test_schema_report_default_equals_workflow_config(schema):
    assert schema["properties"]["report"]["default"] == dataclass_defaults(WorkflowConfig)["report"]


def test_schema_architectures_are_the_registry(schema):
    assert sorted(schema["$defs"]["model"]["properties"]["architecture"]["enum"]) == \
        sorted(REGISTRY)


def test_schema_enums_match_the_policies(schema):
    dataset = schema["$defs"]["dataset"]["properties"]
    assert tuple(dataset["length"]["properties"]["anchor"]["enum"]) == ANCHORS
    assert tuple(dataset["encoding"]["properties"]["ambiguous"]["enum"]) == AMBIGUOUS_POLICIES
    assert tuple(dataset["encoding"]["properties"]["soft_masked"]["enum"]) == SOFT_MASKED_POLICIES
    assert tuple(dataset["task"]["enum"]) == TASKS
    assert sorted(dataset["alphabet"]["enum"]) == sorted(ALPHABETS)


def test_unknown_architecture_is_refused_before_training():
    with pytest.raises(BioseqError, match=r"model 'm': unknown architecture 'resnet'"):
        model_config("m", {"architecture": "resnet"})


@pytest.mark.parametrize("train, message", [
    ({"schedule": "linear"}, "schedule must be one of"),
    ({"monitor": "acc"}, "monitor must be one of"),
])
def test_bad_training_values_are_refused_before_training(train, message):
    with pytest.raises(BioseqError, match=message):
        model_config("m", {"architecture": "cnn", "train": train})


def test_empty_yaml_section_means_defaults():
    entry = yaml.safe_load("fasta: x.fa\nlength:\nencoding:\n")
    dataset = dataset_config("d", entry)
    assert dataset.length == LengthPolicy() and dataset.encoding == EncodingPolicy()
