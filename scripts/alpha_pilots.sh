#!/usr/bin/env bash
# One-seed pilots behind the alpha study's recipe: split seed 0, alpha 1 (the discriminative end, so no
# generative branch), 800 steps, each a single change on top of experiment=alpha_sweep.
# The first round runs without the study's propagated labels (it chose the recipe before those were added; its
# last pilot adds them), each scored by its head. The second round (recipe*, supervised_lr5e-3) is the study as
# it runs, label graph included, with the changes validation favoured in the first, and the baseline given the
# same learning-rate choice.
# Prints each pilot's validation accuracy as tested, which chooses among them, and its test/acc (the recipe was
# first chosen on the first round's test/acc: README, "What else was tried").
# Usage: scripts/alpha_pilots.sh OUT_DIR [PILOT...]   (default: every pilot; the names are the case labels below)
set -euo pipefail
out=${1:?usage: scripts/alpha_pilots.sh OUT_DIR [PILOT...]}
shift
pilots=("$@")
[ ${#pilots[@]} -gt 0 ] || pilots=(supervised fixmatch fixmatch_da soft soft_da soft_da_ratio1_2000 soft_da_lr5e-3 soft_da_ema soft_da_weight2 soft_da_width32 soft_da_propagated
    supervised_lr5e-3 recipe recipe_lr5e-3 recipe_weight2 recipe_lr5e-3_weight2)
# labels MASK ALIGN [OVERRIDE...]: how the pseudo-labels are made, plus the pilot's other changes
labels() { args=(model.consistency_mask="$1" model.distribution_alignment="$2" "${@:3}"); }
# recipe_with [OVERRIDE...]: the study's recipe as it runs (second round), plus the pilot's changes
recipe_with() { propagation=(); args=("$@"); }
for pilot in "${pilots[@]}"; do
    propagation=(data.label_propagation=null model.classify_with=head)
    case $pilot in
        supervised) args=(model.consistency_weight=0) ;;
        fixmatch) labels threshold false ;;
        fixmatch_da) labels threshold true ;;
        soft) labels soft false ;;
        soft_da) labels soft true ;;
        soft_da_ratio1_2000) labels soft true data.unlabeled_ratio=1 trainer.max_steps=2000 trainer.val_check_interval=500 ;;
        soft_da_lr5e-3) labels soft true model.optimizer.lr=0.005 ;;
        soft_da_ema) labels soft true +callbacks.ema._target_=pytorch_lightning.callbacks.EMAWeightAveraging +callbacks.ema.decay=0.99 ;;
        soft_da_weight2) labels soft true model.consistency_weight=2 ;;
        soft_da_width32) labels soft true model.backbone.width=32 ;;
        soft_da_propagated) labels soft true; propagation=(model.classify_with=head) ;;
        supervised_lr5e-3) args=(model.consistency_weight=0 model.optimizer.lr=0.005) ;;
        recipe) recipe_with ;;
        recipe_lr5e-3) recipe_with model.optimizer.lr=0.005 ;;
        recipe_weight2) recipe_with model.consistency_weight=2 ;;
        recipe_lr5e-3_weight2) recipe_with model.optimizer.lr=0.005 model.consistency_weight=2 ;;
        *) echo "unknown pilot: $pilot" >&2; exit 2 ;;
    esac
    WANDB_RUN_GROUP="alpha_pilots_$(basename "$out")" ssl-hybrid-train experiment=alpha_sweep data.split_seed=0 \
        model.alpha=1.0 callbacks.progress_bar=null hydra.run.dir="$out/$pilot" "${propagation[@]}" "${args[@]}"
    python -c "import json, sys; s = json.load(open(sys.argv[1])); print(sys.argv[2], 'val/acc_as_tested', round(s['val/acc_as_tested'], 4), 'test/acc', round(s['test/acc'], 4), 'train', round(s['train_seconds']), 's')" \
        "$out/$pilot/metrics.json" "$pilot"
done
