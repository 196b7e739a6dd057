"""Bad input through the real command line: one line naming file and record, exit status 2,
no partial output, and the user's files untouched."""

from __future__ import annotations

import gzip
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bioseq.cli import main

GOOD = (">a label=x\nACGTACGTAC\n>b label=x\nACGTACGTAA\n"
        ">c label=y\nTTGTACGTAC\n>d label=y\nGCGTACGTAC\n")


def _run(tmp_path: Path, fasta_text: str | bytes | None, dataset: dict | None = None,
         capsys=None, extra_files: dict[str, str] | None = None) -> tuple[int, str, Path]:
    fasta = tmp_path / "in.fa"
    if fasta_text is not None:
        fasta.write_bytes(fasta_text if isinstance(fasta_text, bytes) else fasta_text.encode())
    for name, text in (extra_files or {}).items():
        (tmp_path / name).write_text(text)
    entry = {"fasta": str(fasta), "length": {"length": 10}, **(dataset or {})}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"datasets": {"demo": entry}}))
    out = tmp_path / "store"
    code = main(["encode", "--config", str(config), "--dataset", "demo", "--out", str(out)])
    return code, capsys.readouterr().err, out


def _assert_one_line_error(code: int, err: str, out: Path, *needles: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2
    assert len(lines) == 1, err
    assert lines[0].startswith("bioseq: error: ")
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert not out.exists()
    assert not list(out.parent.glob(".store.tmp-*")), "temporary output left behind"


def test_good_input_encodes(tmp_path, capsys):
    code, err, out = _run(tmp_path, GOOD, capsys=capsys)
    assert code == 0, err
    assert (out / "tokens.npy").is_file() and (out / "meta.json").is_file()


def test_empty_file(tmp_path, capsys):
    _assert_one_line_error(*_run(tmp_path, "", capsys=capsys), "in.fa", "empty file")


def test_not_a_fasta(tmp_path, capsys):
    code, err, out = _run(tmp_path, "@read1\nACGT\n+\nIIII\n", capsys=capsys)
    _assert_one_line_error(code, err, out, "in.fa", "not a FASTA", "'@'")


def test_missing_file(tmp_path, capsys):
    _assert_one_line_error(*_run(tmp_path, None, capsys=capsys), "in.fa", "no such file")


def test_truncated_gzip(tmp_path, capsys):
    data = gzip.compress(GOOD.encode())[:-12]
    _assert_one_line_error(*_run(tmp_path, data, capsys=capsys), "in.fa")


def test_duplicate_id_with_other_sequence(tmp_path, capsys):
    text = GOOD + ">a label=x\nTTTTTTTTTT\n"
    _assert_one_line_error(*_run(tmp_path, text, capsys=capsys), "in.fa", "record 'a'",
                           "duplicate ID")


def test_duplicate_id_exact_copy_is_dropped_not_fatal(tmp_path, capsys):
    code, err, out = _run(tmp_path, GOOD + ">a label=x\nACGTACGTAC\n", capsys=capsys)
    assert code == 0, err
    assert (out / "dropped.tsv").read_text().splitlines()[1] == "a\tduplicate\ta"


def test_illegal_character(tmp_path, capsys):
    text = GOOD + ">e label=y\nACGTJCGTAC\n"
    _assert_one_line_error(*_run(tmp_path, text, capsys=capsys), "in.fa", "record 'e'",
                           "illegal character 'J'", "position 5")


def test_ambiguity_code_under_error_policy(tmp_path, capsys):
    text = GOOD + ">e label=y\nACGTNCGTAC\n"
    code, err, out = _run(tmp_path, text, {"encoding": {"ambiguous": "error"}}, capsys=capsys)
    _assert_one_line_error(code, err, out, "in.fa", "record 'e'", "'N'")


def test_zero_length_sequence(tmp_path, capsys):
    text = GOOD + ">e label=y\n>f label=y\nACGT\n"
    _assert_one_line_error(*_run(tmp_path, text, capsys=capsys), "in.fa", "record 'e'",
                           "empty sequence")


def test_too_long_without_truncation(tmp_path, capsys):
    text = GOOD + ">long label=y\n" + "A" * 11 + "\n"
    _assert_one_line_error(*_run(tmp_path, text, capsys=capsys), "in.fa", "record 'long'",
                           "length 11", "maximum of 10")


def test_missing_header_label(tmp_path, capsys):
    text = GOOD + ">nolabel\nACGTACGTTT\n"
    _assert_one_line_error(*_run(tmp_path, text, capsys=capsys), "in.fa", "record 'nolabel'",
                           "label")


def test_labels_missing_for_some_ids(tmp_path, capsys):
    table = "id\tclass\na\tx\nb\tx\nc\ty\n"  # no row for d
    code, err, out = _run(tmp_path, GOOD, {"labels_table": str(tmp_path / "labels.tsv"),
                                           "label_field": "class"},
                          capsys=capsys, extra_files={"labels.tsv": table})
    _assert_one_line_error(code, err, out, "labels.tsv", "record 'd'", "no label")


def test_unknown_label_column(tmp_path, capsys):
    table = "id\tclass\na\tx\nb\tx\nc\ty\nd\ty\n"
    code, err, out = _run(tmp_path, GOOD, {"labels_table": str(tmp_path / "labels.tsv"),
                                           "label_field": "kind"},
                          capsys=capsys, extra_files={"labels.tsv": table})
    _assert_one_line_error(code, err, out, "labels.tsv", "'kind'", "unknown column")


def test_class_with_one_example(tmp_path, capsys):
    text = GOOD + ">e label=z\nACGTACGGGG\n"
    _assert_one_line_error(*_run(tmp_path, text, capsys=capsys), "class 'z'", "1 example")


def test_unknown_config_key(tmp_path, capsys):
    code, err, out = _run(tmp_path, GOOD, {"lenght": 10}, capsys=capsys)
    _assert_one_line_error(code, err, out, "dataset 'demo'", "unknown key(s) lenght")


def test_unknown_nested_config_key(tmp_path, capsys):
    code, err, out = _run(tmp_path, GOOD, {"encoding": {"ambiguity": "soft"}}, capsys=capsys)
    _assert_one_line_error(code, err, out, "dataset 'demo'.encoding", "ambiguity")


def test_input_files_are_not_modified(tmp_path, capsys):
    fasta = tmp_path / "in.fa"
    fasta.write_text(GOOD)
    digest = hashlib.sha256(fasta.read_bytes()).hexdigest()
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, _ = _run(tmp_path, GOOD, capsys=capsys)
    assert code == 0
    assert hashlib.sha256(fasta.read_bytes()).hexdigest() == digest
    after = sorted(p.name for p in tmp_path.iterdir())
    assert set(after) - set(before) == {"config.yaml", "store"}  # no index files beside input


def test_console_script_exit_status(tmp_path):
    """The installed `bioseq` entry point itself exits non-zero with one line on stderr."""
    fasta = tmp_path / "in.fa"
    fasta.write_text("")
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"datasets": {"d": {"fasta": str(fasta)}}}))
    bioseq = Path(sys.executable).with_name("bioseq")
    result = subprocess.run([str(bioseq), "encode", "--config", str(config), "--dataset", "d",
                             "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"bioseq: error: {fasta}: empty file"]


@pytest.mark.parametrize("argv_tail", [["--model-file", "missing.pt"]])
def test_predict_with_missing_checkpoint(tmp_path, capsys, argv_tail):
    fasta = tmp_path / "in.fa"
    fasta.write_text(GOOD)
    out = tmp_path / "pred.tsv"
    code = main(["predict", *argv_tail, "--fasta", str(fasta), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["bioseq: error: missing.pt: no such file"]
    assert not out.exists()


def test_predict_rejects_non_checkpoint(tmp_path, capsys):
    fake = tmp_path / "model.pt"
    fake.write_text("not a checkpoint")
    fasta = tmp_path / "in.fa"
    fasta.write_text(GOOD)
    code = main(["predict", "--model-file", str(fake), "--fasta", str(fasta),
                 "--out", str(tmp_path / "p.tsv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "not a bioseq checkpoint" in err[0]


def test_encode_refuses_to_replace_a_folder_that_is_not_a_store(tmp_path, capsys):
    fasta = tmp_path / "in.fa"
    fasta.write_text(GOOD)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"datasets": {"d": {"fasta": str(fasta),
                                                          "length": {"length": 10}}}}))
    results = tmp_path / "results"
    (results / "d" / "cnn").mkdir(parents=True)
    (results / "d" / "cnn" / "model.pt").write_text("trained for hours")
    code = main(["encode", "--config", str(config), "--dataset", "d", "--out", str(results)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "refusing to replace it" in err[0]
    assert (results / "d" / "cnn" / "model.pt").read_text() == "trained for hours"
    # an earlier store at the same path is replaced
    store = tmp_path / "store"
    assert main(["encode", "--config", str(config), "--dataset", "d", "--out", str(store)]) == 0
    assert main(["encode", "--config", str(config), "--dataset", "d", "--out", str(store)]) == 0


# ---------------------------------------------------------------- per-residue input
RESIDUE_SEQS = ">p1\nMKVLA\n>p2\nGSHMT\n>p3\nPPGWQ\n"
RESIDUE_LABELS = ">p1\nCHHHC\n>p2\nCEEEC\n>p3\nCCHHC\n"
RESIDUE_MASK = ">p1\n11111\n>p2\n01110\n>p3\n11111\n"


def _run_residues(tmp_path: Path, capsys, *, seqs=RESIDUE_SEQS, labels=RESIDUE_LABELS,
                  mask=RESIDUE_MASK, classes=None) -> tuple[int, str, Path]:
    files = {"seqs.fa": seqs, "labels.fa": labels, "mask.fa": mask}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    before = {name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() for name in files}
    entry = {"alphabet": "protein", "task": "per_residue", "fasta": str(tmp_path / "seqs.fa"),
             "residue_labels": str(tmp_path / "labels.fa"),
             "residue_mask": str(tmp_path / "mask.fa"),
             "split": {"val_fraction": 0.34, "test_fraction": 0.34}}
    if classes:
        entry["classes"] = classes
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"datasets": {"ss": entry}}))
    out = tmp_path / "store"
    code = main(["encode", "--config", str(config), "--dataset", "ss", "--out", str(out)])
    after = {name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() for name in files}
    assert before == after, "input files were modified"
    return code, capsys.readouterr().err, out


def test_good_residue_input_encodes(tmp_path, capsys):
    code, err, out = _run_residues(tmp_path, capsys)
    assert code == 0, err
    assert (out / "labels.npy").is_file()


@pytest.mark.parametrize(("kwargs", "needles"), [
    ({"labels": RESIDUE_LABELS.replace("CEEEC", "CEEECC")},
     ("labels.fa", "p2", "label has 6 letters for 5 residues")),
    ({"mask": RESIDUE_MASK.replace("01110", "0111")},
     ("mask.fa", "p2", "mask has 4 digits for 5 residues")),
    ({"mask": RESIDUE_MASK.replace("01110", "01120")}, ("mask.fa", "p2", "only 0 and 1")),
    ({"labels": RESIDUE_LABELS.replace("CEEEC", "CEGEC"), "classes": ["C", "E", "H"]},
     ("labels.fa", "'G'", "not among the residue classes")),
    ({"labels": ">p1\nCHHHC\n>p2\nCEEEC\n"}, ("labels.fa", "p3", "no record for this ID")),
    ({"labels": RESIDUE_LABELS + ">p4\nCC\n"}, ("labels.fa", "p4", "ID not in")),
    ({"mask": ">p1\n11111\n>p3\n11111\n"}, ("mask.fa", "p2", "no record for this ID")),
    ({"seqs": RESIDUE_SEQS.replace("GSHMT", ""), "labels": RESIDUE_LABELS.replace("CEEEC", ""),
      "mask": RESIDUE_MASK.replace("01110", "")}, ("p2", "empty sequence")),
])
def test_bad_residue_input_is_one_line_naming_file_and_record(tmp_path, capsys, kwargs, needles):
    code, err, out = _run_residues(tmp_path, capsys, **kwargs)
    _assert_one_line_error(code, err, out, *needles)


def test_predict_writes_per_residue_table_and_label_fasta(tmp_path, capsys, residue_store):
    from bioseq.cli import configure
    from bioseq.training import train_from_store

    configure()  # log to this test's stderr, not an earlier test's closed one
    train_from_store(residue_store, architecture="cnn",
                     params={"channels": [8], "kernel_sizes": [5], "pool": 1},
                     train={"epochs": 1}, out_dir=tmp_path / "m", progress=False)
    fasta = tmp_path / "q.fa"
    fasta.write_text(">a desc\nMKVLAAGG\n>b\nPPGW\n")
    out, labels = tmp_path / "pred.tsv", tmp_path / "pred.fasta"
    code = main(["predict", "--model-file", str(tmp_path / "m" / "model.pt"), "--fasta",
                 str(fasta), "--out", str(out), "--fasta-out", str(labels)])
    assert code == 0, capsys.readouterr().err
    lines = out.read_text().splitlines()
    assert lines[0].split("\t") == ["id", "position", "residue", "predicted", "prob_C", "prob_E",
                                    "prob_H"]
    assert [line.split("\t")[:3] for line in lines[1:]] == (
        [["a", str(i + 1), c] for i, c in enumerate("MKVLAAGG")]
        + [["b", str(i + 1), c] for i, c in enumerate("PPGW")])
    fasta_lines = labels.read_text().splitlines()
    assert fasta_lines[0::2] == [">a", ">b"]
    assert fasta_lines[1] == "".join(line.split("\t")[3] for line in lines[1:9])


def test_fasta_out_needs_a_per_residue_model(tmp_path, capsys, splice_store):
    from bioseq.cli import configure
    from bioseq.training import train_from_store

    configure()
    train_from_store(splice_store, architecture="cnn",
                     params={"channels": [4], "kernel_sizes": [3], "pool": 2},
                     train={"epochs": 1}, out_dir=tmp_path / "m", progress=False)
    (tmp_path / "q.fa").write_text(">a\nACGT\n")
    capsys.readouterr()
    code = main(["predict", "--model-file", str(tmp_path / "m" / "model.pt"), "--fasta",
                 str(tmp_path / "q.fa"), "--out", str(tmp_path / "p.tsv"),
                 "--fasta-out", str(tmp_path / "p.fa")])
    _assert_one_line_error(code, capsys.readouterr().err, tmp_path / "p.tsv",
                           "--fasta-out is for per-residue models")


# variant-effect and ism: bad input is one line, exit 2, nothing written, inputs untouched
def _variant_effect(tmp_path: Path, capsys, *, vcf: Path, reference: Path,
                    model: Path | None = None, extra: tuple[str, ...] = ()):
    from test_variants import dna_checkpoint

    model = model or dna_checkpoint(tmp_path / "cnn.pt")
    out = tmp_path / "store"  # the name _assert_one_line_error checks for leftovers
    code = main(["variant-effect", "--model-file", str(model), "--vcf", str(vcf),
                 "--reference", str(reference), "--out", str(out), *extra])
    return code, capsys.readouterr().err, out


def test_variant_effect_writes_every_output(tmp_path, capsys):
    from test_variants import DEMO_VCF, SLICE

    before = hashlib.sha256(DEMO_VCF.read_bytes()).hexdigest()
    code, err, out = _variant_effect(tmp_path, capsys, vcf=DEMO_VCF, reference=SLICE,
                                     extra=("--rc-average",))
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [
        "annotated.vcf.gz", "annotated.vcf.gz.tbi", "scores.tsv", "skipped.tsv",
        "summary.json"]
    assert "328 scored" in err and "VCF contigs not in the reference" in err
    assert hashlib.sha256(DEMO_VCF.read_bytes()).hexdigest() == before


def test_malformed_vcf_line(tmp_path, capsys):
    from test_variants import SLICE

    vcf = tmp_path / "bad.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=20>\n"
                   "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   "20\t500000\tok\tA\tC\t.\t.\t.\n20\tfive\tbad\tA\tC\t.\t.\t.\n")
    code, err, out = _variant_effect(tmp_path, capsys, vcf=vcf, reference=SLICE)
    _assert_one_line_error(code, err, out, "bad.vcf: line 5: malformed VCF record",
                           "20 five bad A C")


def test_missing_reference(tmp_path, capsys):
    from test_variants import DEMO_VCF

    code, err, out = _variant_effect(tmp_path, capsys, vcf=DEMO_VCF,
                                     reference=tmp_path / "hg19.fa")
    _assert_one_line_error(code, err, out, "hg19.fa: reference FASTA not found")


def test_unindexed_bgzip_reference(tmp_path, capsys):
    from test_variants import DEMO_VCF, SLICE

    reference = tmp_path / "chr20.fa.gz"
    reference.write_bytes(SLICE.read_bytes())
    code, err, out = _variant_effect(tmp_path, capsys, vcf=DEMO_VCF, reference=reference)
    _assert_one_line_error(code, err, out, "chr20.fa.gz: bgzip FASTA is not indexed",
                           ".fai and .gzi missing")
    assert not Path(f"{reference}.gzi").exists() and not Path(f"{reference}.fai").exists()


def test_protein_model_on_a_dna_vcf(tmp_path, capsys):
    from test_variants import DEMO_VCF, SLICE, protein_checkpoint

    model = protein_checkpoint(tmp_path / "ss.pt")
    code, err, out = _variant_effect(tmp_path, capsys, vcf=DEMO_VCF, reference=SLICE,
                                     model=model)
    _assert_one_line_error(code, err, out, "ss.pt: model was trained on protein sequences")


def test_vcf_that_is_not_a_vcf(tmp_path, capsys):
    from test_variants import SLICE

    vcf = tmp_path / "notes.vcf"
    vcf.write_text("this is not a VCF\n")
    code, err, out = _variant_effect(tmp_path, capsys, vcf=vcf, reference=SLICE)
    _assert_one_line_error(code, err, out, "notes.vcf: cannot read VCF header")


def test_ism_cli_on_a_genome_region(tmp_path, capsys):
    from test_variants import SLICE, dna_checkpoint

    model = dna_checkpoint(tmp_path / "cnn.pt")
    out = tmp_path / "ism"
    code = main(["ism", "--model-file", str(model), "--reference", str(SLICE),
                 "--region", "20:1318016-1318075", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["ism.json", "ism.npy", "ism.tsv"]
    code = main(["ism", "--model-file", str(model), "--out", str(tmp_path / "none")])
    assert code == 2 and "give --sequence, or --region" in capsys.readouterr().err
