#!/usr/bin/env bash
# Reproduces the model of several worlds (issue 9) on CPU, from the bundled Doom world: four
# worlds recorded, one video autoencoder and one lapped audio codec for all of them, the Doom
# world's text tokenizer, then one world model started from the Doom world's weights. Each step
# resumes if killed (record by itself; add --resume to the others). Times: docs/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=PASSIVE
LW=.venv/bin/liveworld
DOOM=${DOOM:-runs/doom-world}  # the Doom world v4 (scripts/make_bundled_world.sh exports it there)
$LW record --world doom:deathmatch --episodes 150 --steps 500 --seed 0 --out datasets/doom-deathmatch
$LW --threads 1 record --world doom:defend_the_center --episodes 60 --steps 300 --seed 0 --out datasets/doom-defend_the_center
$LW --threads 1 record --world atari:Breakout --episodes 60 --steps 300 --seed 0 --out datasets/atari-breakout
$LW --threads 1 record --world babyai:GoToRedBall-v0 --episodes 300 --steps 64 --seed 0 --out datasets/babyai-gotoredball
# held out, seeds never trained on
$LW --threads 1 record --world doom:deathmatch --episodes 16 --steps 500 --seed 1000150 --out datasets/doom-heldout
$LW --threads 1 record --world doom:defend_the_center --episodes 12 --steps 300 --seed 1000060 --out datasets/doom-dtc-heldout
$LW --threads 1 record --world atari:Breakout --episodes 12 --steps 300 --seed 1000060 --out datasets/atari-heldout
$LW --threads 1 record --world babyai:GoToRedBall-v0 --episodes 40 --steps 64 --seed 1000300 --out datasets/babyai-heldout
ALL=datasets/doom-deathmatch,datasets/doom-defend_the_center,datasets/atari-breakout,datasets/babyai-gotoredball
$LW --threads 1 train-tokenizer --modality video --data $ALL --out runs/omni/tokenizers/video --minutes 15 --init $DOOM/tokenizers/video
$LW --threads 1 train-tokenizer --modality video --data $ALL --out runs/omni/tokenizers/video --minutes 23 --resume
$LW --threads 1 train-tokenizer --modality audio --preset lapped --out runs/omni/tokenizers/audio --minutes 10 \
  --data datasets/doom-deathmatch,datasets/doom-defend_the_center,datasets/atari-breakout
mkdir -p runs/omni/tokenizers && cp -r $DOOM/tokenizers/text runs/omni/tokenizers/text
$LW --threads 2 train --preset cpu --data $ALL --tokenizers runs/omni/tokenizers --out runs/omni/world --init $DOOM \
  --train.minutes 85 --train.lr 3e-4 --train.warmup_steps 50 --train.p_text_start 0.1 --train.micro_batch 2
$LW export runs/omni/world --out runs/omni-world  # the bundled world from 2026-12-03 to 2026-12-08
