import dataclasses
from pathlib import Path

import pytest
import yaml

from bioseq.alphabets import ALPHABETS
from bioseq.config import (
    TASKS,
    TRAIN_KEYS,
    BaselineConfig,
    CrossValidationConfig,
    DatasetConfig,
    ResourcesConfig,
    SplitConfig,
    TrainConfig,
    WorkflowConfig,
    check_workflow_config,
    dataset_config,
    dataset_models,
    expand_models,
    load_yaml,
    model_config,
    without_unset_later_keys,
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
    assert message == ("dataset 'd'.split: unknown key(s) sed (known: field, identity, kmer, "
                       "method, seed, test_fraction, val_fraction, validation_field)")


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
    assert list(checked.datasets) == ["splice", "secondary_structure"]
    assert list(checked.models) == ["cnn", "bigru", "transformer", "residue_cnn",
                                    "residue_transformer"]
    assert checked.resources == ResourcesConfig(threads=1, gpu=1)
    assert checked.report == "results/report.html"


def test_cluster_resources_are_checked():
    resources = {"partition": "cpu", "gpu_partition": "gpu", "account": "lab_1",
                 "gpu_model": "a100", "gpu": 2, "predict_gpu": 0}
    checked = check_workflow_config(workflow(resources=resources))
    assert checked.resources == ResourcesConfig(**resources)


@pytest.mark.parametrize(("resources", "message"), [
    ({"gpu": -1}, "config.resources: gpu must be an integer >= 0, not -1"),
    ({"predict_gpu": 1.5}, "config.resources: predict_gpu must be an integer >= 0, not 1.5"),
    ({"partition": "gpu a100"}, "config.resources: partition must be a name of letters, "
                                "digits, '_', '.' or '-', not 'gpu a100'"),
    ({"account": 1234}, "config.resources: account must be a name of letters, digits, '_', "
                        "'.' or '-', not 1234"),
])
def test_bad_cluster_resources_are_one_line(resources, message):
    assert one_line_error(check_workflow_config, workflow(resources=resources)) == message


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
    ({"fasta": "x.fa", "class_fastas": {"a": "a.fa"}}, "give exactly one of 'fasta', "
                                                       "'class_fastas'"),
    ({"bed": "x.bed", "length": {"length": 100}}, "BED intervals need 'reference'"),
    ({"bed": "x.bed", "reference": "g.fa"}, "BED intervals become fixed windows"),
    ({"bed": "x.bed", "reference": "g.fa", "length": {"length": 100}},
     "labels of 'bed' intervals come from 'bed_label_column'"),
    ({"fasta": "x.fa", "reference": "g.fa"}, "'reference' and 'bed_label_column' go with"),
    ({"bed": "x.bed", "reference": "g.fa", "length": {"length": 100},
      "bed_label_column": 2}, "bed_label_column must be an integer >= 4"),
    ({}, "give exactly one of 'fasta', 'class_fastas', 'bed' or 'class_beds'"),
    ({"fasta": "x.fa", "task": "ranking"}, "task must be one of"),
    ({"fasta": "x.fa", "task": "regression"}, "task regression needs 'label_columns'"),
    ({"fasta": "x.fa", "label_columns": ["y"]}, "'label_columns' needs 'labels_table'"),
    ({"class_fastas": {"a": "a.fa"}, "task": "regression", "label_columns": ["y"],
      "labels_table": "t.tsv"}, "one file per class needs task binary or multiclass"),
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
    ("cv", CrossValidationConfig), ("baseline", BaselineConfig),
])
def test_schema_dataset_section_defaults_equal_the_dataclasses(schema, section, cls):
    properties = schema["$defs"]["dataset"]["properties"][section]["properties"]
    assert set(properties) == {f.name for f in dataclasses.fields(cls)}
    assert schema_defaults(properties) == {k: normalise(v)
                                           for k, v in dataclass_defaults(cls).items()}


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
        if key in ("length", "encoding", "split", "cv", "baseline"):  # compared field by field
            assert value == {}
            assert defaults[key] == type(defaults[key])()
        else:
            assert normalise(defaults[key]) == value, key
    # fields without a documented default are optional inputs that default to "absent"
    for key in set(defaults) - set(documented):
        assert not defaults[key], key


def test_schema_report_default_equals_workflow_config(schema):
    assert schema["properties"]["report"]["default"] == dataclass_defaults(WorkflowConfig)["report"]


