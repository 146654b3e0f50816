#!/usr/bin/env bash
# bench/mini-t0 — the paper's Table 1 (T0 held-out column) in miniature, as one command:
#
#   bench/mini-t0/run.sh [RUN_DIR]          (default: ./mini-t0-run)
#
# On the tiny embedded base (examples/base) and the synthetic suite (gaggle debug
# make-tasks): a LoRA expert and its post-hoc gate for every held-in task, a Multitask
# LoRA on the union of the held-in training data, then on every held-out task (none of
# which any expert was trained on) the base model, Multitask, Oracle, Best individual,
# Retrieval, Average activation, Arrow, Merged and PHATGOOSE, all through `gaggle eval`.
# Prints the table beside the paper's numbers (design.md §2) and saves it as
# RUN_DIR/report/mini-t0.{json,md,csv} and RUN_DIR/report/mini-t0-vs-paper.md.
#
# Steps are resumable: a finished expert (or gate, or the suite) is not trained again.
# Environment (all optional):
#   GAGGLE           the gaggle binary (default: gaggle on PATH, else build/gaggle)
#   GAGGLE_BASE      base model directory (default examples/base)
#   TASKS_DIR        an existing suite directory (default: RUN_DIR/tasks, generated)
#   MINI_STEPS       optimiser steps per expert (default 500)
#   MINI_GATE_STEPS  gate steps (default 100)
#   MINI_MT_STEPS    Multitask steps (default 4 x MINI_STEPS: it sees 12 tasks)
#   MINI_LIMIT       examples per held-out task (default 200; 0: all)
#   MINI_TRAIN       training examples generated per held-in task (default 1000)
#   MINI_DEVICE      cpu | cuda (default cpu)
#   MINI_THREADS     compute threads per command (default 1; 0 = every core)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [ -z "${GAGGLE:-}" ]; then
  if command -v gaggle >/dev/null 2>&1; then GAGGLE=gaggle; else GAGGLE="$root/build/gaggle"; fi
fi
BASE="${GAGGLE_BASE:-$root/examples/base}"
RUN="${1:-mini-t0-run}"
STEPS="${MINI_STEPS:-500}"
GATE_STEPS="${MINI_GATE_STEPS:-100}"
MT_STEPS="${MINI_MT_STEPS:-$((4 * STEPS))}"
LIMIT="${MINI_LIMIT:-200}"
TRAIN="${MINI_TRAIN:-1000}"
DEVICE="${MINI_DEVICE:-cpu}"
THREADS="${MINI_THREADS:-1}"

start=$SECONDS
step() { printf '\n==> [%dm%02ds] %s\n' $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)) "$*" >&2; }
command -v jq >/dev/null 2>&1 || { echo "mini-t0: needs jq (apt-get install jq)" >&2; exit 1; }

mkdir -p "$RUN"
cd "$RUN"
TASKS="${TASKS_DIR:-tasks}"
if [ ! -f "$TASKS/suite.json" ]; then
  step "generating the synthetic task suite"
  "$GAGGLE" debug make-tasks --out "$TASKS" --seed 0 --train "$TRAIN"
fi
mapfile -t HELD_IN < <(jq -r '.held_in[].name' "$TASKS/suite.json")
mapfile -t HELD_OUT < <(jq -r '.held_out[].name' "$TASKS/suite.json")
step "${#HELD_IN[@]} held-in tasks (${HELD_IN[*]}); ${#HELD_OUT[@]} held-out tasks (${HELD_OUT[*]})"

i=0
for t in "${HELD_IN[@]}"; do
  i=$((i + 1))
  if [ ! -f "experts/$t/manifest.json" ]; then
    step "expert $i/${#HELD_IN[@]}: '$t' ($STEPS steps)"
    "$GAGGLE" train-expert --base "$BASE" --data "$TASKS/train/$t.jsonl" --valid "$TASKS/validation/$t.jsonl" \
      --out "experts/$t" --name "$t" --steps "$STEPS" --batch-size 16 --eval-every 100 --save-every 0 \
      --log-every 50 --device "$DEVICE" --threads "$THREADS" --force
  fi
  if [ "$(jq -r .method "experts/$t/manifest.json")" != phatgoose ]; then
    step "gate $i/${#HELD_IN[@]}: '$t' ($GATE_STEPS steps)"
    "$GAGGLE" train-gate --base "$BASE" --expert "experts/$t" --data "$TASKS/train/$t.jsonl" --steps "$GATE_STEPS" \
      --batch-size 16 --save-every 0 --avg-act-examples 500 --embed-examples 500 --device "$DEVICE" --threads "$THREADS"
  fi
done

if [ ! -f multitask/manifest.json ]; then
  step "Multitask: one LoRA on the union of the held-in training data ($MT_STEPS steps)"
  mkdir -p multitask-data
  for t in "${HELD_IN[@]}"; do cat "$TASKS/train/$t.jsonl"; done >multitask-data/train.jsonl
  for t in "${HELD_IN[@]}"; do head -n 20 "$TASKS/validation/$t.jsonl"; done >multitask-data/valid.jsonl
  "$GAGGLE" train-expert --base "$BASE" --data multitask-data/train.jsonl --valid multitask-data/valid.jsonl \
    --out multitask --name multitask --steps "$MT_STEPS" --batch-size 16 --eval-every 200 --save-every 0 \
    --log-every 50 --device "$DEVICE" --threads "$THREADS" --force
fi

step "evaluating every method on the held-out tasks (limit $LIMIT examples per task)"
"$GAGGLE" eval --base "$BASE" --pool experts --routers phatgoose,arrow,average-activation,retrieval,merged \
  --single-experts --multitask multitask --with-base --tasks "$TASKS/heldout" --limit "$LIMIT" \
  --device "$DEVICE" --threads "$THREADS" --report report/mini-t0.json

# The paper's T0 held-out column (design.md §2) beside ours.
bench=$(jq -r '.means[0].benchmark' report/mini-t0.json)
{
  echo "# mini-T0: the paper's Table 1 in miniature"
  echo
  echo "Base: $BASE; ${#HELD_IN[@]} experts ($STEPS steps, gates $GATE_STEPS steps); ${#HELD_OUT[@]} held-out tasks, $LIMIT examples each."
  echo
  echo "| Method | mini-T0 held-out (%) | paper, T0 held-out (%) |"
  echo "|---|---:|---:|"
  for m in "Base" "Multitask" "Oracle" "Best individual" "Retrieval" "Average activation" "Arrow" "Merged" "PHATGOOSE"; do
    ours=$(jq -r --arg m "$m" --arg b "$bench" \
      '[.means[] | select(.method == $m and .benchmark == $b) | .value * 100 | . * 10 | round / 10] | first // "-"' \
      report/mini-t0.json)
    case "$m" in
      Multitask) paper=51.6 ;; Oracle) paper=57.2 ;; "Best individual") paper=52.8 ;; Retrieval) paper=50.0 ;;
      "Average activation") paper=50.2 ;; Arrow) paper=55.1 ;; Merged) paper=45.4 ;; PHATGOOSE) paper=56.9 ;;
      *) paper="-" ;;
    esac
    echo "| $m | $ours | $paper |"
  done
  echo
  echo "Per task (accuracy %, from report/mini-t0.md):"
  echo
  cat report/mini-t0.md
} >report/mini-t0-vs-paper.md
step "done in $(((SECONDS - start) / 60))m$(((SECONDS - start) % 60))s; report: $PWD/report/mini-t0-vs-paper.md"
cat report/mini-t0-vs-paper.md
