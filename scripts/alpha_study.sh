#!/usr/bin/env bash
# The whole alpha study on Fashion-MNIST (10 labels per class, 3 split seeds), then the comparison:
#   1. the alpha grid with the consistency term (experiment=alpha_sweep),
#   2. the supervised-only baseline (alpha = 1, no unlabeled term: no consistency term, no propagated labels, no
#      label graph: the head classifies; it still draws the unlabeled batches it does not read, and warns so,
#      because its augmentation noise, and so its figures, are those of every study since s3),
#   3. the "generative first, then discriminative" schedule (alpha ramped from 0 to 0.95 over 200 steps).
# Usage: scripts/alpha_study.sh [OUT_DIR] [extra overrides...]
set -euo pipefail
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { print substr($0, 3) }' "$0"  # the leading comment block
  exit 0
fi
out=${1:-logs/alpha_study/$(date +%Y-%m-%d_%H-%M-%S)}
shift || true
# one W&B group for the three sweeps (W&B's own variable, so any logger= override still composes)
export WANDB_RUN_GROUP="alpha_study_$(basename "$out")"
# no progress bar in the sweep's log, unless the overrides choose another callbacks group
quiet=(callbacks.progress_bar=null)
[[ " $* " == *" callbacks="* ]] && quiet=()
train() { ssl-hybrid-train -m experiment=alpha_sweep "${quiet[@]}" "$@"; }
start=$(date +%s)
train hydra.sweep.dir="$out/grid" "$@"
train hydra.sweep.dir="$out/supervised" model.alpha=1.0 model.consistency_weight=0 data.label_propagation=null model.classify_with=head "$@"
train hydra.sweep.dir="$out/schedule" model.alpha=0.95 'model.alpha_schedule={ramp_steps:200}' "$@"
echo "alpha study: $(( $(date +%s) - start )) s wall"
ssl-hybrid-compare "$out/grid" "$out/supervised" "$out/schedule" --out "$out"
