#!/usr/bin/env bash
# Issue 10's check: kill -9 `liveworld record` five times at different moments, run it once more,
# and count the ViZDoom game processes and shared-memory segments left (both should be 0).
#
#   bash scripts/check_record_kills.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/liveworld-kill-check}
LW=.venv/bin/liveworld
export OMP_WAIT_POLICY=PASSIVE
games() { ps -eo stat,comm | awk '$2 == "vizdoom" && $1 !~ /^Z/' | wc -l; }   # zombies are already dead
segments() { find /dev/shm -maxdepth 1 -name 'ViZDoom*' | wc -l; }
rm -rf "$OUT"
before_games=$(games); before_shm=$(segments)
for t in 2 3 4 5 6; do
  $LW record --world doom:deathmatch --episodes 40 --steps 300 --out "$OUT" > /dev/null 2>&1 &
  pid=$!
  sleep $t
  kill -9 $pid; wait $pid 2>/dev/null || true
  sleep 1
  echo "after kill -9 at ${t}s: $(( $(games) - before_games )) game process(es), $(( $(segments) - before_shm )) shared-memory segment(s) left"
done
$LW record --world doom:deathmatch --episodes 12 --steps 300 --out "$OUT" | tail -1
echo "after the next record finished: $(( $(games) - before_games )) game process(es), $(( $(segments) - before_shm )) shared-memory segment(s) left"
$LW data info "$OUT" > /dev/null && echo "data info: exit 0 (every shard intact)"
