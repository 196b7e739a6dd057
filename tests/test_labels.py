import numpy as np
import pytest

from bioseq.config import dataset_config
from bioseq.errors import BioseqError
from bioseq.labels import LabelCollector


def collect(config: dict, ids, descriptions, *, chunks=1, class_name=None):
    """Run a LabelCollector over `ids` split into `chunks` pieces."""
    collector = LabelCollector(dataset_config("t", config))
    for part in np.array_split(np.arange(len(ids)), chunks):
        collector.add([ids[i] for i in part], [descriptions[i] for i in part],
                      source="in.fa", class_name=class_name)
    return collector.finish()


def table(tmp_path, text, name="labels.tsv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# ---------------------------------------------------------------- FASTA headers

def test_header_labels_are_sorted_class_codes():
    labels = collect({"fasta": "in.fa"}, ["a", "b", "c", "d"],
                     ["label=N", "label=EI", "x=1 label=IE", "label=N"], chunks=2)
    assert labels.names == ("EI", "IE", "N")
    assert labels.values.tolist() == [2, 0, 1, 2]
    assert labels.values.dtype == np.int64
    assert labels.split is None


def test_classes_option_sets_the_order():
    labels = collect({"fasta": "in.fa", "classes": ["N", "IE", "EI"]}, ["a", "b", "c"],
                     ["label=N", "label=EI", "label=IE"])
    assert labels.names == ("N", "IE", "EI")
    assert labels.values.tolist() == [0, 2, 1]


def test_label_outside_classes_is_an_error():
    with pytest.raises(BioseqError, match="label\\(s\\) 'IE' not among classes \\('EI', 'N'\\)"):
        collect({"fasta": "in.fa", "classes": ["EI", "N"]}, ["a", "b"], ["label=EI", "label=IE"])


def test_missing_label_field_names_the_record():
    with pytest.raises(BioseqError) as err:
        collect({"fasta": "in.fa"}, ["a", "b"], ["label=EI", "class=EI"])
    assert str(err.value) == "in.fa: record 'b': no label field 'label=' in the header"


def test_empty_label_value_is_missing():
    with pytest.raises(BioseqError, match="record 'a': no label field"):
        collect({"fasta": "in.fa"}, ["a"], ["label="])


def test_label_field_must_be_a_whole_key():
    with pytest.raises(BioseqError, match="record 'a': no label field 'label='"):
        collect({"fasta": "in.fa"}, ["a"], ["mylabel=EI"])


def test_custom_label_field():
    labels = collect({"fasta": "in.fa", "label_field": "class"}, ["a", "b"],
                     ["label=x class=pos", "class=neg"])
    assert labels.names == ("neg", "pos")
    assert labels.values.tolist() == [1, 0]


def test_binary_needs_exactly_two_classes():
    with pytest.raises(BioseqError, match="task binary needs exactly 2 classes, found 3"):
        collect({"fasta": "in.fa", "task": "binary"}, ["a", "b", "c"],
                ["label=x", "label=y", "label=z"])


def test_split_field_in_headers():
    labels = collect({"fasta": "in.fa"}, ["a", "b", "c", "d"],
                     ["label=x split=train", "label=y split=TEST", "label=x split=validation",
                      "label=y split=val"])
    assert labels.split.tolist() == [0, 2, 1, 1]
    assert labels.split.dtype == np.int8


def test_split_for_some_records_only_is_an_error():
    with pytest.raises(BioseqError, match="the split field 'split' is given for some records only"):
        collect({"fasta": "in.fa"}, ["a", "b"], ["label=x split=train", "label=y"])


def test_unknown_split_value_names_the_record():
    with pytest.raises(BioseqError) as err:
        collect({"fasta": "in.fa"}, ["a", "b"], ["label=x split=train", "label=y split=holdout"])
    assert str(err.value) == "in.fa: record 'b': unknown split 'holdout' (use train, val or test)"


def test_class_name_labels_every_record_of_a_file():
    collector = LabelCollector(dataset_config("t", {"class_fastas": {"pos": "p.fa",
                                                                      "neg": "n.fa"}}))
    collector.add(["p1", "p2"], ["", ""], source="p.fa", class_name="pos")
    collector.add(["n1"], ["label=pos"], source="n.fa", class_name="neg")
    labels = collector.finish()
    assert labels.names == ("neg", "pos")
    assert labels.values.tolist() == [1, 1, 0]


# ---------------------------------------------------------------- label tables

def test_table_labels_follow_the_ids_not_the_row_order(tmp_path):
    path = table(tmp_path, "id\tlabel\nb\tIE\na\tEI\nc\tN\n")
    labels = collect({"fasta": "in.fa", "labels_table": path}, ["a", "b", "c"], ["", "", ""])
    assert labels.names == ("EI", "IE", "N")
    assert labels.values.tolist() == [0, 1, 2]
    assert labels.split is None


def test_table_missing_id_names_the_id(tmp_path):
    path = table(tmp_path, "id\tlabel\na\tEI\nb\tN\n")
    with pytest.raises(BioseqError) as err:
        collect({"fasta": "in.fa", "labels_table": path}, ["a", "zz9", "b"], ["", "", ""])
    assert str(err.value) == (f"{path}: record 'zz9': no label for this ID "
                              "(1 IDs in this chunk lack one)")


def test_table_unknown_label_column(tmp_path):
    path = table(tmp_path, "id\tclass\na\tEI\n")
    with pytest.raises(BioseqError) as err:
        collect({"fasta": "in.fa", "labels_table": path}, ["a"], [""])
    assert str(err.value) == f"{path}: unknown column(s) 'label'; the table has 'id', 'class'"


def test_table_unknown_id_column(tmp_path):
    path = table(tmp_path, "name\tlabel\na\tEI\n")
    with pytest.raises(BioseqError, match="unknown column\\(s\\) 'id'"):
        collect({"fasta": "in.fa", "labels_table": path}, ["a"], [""])


def test_table_custom_columns_and_csv(tmp_path):
    path = table(tmp_path, "seq_name,kind\na,pos\nb,neg\n", name="labels.csv")
    labels = collect({"fasta": "in.fa", "labels_table": path, "id_column": "seq_name",
                      "label_field": "kind", "task": "binary"}, ["a", "b"], ["", ""])
    assert labels.names == ("neg", "pos")
    assert labels.values.tolist() == [1, 0]


def test_table_duplicate_id_is_an_error(tmp_path):
    path = table(tmp_path, "id\tlabel\na\tEI\na\tN\n")
    with pytest.raises(BioseqError, match="record 'a': duplicate ID in the labels table"):
        collect({"fasta": "in.fa", "labels_table": path}, ["a"], [""])


def test_table_empty_label_names_the_record(tmp_path):
    path = table(tmp_path, "id\tlabel\na\tEI\nb\t\n")
    with pytest.raises(BioseqError, match="record 'b': empty label"):
        collect({"fasta": "in.fa", "labels_table": path}, ["a", "b"], ["", ""])


def test_table_split_column_wins_over_headers(tmp_path):
    path = table(tmp_path, "id\tlabel\tsplit\na\tx\ttest\nb\ty\ttrain\n")
    labels = collect({"fasta": "in.fa", "labels_table": path}, ["a", "b"],
                     ["split=train", "split=test"])
    assert labels.split.tolist() == [2, 0]


def test_table_regression_targets(tmp_path):
    path = table(tmp_path, "id\tkd\thalf_life\na\t1.5\t-2\nb\t0\t3e1\n")
    labels = collect({"fasta": "in.fa", "labels_table": path, "task": "regression",
                      "label_columns": ["kd", "half_life"]}, ["b", "a"], ["", ""])
    assert labels.names == ("kd", "half_life")
    assert labels.values.dtype == np.float32
    assert labels.values.tolist() == [[0.0, 30.0], [1.5, -2.0]]


def test_table_regression_value_must_be_numeric(tmp_path):
    path = table(tmp_path, "id\tkd\na\t1.5\nb\thigh\n")
    with pytest.raises(BioseqError, match="record 'b': label value is not a number"):
        collect({"fasta": "in.fa", "labels_table": path, "task": "regression",
                 "label_columns": ["kd"]}, ["a", "b"], ["", ""])


def test_table_multilabel_needs_zero_or_one(tmp_path):
    path = table(tmp_path, "id\tcpg\ttata\na\t1\t0\nb\t2\t1\n")
    with pytest.raises(BioseqError, match="multilabel columns must hold 0 or 1"):
        collect({"fasta": "in.fa", "labels_table": path, "task": "multilabel",
                 "label_columns": ["cpg", "tata"]}, ["a", "b"], ["", ""])


def test_table_multilabel_rows(tmp_path):
    path = table(tmp_path, "id\tcpg\ttata\na\t1\t0\nb\t1\t1\n")
    labels = collect({"fasta": "in.fa", "labels_table": path, "task": "multilabel",
                      "label_columns": ["cpg", "tata"]}, ["a", "b"], ["", ""])
    assert labels.values.tolist() == [[1.0, 0.0], [1.0, 1.0]]


def test_a_repeated_field_cannot_hide_a_missing_one():
    """Record 1 has the key twice, record 2 none: counts match, but record 2 is unlabelled."""
    with pytest.raises(BioseqError, match="record 'b'"):
        collect({"fasta": "in.fa"}, ["a", "b", "c"], ["label=A label=B", "note=none", "label=B"])


def test_first_of_a_repeated_field_wins():
    labels = collect({"fasta": "in.fa"}, ["a", "b"], ["label=A label=B", "x=1 label=B"])
    assert labels.names == ("A", "B")
    assert labels.values.tolist() == [0, 1]


def test_headers_without_description_are_unlabelled():
    with pytest.raises(BioseqError, match="record 'b'"):
        collect({"fasta": "in.fa"}, ["a", "b"], ["label=A", None])