def test_schema_model_train_keys_are_the_training_keys(schema):
    names = schema["$defs"]["model"]["properties"]["train"]["propertyNames"]["enum"]
    assert sorted(names) == sorted(TRAIN_KEYS)


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
    ({"ema_decay": 1.0}, r"ema_decay must be a number > 0 and <= 0.99999, not 1.0"),
    ({"ema_decay": 0}, r"ema_decay must be a number > 0"),
    ({"precision": "fp16"}, r"precision must be one of None, bf16, fp32, not 'fp16'"),
    ({"label_smoothing": 0.6}, r"label_smoothing must be a number > 0 and <= 0.5, not 0.6"),
    ({"label_smoothing": 0}, r"label_smoothing must be a number > 0"),
])
def test_bad_training_values_are_refused_before_training(train, message):
    with pytest.raises(BioseqError, match=message):
        model_config("m", {"architecture": "cnn", "train": train})


def test_empty_yaml_section_means_defaults():
    entry = yaml.safe_load("fasta: x.fa\nlength:\nencoding:\n")
    dataset = dataset_config("d", entry)
    assert dataset.length == LengthPolicy() and dataset.encoding == EncodingPolicy()


# ---------------------------------------------------------------- per-residue data sets
RESIDUE = {"alphabet": "protein", "task": "per_residue", "fasta": "s.fa",
           "residue_labels": "l.fa"}


def test_per_residue_dataset_reads_a_fasta_triple_or_a_table():
    config = dataset_config("ss", {**RESIDUE, "residue_mask": "m.fa",
                                   "length": {"max_length": 500, "overlap": 50}})
    assert config.input_files == ("s.fa", "l.fa", "m.fa")
    assert config.length.window_overlap == 50
    table = dataset_config("cb", {"alphabet": "protein", "task": "per_residue",
                                  "residue_table": "cb513.tsv", "label_field": "dssp3"})
    assert table.inputs == ("cb513.tsv",)


@pytest.mark.parametrize(("entry", "message"), [
    ({**RESIDUE, "residue_labels": None}, "with 'residue_labels' (label FASTA) beside it"),
    ({**RESIDUE, "residue_table": "t.tsv"}, "per_residue needs 'fasta'"),
    ({**RESIDUE, "length": {"length": 100}}, "never cut to windows"),
    ({**RESIDUE, "length": {"max_length": 100, "truncate": True}}, "never cut"),
    ({**RESIDUE, "labels_table": "x.tsv"}, "'labels_table' does not apply"),
    ({"fasta": "a.fa", "residue_labels": "l.fa"}, "residue_labels need task per_residue"),
    ({**RESIDUE, "length": {"max_length": 100, "overlap": 100}}, "overlap must be"),
    ({**RESIDUE, "split": {"method": "cluster"}}, "split method must be one of"),
    ({**RESIDUE, "split": {"method": "homology", "identity": 0}}, "identity must be"),
    ({**RESIDUE, "test_sets": {"cb": {"residue_tabel": "x"}}}, "unknown key(s) residue_tabel"),
])
def test_bad_per_residue_settings_are_one_clear_line(entry, message):
    with pytest.raises(BioseqError) as error:
        dataset_config("ss", entry)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_test_set_inherits_encoding_but_not_inputs():
    config = dataset_config("ss", {**RESIDUE, "encoding": {"ambiguous": "zeros"},
                                   "test_sets": {"cb513": {"residue_table": "cb.tsv",
                                                           "label_field": "dssp3",
                                                           "mask_column": "disorder_mask"}}})
    test = config.test_set("cb513")
    assert test.inputs == ("cb.tsv",)
    assert test.residue_labels is None and test.mask_column == "disorder_mask"
    assert test.encoding == config.encoding and test.task == "per_residue"
    assert test.test_sets == {}


def test_dataset_models_must_exist_and_select_the_runs():
    from bioseq.config import dataset_models

    models = {"a": {"architecture": "cnn", "params": {"pool": 1}},
              "b": {"architecture": "bigru"}}
    base = {"fasta": "x.fa", "length": {"length": 20}}
    with pytest.raises(BioseqError, match="no model named 'c'"):
        check_workflow_config({"datasets": {"d": {**base, "models": ["c"]}}, "models": models})
    dataset = dataset_config("d", {**base, "models": ["b"]})
    assert dataset_models(dataset, models) == ["b"]
    assert dataset_models(dataset_config("d", base), models) == ["a", "b"]


def test_per_residue_models_are_built_with_position_outputs():
    models = {"pooled": {"architecture": "cnn", "params": {"pool": 2}}}
    with pytest.raises(BioseqError, match="model 'pooled' on dataset 'ss'.*set pool: 1"):
        check_workflow_config({"datasets": {"ss": RESIDUE}, "models": models})


