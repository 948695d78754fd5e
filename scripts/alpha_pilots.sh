#!/usr/bin/env bash
# One-seed pilots behind the alpha study's recipe: split seed 0, alpha 1 (the discriminative end, so no
# generative branch), 800 steps, each a single change on top of experiment=alpha_sweep. Prints test/acc per pilot.
# Usage: scripts/alpha_pilots.sh OUT_DIR [PILOT...]   (default: every pilot; the names are the case labels below)
set -euo pipefail
out=${1:?usage: scripts/alpha_pilots.sh OUT_DIR [PILOT...]}
shift
pilots=("$@")
[ ${#pilots[@]} -gt 0 ] || pilots=(supervised fixmatch fixmatch_da soft soft_da soft_da_ratio1_2000 soft_da_lr5e-3 soft_da_ema soft_da_weight2 soft_da_width32)
fixmatch=(model.consistency_mask=threshold model.distribution_alignment=false)
soft_da=(model.consistency_mask=soft model.distribution_alignment=true)
for pilot in "${pilots[@]}"; do
    case $pilot in
        supervised) args=(model.consistency_weight=0) ;;
        fixmatch) args=("${fixmatch[@]}") ;;
        fixmatch_da) args=(model.consistency_mask=threshold model.distribution_alignment=true) ;;
        soft) args=(model.consistency_mask=soft model.distribution_alignment=false) ;;
        soft_da) args=("${soft_da[@]}") ;;
        soft_da_ratio1_2000) args=("${soft_da[@]}" data.unlabeled_ratio=1 trainer.max_steps=2000 trainer.val_check_interval=500) ;;
        soft_da_lr5e-3) args=("${soft_da[@]}" model.optimizer.lr=0.005) ;;
        soft_da_ema) args=("${soft_da[@]}" +callbacks.ema._target_=pytorch_lightning.callbacks.EMAWeightAveraging +callbacks.ema.decay=0.99) ;;
        soft_da_weight2) args=("${soft_da[@]}" model.consistency_weight=2) ;;
        soft_da_width32) args=("${soft_da[@]}" model.backbone.width=32) ;;
        *) echo "unknown pilot: $pilot" >&2; exit 2 ;;
    esac
    ssl-hybrid-train experiment=alpha_sweep data.split_seed=0 model.alpha=1.0 callbacks.progress_bar=null \
        "logger.wandb.group=alpha_pilots_$(basename "$out")" hydra.run.dir="$out/$pilot" "${args[@]}"
    python -c "import json, sys; s = json.load(open(sys.argv[1])); print(sys.argv[2], 'test/acc', round(s['test/acc'], 4), 'train', round(s['train_seconds']), 's')" \
        "$out/$pilot/metrics.json" "$pilot"
done
