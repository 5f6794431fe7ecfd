#!/usr/bin/env bash
# The ablation of issue 7 on a short budget: each change of the recipe alone and together,
# trained from scratch for the same number of optimiser steps on the same data (a step budget,
# so a busy machine changes the wall time, not the result), evaluated on the same fresh
# episodes (seeds never trained on). Figures go to docs/RESULTS.md by hand.
#
#   bash scripts/ablate.sh [STEPS]      # default 300 steps a variant (about 95 minutes in all)
#
# Each step resumes if killed (train --resume is automatic when the run exists).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=PASSIVE
LW=.venv/bin/liveworld
STEPS=${1:-300}
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
evaluate() {  # evaluate NAME STEPS...  (an evaluation already written is kept)
  local name=$1; shift
  for steps in "$@"; do
    local f=runs/ablate/$name.eval-$steps.txt
    if [ -f $f ] && tail -1 $f | grep -q '"bench": "eval"'; then continue; fi
    $LW --threads 1 eval --checkpoint runs/ablate/$name --data $HELDOUT --split all --steps "$steps" \
      --frames 128 --starts 32 --revisit-episodes 0 > $f.tmp && mv $f.tmp $f
    tail -1 $f
  done
}
for name in a-velocity-d0 b-tgrid c-copy-prior d-shortcut e-all; do
  out=runs/ablate/$name
  # the encoded data set is the same for every variant: encode it once
  if [ ! -d $out/cache ] && [ -d runs/ablate/cache ]; then mkdir -p $out && cp -r runs/ablate/cache $out/; fi
  if [ -f $out/checkpoint/train_state.json ]; then
    grep -q "\"step\": $STEPS," $out/checkpoint/train_state.json || $LW train --out $out --data $DATA --resume
  else
    # shellcheck disable=SC2086
    $LW train --preset cpu --data $DATA --out $out --train.minutes 0 --train.steps "$STEPS" \
      --train.warmup_steps 50 ${VARIANTS[$name]}
  fi
  [ -d runs/ablate/cache ] || cp -r $out/cache runs/ablate/cache
  evaluate $name 1
done
# the last row: e-all fine-tuned on its own rollouts with guidance in the weights
out=runs/ablate/f-distill
if [ ! -d $out/cache ]; then mkdir -p $out && cp -r runs/ablate/cache $out/; fi
if [ -f $out/checkpoint/train_state.json ]; then
  grep -q "\"step\": $((STEPS / 2))," $out/checkpoint/train_state.json || $LW distill --out $out --resume
else $LW distill runs/ablate/e-all --out $out --minutes 0 --train.steps $((STEPS / 2)); fi
evaluate f-distill 1
