#!/usr/bin/env bash
# Reproduces the bundled world (liveworld/assets/worlds/doom, issue 17) on the 2-core CPU, one
# thread each step: 100 deathmatch episodes recorded, the stack preset trained 90 minutes, then
# 60 minutes on its own rollouts (12 frames generated from the real first 4, the real frames the
# target), exported with 4 flow steps a frame as its default. Each step resumes if killed
# (record by itself; add --resume to the train commands). Times: README and docs/RESULTS.md.
# The tokenizers are those of the four-world model bundled from 2026-12-03 (made by
# scripts/make_bundled_world.sh then scripts/make_omni_world.sh); TOKENIZERS points elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=PASSIVE
LW=.venv/bin/liveworld
TOKENIZERS=${TOKENIZERS:-liveworld/assets/worlds/doom/tokenizers}
$LW record --world doom:deathmatch --episodes 100 --steps 500 --seed 0 --out datasets/doom-dm
$LW --threads 1 train --preset stack --data datasets/doom-dm --tokenizers $TOKENIZERS --out runs/stack-v1 \
  --train.lr 6e-4 --train.minutes 90
$LW --threads 1 train --preset stack --init runs/stack-v1/checkpoint --data datasets/doom-dm --tokenizers $TOKENIZERS \
  --out runs/stack-sr --train.p_self_rollout 0.5 --train.clip_targets 12 --train.batch_size 6 --train.lr 3e-4 \
  --train.minutes 60 --train.warmup_steps 50
$LW export runs/stack-sr --out liveworld/assets/worlds/doom --steps 4
