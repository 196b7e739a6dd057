localrules:
    merge_variant_effect,


rule variant_effect:
    input:
        model="results/{dataset}/{model}/model.pt",
        vcf=VARIANT_EFFECT.vcf if VARIANT_EFFECT else [],
        reference=reference_files() if VARIANT_EFFECT else [],
    output:
        shard=temp(
            directory("results/{dataset}/{model}/variant_effect_shards/{shard}-of-{shards}")
        ),
    log:
        "logs/{dataset}/{model}/variant_effect/{shard}-of-{shards}.log",
    wildcard_constraints:
        shard=r"\d+",
        shards=r"\d+",
    params:
        settings=VARIANT_EFFECT,
    threads: RESOURCES["threads"]
    resources:
        mem_mb=4000,
        runtime=60,
        **slurm_resources(gpus=RESOURCES["predict_gpu"]),
    conda:
        "../../envs/bioseq.yaml"
    script:
        "../scripts/variant_effect.py"


rule merge_variant_effect:
    input:
        shards=variant_effect_shards,
    output:
        scores=report(
            "results/{dataset}/{model}/variant_effect/scores.tsv",
            caption="../report/variant_scores.rst",
            category="Variant effects",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "model": "{model}", "table": "variant scores"},
        ),
        skipped="results/{dataset}/{model}/variant_effect/skipped.tsv",
        vcf="results/{dataset}/{model}/variant_effect/annotated.vcf.gz",
        index="results/{dataset}/{model}/variant_effect/annotated.vcf.gz.tbi",
        summary="results/{dataset}/{model}/variant_effect/summary.json",
        figure=report(
            "results/{dataset}/{model}/variant_effect/scores.png",
            caption="../report/variant_figure.rst",
            category="Variant effects",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "model": "{model}", "figure": "variant scores"},
        ),
    log:
        "logs/{dataset}/{model}/variant_effect.log",
    params:
        vcf=VARIANT_EFFECT.vcf if VARIANT_EFFECT else None,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/bioseq.yaml"
    script:
        "../scripts/merge_variant_effect.py"


rule saturation_mutagenesis:
    input:
        model="results/{dataset}/{model}/model.pt",
        reference=reference_files() if VARIANT_EFFECT else [],
    output:
        table="results/{dataset}/{model}/ism/{region}/ism.tsv",
        matrix="results/{dataset}/{model}/ism/{region}/ism.npy",
        meta="results/{dataset}/{model}/ism/{region}/ism.json",
        heatmap=report(
            "results/{dataset}/{model}/ism/{region}/ism.png",
            caption="../report/ism.rst",
            category="Variant effects",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "model": "{model}", "region": "{region}"},
        ),
    log:
        "logs/{dataset}/{model}/ism/{region}.log",
    params:
        settings=VARIANT_EFFECT,
        region=lambda wildcards: ISM_REGIONS[wildcards.region],
    threads: RESOURCES["threads"]
    resources:
        mem_mb=2000,
        runtime=30,
        **slurm_resources(gpus=RESOURCES["predict_gpu"]),
    conda:
        "../../envs/bioseq.yaml"
    script:
        "../scripts/ism.py"