@pytest.mark.parametrize(("entry", "message"), [
    ({**RESIDUE, "mask_column": "m"}, "'mask_column' is for 'residue_table'"),
    ({"alphabet": "protein", "task": "per_residue", "residue_table": "t.tsv",
      "split": {"validation_field": "VALIDATION"}}, "validation_field reads FASTA headers"),
    ({**RESIDUE, "classes": ["H", "EE"]}, "single letters, not 'EE'"),
    ({"fasta": "a.fa", "length": {"max_length": 50, "overlap": 5}}, "overlap is for per_residue"),
    ({"fasta": "a.fa", "split": {"validation_field": "V"}}, "validation_field is for per_residue"),
])
def test_per_residue_keys_in_the_wrong_place(entry, message):
    with pytest.raises(BioseqError, match=message):
        dataset_config("d", entry)


def test_test_set_names_default_to_the_datasets():
    config = dataset_config("d", {"fasta": "a.fa", "labels_table": "t.tsv", "id_column": "name",
                                  "label_field": "class",
                                  "test_sets": {"ext": {"fasta": "b.fa", "labels_table": "u.tsv"},
                                                "own": {"fasta": "c.fa", "label_field": "y"}}})
    assert (config.test_set("ext").id_column, config.test_set("ext").label_field) == (
        "name", "class")
    assert config.test_set("own").label_field == "y"
    assert config.test_set("own").labels_table is None  # inputs are never inherited


def test_model_names_that_collide_with_result_folders_are_refused():
    with pytest.raises(BioseqError, match="model name 'encoded' is taken"):
        check_workflow_config({"datasets": {"d": {"fasta": "a.fa", "length": {"length": 9}}},
                               "models": {"encoded": {"architecture": "bigru"}}})


# ---------------------------------------------------------------- cross-validation, grids

@pytest.mark.parametrize(("entry", "message"), [
    ({**DATASET, "cv": {"folds": 1}}, "cv.folds must be an integer >= 2"),
    ({**DATASET, "cv": {"folds": 5, "run": 6}}, "cv.run must be an integer >= 1 and <= 5"),
    ({**DATASET, "cv": {"folds": 5, "select": "q3"}}, "cv.select 'q3' does not apply"),
    ({**DATASET, "cv": {"folds": 5, "select": "val_loss"}}, "cv.select needs a metric"),
    ({**DATASET, "cv": {"folds": 5, "val_fraction": 0.7}}, "cv.val_fraction must be"),
    ({**DATASET, "cv": {"fold": 5}}, "dataset 'd'.cv: unknown key(s) fold"),
    ({**DATASET, "baseline": {"kmer": 9}}, "baseline.kmer must be an integer >= 0 and <= 8"),
    ({**DATASET, "baseline": {"kmer": 3, "C": ["x"]}}, "baseline.C must be a list of numbers"),
    ({**DATASET, "baseline": {"kmer": 3, "C": [0]}}, "baseline.C must be a number > 0"),
    ({**DATASET, "task": "regression", "labels_table": "t.tsv", "label_columns": ["y"],
      "baseline": {"kmer": 3}}, "the k-mer baseline classifies; a regression task has none"),
    ({**DATASET, "alphabet": "protein", "baseline": {"kmer": 6}},
     "baseline.kmer 6 makes more than 4 M k-mer features for protein"),
    ({**DATASET, "cv": {"folds": 5}, "test_sets": {"t": {"fasta": "t.fa"}}},
     "a cross-validated data set trains one model per fold"),
    ({**DATASET, "cv": {"folds": 5}, "predict": "new.fa"},
     "a cross-validated data set trains one model per fold"),
    ({**DATASET, "record_ids": "random"}, "record_ids must be header or numbered"),
    ({**DATASET, "record_ids": "numbered", "labels_table": "t.tsv"},
     "record_ids numbered is for FASTA inputs"),
])
def test_invalid_cross_validation_and_baseline_values(entry, message):
    assert message in one_line_error(dataset_config, "d", entry)


def test_cross_validation_is_for_per_sequence_tasks():
    entry = {"alphabet": "protein", "task": "per_residue", "fasta": "s.fa",
             "residue_labels": "l.fa", "cv": {"folds": 5}}
    assert "cv is for per-sequence tasks" in one_line_error(dataset_config, "d", entry)
    entry = {**entry, "cv": {}, "baseline": {"kmer": 2}}
    assert "give baseline: {kmer: 1, window: N}" in one_line_error(dataset_config, "d", entry)


