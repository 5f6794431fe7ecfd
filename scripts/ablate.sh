#!/usr/bin/env bash
# The ablation of issue 7 on a short budget: each change of the recipe alone and together,
# trained from scratch for the same time on the same data, evaluated on the same fresh
# episodes (seeds never trained on). Figures go to docs/RESULTS.md by hand.
#
#   bash scripts/ablate.sh [MINUTES]      # default 20 minutes a variant (about 2 hours in all)
#
# Each step resumes if killed (train --resume is automatic when the run exists).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=PASSIVE
LW=.venv/bin/liveworld
MIN=${1:-20}
DATA=datasets/doom-deathmatch
HELDOUT=datasets/doom-heldout
$LW record --world doom:deathmatch --episodes 150 --steps 500 --seed 0 --out $DATA
$LW record --world doom:deathmatch --episodes 16 --steps 500 --seed 1000150 --out $HELDOUT
declare -A VARIANTS=(
  [a-velocity-d0]="--model.output velocity --model.shortcut_steps 0 --train.p_t_grid 0"
  [b-tgrid]="--model.output velocity --model.shortcut_steps 0 --train.p_t_grid 0.5"
  [c-copy-prior]="--model.output delta --model.shortcut_steps 0 --train.p_t_grid 0.5"
  [d-shortcut]="--model.output velocity --model.shortcut_steps 8"
  [e-all]=""
)
for name in a-velocity-d0 b-tgrid c-copy-prior d-shortcut e-all; do
  out=runs/ablate/$name
  if [ -f $out/checkpoint/train_state.json ]; then
    $LW train --out $out --data $DATA --resume
  else
    # shellcheck disable=SC2086
    $LW train --preset cpu --data $DATA --out $out --train.minutes "$MIN" ${VARIANTS[$name]}
  fi
  for steps in 1 2; do
    $LW eval --checkpoint $out --data $HELDOUT --split all --steps $steps --frames 128 --starts 32 \
      --stability-frames 300 > runs/ablate/$name.eval-$steps.txt
    tail -1 runs/ablate/$name.eval-$steps.txt
  done
done
# the last row: e-all fine-tuned on its own rollouts with guidance in the weights
out=runs/ablate/f-distill
if [ -f $out/checkpoint/train_state.json ]; then $LW distill --out $out --resume
else $LW distill runs/ablate/e-all --out $out --minutes $((MIN / 2)); fi
for steps in 1 2; do
  $LW eval --checkpoint $out --data $HELDOUT --split all --steps $steps --frames 128 --starts 32 \
    --stability-frames 300 > runs/ablate/f-distill.eval-$steps.txt
  tail -1 runs/ablate/f-distill.eval-$steps.txt
done
