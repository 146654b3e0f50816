#!/usr/bin/env bash
# gaggle quickstart: the whole story on the tiny embedded base, in a few minutes on a laptop.
#
#   mkdir /tmp/qs && cd /tmp/qs && /path/to/gaggle/examples/quickstart.sh
#
# In the current (empty) directory it
#   1. generates the synthetic task suite          gaggle debug make-tasks
#   2. trains 4 LoRA experts and their gates       gaggle train-expert / train-gate
#        color (of a fruit), translate (into Zorbish), count (words), next (number)
#   3. makes a signing key and a local hub         gaggle keygen / hub init
#   4. publishes the 4 signed experts              gaggle publish
#   5. pulls them back, verifying every signature  gaggle pull --trust
#   6. assembles a PHATGOOSE-routed model          gaggle assemble --router phatgoose
#   7. evaluates on 5 held-out tasks no expert was trained on — three of the experts'
#      skills asked in new words (color_reworded, translate_reworded, next_reworded) and
#      two inputs of two segments that need two experts each (color_next, translate_next)
#      — against the base model and the merged experts, and prints the table.
#
# Environment (all optional):
#   GAGGLE             the gaggle binary (default: gaggle on PATH)
#   GAGGLE_BASE        the base model directory (default: examples/base beside this script)
#   QUICKSTART_STEPS   optimiser steps per expert (default 1000); QUICKSTART_GATE_STEPS (100)
#   QUICKSTART_LIMIT   examples per held-out task in the evaluation (default 200)
#   QUICKSTART_TRAIN   training examples per task generated (default 1000)
#   QUICKSTART_THREADS compute threads per command (default 1: fastest for a model this
#                      small on a small, busy machine; 0 = every core)
#   QUICKSTART_DEVICE  where training and evaluation run: cpu (default), cuda or cuda:N
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
GAGGLE="${GAGGLE:-gaggle}"
BASE="${GAGGLE_BASE:-$here/base}"
STEPS="${QUICKSTART_STEPS:-1000}"
GATE_STEPS="${QUICKSTART_GATE_STEPS:-100}"
LIMIT="${QUICKSTART_LIMIT:-200}"
TRAIN="${QUICKSTART_TRAIN:-1000}"
THREADS="${QUICKSTART_THREADS:-1}"
DEVICE="${QUICKSTART_DEVICE:-cpu}"
EXPERTS=(color translate count next)
HELD_OUT=(color_reworded translate_reworded next_reworded color_next translate_next)

start=$SECONDS
step() { printf '\n==> [%dm%02ds] %s\n' $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)) "$*" >&2; }
die() { printf 'quickstart: %s\n' "$*" >&2; exit 1; }

command -v "$GAGGLE" >/dev/null 2>&1 || die "'$GAGGLE' is not on PATH (run scripts/setup, or set GAGGLE=/path/to/gaggle)"
[ -f "$BASE/config.json" ] && [ -f "$BASE/model.safetensors" ] && [ -f "$BASE/spiece.model" ] ||
  die "no base model in '$BASE' (config.json, model.safetensors, spiece.model); set GAGGLE_BASE"
if [ -f .gaggle-quickstart ]; then
  # A previous quickstart ran here: start again from scratch (only its own outputs go).
  rm -rf tasks experts keys allowed_signers hub.git pool routed report .cache .experts.* .gaggle-tmp-*
elif [ -n "$(ls -A . 2>/dev/null)" ]; then
  die "run me in an empty directory (this one, $(pwd), is not): mkdir /tmp/qs && cd /tmp/qs && $0"
fi
touch .gaggle-quickstart
# The hub, the key and the pool stay inside this directory.
export XDG_CACHE_HOME="$PWD/.cache"

step "1/7 generating the synthetic task suite (12 held-in tasks, 21 held-out tasks)"
"$GAGGLE" debug make-tasks --out tasks --seed 0 --train "$TRAIN"

step "2/7 training ${#EXPERTS[@]} experts and their gates on the tiny base ($BASE)"
for t in "${EXPERTS[@]}"; do
  step "    expert '$t': LoRA, $STEPS steps"
  "$GAGGLE" train-expert --base "$BASE" --data "tasks/train/$t.jsonl" --valid "tasks/validation/$t.jsonl" \
    --out "experts/$t" --name "$t" --steps "$STEPS" --batch-size 16 --eval-every 100 --save-every 0 \
    --log-every 20 --threads "$THREADS" --device "$DEVICE" --license CC0-1.0 --description "quickstart expert: the '$t' skill of the synthetic suite"
  step "    gate of '$t': $GATE_STEPS steps"
  "$GAGGLE" train-gate --base "$BASE" --expert "experts/$t" --data "tasks/train/$t.jsonl" --steps "$GATE_STEPS" \
    --batch-size 16 --save-every 0 --avg-act-examples 200 --embed-examples 200 --threads "$THREADS" \
    --device "$DEVICE"
done

step "3/7 making a signing key and a local hub"
mkdir -p keys
"$GAGGLE" keygen -f keys/id_ed25519 -C quickstart@gaggle.example
echo "quickstart@gaggle.example namespaces=\"gaggle-bundle\" $(cut -d' ' -f1,2 keys/id_ed25519.pub)" >allowed_signers
"$GAGGLE" hub init hub.git --trust allowed_signers --title "quickstart hub"

step "4/7 publishing the signed experts"
for t in "${EXPERTS[@]}"; do
  "$GAGGLE" publish "experts/$t" --hub "$PWD/hub.git" --key keys/id_ed25519 --trust allowed_signers
done

step "5/7 pulling the pool back, verifying each signature against allowed_signers"
"$GAGGLE" pull --hub "$PWD/hub.git" --pool pool --trust allowed_signers

step "6/7 assembling the PHATGOOSE-routed model (top-2 per token, every layer)"
"$GAGGLE" assemble --base "$BASE" --pool pool --trust allowed_signers --router phatgoose --out routed

step "7/7 evaluating on held-out tasks no expert saw: ${HELD_OUT[*]}"
tasks_args=()
for t in "${HELD_OUT[@]}"; do tasks_args+=("tasks/heldout/$t.jsonl"); done
# The assembled model (routed/) against the base and the merged experts of the same pool.
"$GAGGLE" eval --model routed --base "$BASE" --pool pool --routers merged --with-base \
  --tasks "${tasks_args[@]}" --limit "$LIMIT" --threads "$THREADS" --device "$DEVICE" --report report/quickstart.json

step "done in $(((SECONDS - start) / 60))m$(((SECONDS - start) % 60))s"
gaggle_path=$(command -v "$GAGGLE")  # as the user can type it after this script
cat >&2 <<EOF
  experts/        the 4 trained bundles (manifest.json, adapter.safetensors with LoRA and gates, logs)
  hub.git         the local hub they were published to (signed); pool/ the verified pull
  routed/         the PHATGOOSE-routed model; report/ the evaluation (json, md, csv, html)
Look inside (in $PWD):
  $gaggle_path inspect experts/${EXPERTS[0]}
  $gaggle_path inspect routed
  $gaggle_path pool list --pool pool
Next: the paper's table in miniature, every method on every held-out task: bench/mini-t0/run.sh
EOF
