#!/usr/bin/env bash
# Reproduces the Doom world v4 (bundled until 2026-12-03) from nothing, on CPU, and then with
# scripts/make_omni_world.sh the model of four worlds (bundled until 2026-12-08) whose tokenizers the bundled world uses.
# Each step resumes if it is killed and the same command is run again (record resumes by
# itself; add --resume to the train and distill commands). Times measured on the 2-core CPU are in README.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=PASSIVE
LW=.venv/bin/liveworld
$LW record --world doom:deathmatch --episodes 150 --steps 500 --seed 0 --out datasets/doom-deathmatch
$LW train-tokenizer --modality video --data datasets/doom-deathmatch --out runs/tokenizers/video --minutes 30
$LW train-tokenizer --modality audio --data datasets/doom-deathmatch --out runs/tokenizers/audio --minutes 8
$LW train-tokenizer --modality text  --data datasets/doom-deathmatch --out runs/tokenizers/text
$LW train --preset cpu --data datasets/doom-deathmatch --tokenizers runs/tokenizers --out runs/world-v2
$LW distill runs/world-v2 --out runs/world-v2-distill
$LW --threads 2 distill runs/world-v2-distill --out runs/world-v4 --minutes 95 --data datasets/doom-deathmatch \
  --train.lr 3e-4 --train.p_self_rollout 0.25 --train.rollout_steps 1 --train.p_guidance 0.1
$LW export runs/world-v4 --out runs/doom-world
DOOM=runs/doom-world bash scripts/make_omni_world.sh
