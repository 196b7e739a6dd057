# bioseq: encode -> train -> evaluate -> predict for every dataset x model, then a report.
# Run:  snakemake --cores 2        (see README.md for configuration and clusters)
from snakemake.utils import min_version

min_version("8.0")


# The demo config, unless `--configfile` names another: a config given on the command line
# replaces it whole, so a benchmark config does not inherit the demo's datasets and models.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/encode.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/crossval.smk"
include: "workflow/rules/variants.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_outputs(),
    default_target: True