def test_cv_select_defaults_to_the_task_metric():
    assert dataset_config("d", {**DATASET, "task": "binary"}).cv_select == "mcc"
    assert dataset_config("d", DATASET).cv_select == "accuracy"
    assert dataset_config("d", {**DATASET, "cv": {"folds": 3, "select": "auroc"}}).cv_select \
        == "auroc"


def test_grid_expands_into_one_model_per_combination():
    grid = expand_models({
        "cnn": {"architecture": "cnn", "params": {"channels": [8], "dropout": 0.1},
                "train": {"epochs": 3}, "grid": {"dropout": [0.2, 0.4], "lr": [1e-3, 3e-3]}},
        "gru": {"architecture": "bigru"}})
    assert list(grid.entries) == ["cnn.g1", "cnn.g2", "cnn.g3", "cnn.g4", "gru"]
    assert grid.entries["cnn.g2"] == {"architecture": "cnn",
                                      "params": {"channels": [8], "dropout": 0.2},
                                      "train": {"epochs": 3, "lr": 3e-3}}
    assert grid.settings["cnn.g3"] == {"dropout": 0.4, "lr": 1e-3}
    assert grid.family == {"cnn.g1": "cnn", "cnn.g2": "cnn", "cnn.g3": "cnn",
                           "cnn.g4": "cnn", "gru": "gru"}
    dataset = dataset_config("d", {**DATASET, "models": ["cnn"]})
    models = {"cnn": {"architecture": "cnn", "grid": {"dropout": [0.1, 0.2]}},
              "gru": {"architecture": "bigru"}}
    assert dataset_models(dataset, models) == ["cnn.g1", "cnn.g2"]


@pytest.mark.parametrize(("grid", "message"), [
    ({"dropout": []}, "model 'cnn'.grid: expected a mapping of key -> non-empty list"),
    ({"dropout": 0.2}, "model 'cnn'.grid: expected a mapping of key -> non-empty list"),
    ({"a": list(range(17)), "b": list(range(16))}, "272 combinations; at most 256"),
])
def test_bad_grids_are_one_line(grid, message):
    models = {"cnn": {"architecture": "cnn", "grid": grid}}
    assert message in one_line_error(expand_models, models)


def test_grid_values_are_checked_like_the_model_they_make():
    models = {"cnn": {"architecture": "cnn", "params": {"channels": [8], "kernel_sizes": [5],
                                                        "pool": [1]},
                      "grid": {"kernel_sizes": [[5], [5, 3]]}}}
    config = workflow(models=models)
    config["datasets"] = {"s": {**DATASET, "length": {"length": 60}}}
    del config["variant_effect"]
    message = one_line_error(check_workflow_config, config)
    assert message.startswith("model 'cnn.g2' on dataset 's'")


def test_variant_effects_need_a_single_split_model():
    config = workflow()
    config["datasets"]["splice"]["cv"] = {"folds": 5}
    message = one_line_error(check_workflow_config, config)
    assert "'splice' is cross-validated" in message


def test_grid_member_names_must_be_free():
    models = {"cnn": {"architecture": "cnn", "grid": {"dropout": [0.1, 0.2]}},
              "cnn.g2": {"architecture": "cnn"}}
    assert "member name 'cnn.g2' is also a model's name" in one_line_error(expand_models,
                                                                          models)


@pytest.mark.parametrize("name", ["ensemble", "best", "kmer_baseline", "cv", "baselines"])
def test_names_of_summary_rows_and_folders_are_reserved(name):
    config = workflow(models={name: {"architecture": "cnn"}})
    assert f"model name '{name}' is taken" in one_line_error(check_workflow_config, config)


def test_unset_later_training_keys_stay_out_of_rule_params():
    defaults = vars(TrainConfig())
    assert "ema_decay" in defaults and "ema_decay" not in without_unset_later_keys(defaults)
    assert without_unset_later_keys({**defaults, "ema_decay": 0.99})["ema_decay"] == 0.99
    assert "precision" in defaults and "precision" not in without_unset_later_keys(defaults)
    assert without_unset_later_keys({"precision": "bf16"}) == {"precision": "bf16"}
    assert "label_smoothing" not in without_unset_later_keys(defaults)
    assert without_unset_later_keys({"label_smoothing": 0.1}) == {"label_smoothing": 0.1}
    assert without_unset_later_keys({"grad_clip": None}) == {"grad_clip": None}
    # a model's `train: {precision: null}` under `training: {precision: bf16}` is kept
    assert without_unset_later_keys({"precision": None}, {"precision": "bf16"}) == \
        {"precision": None}
    assert without_unset_later_keys({"precision": None}, {"precision": None}) == {}
