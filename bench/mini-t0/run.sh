#!/usr/bin/env bash
# bench/mini-t0 — the paper's Table 1 (T0 held-out column) in miniature, as one command:
#
#   bench/mini-t0/run.sh [--seeds N] [--first-seed S] [RUN_DIR]   (default: 1 seed, 0, ./mini-t0-run)
#
# On the tiny embedded base (examples/base) and the synthetic suite (gaggle debug
# make-tasks): a LoRA expert and its post-hoc gate for every held-in task, a Multitask
# LoRA on the union of the held-in training data, then on every held-out task (none of
# which any expert was trained on) the base model, Multitask, Oracle, Best individual,
# Retrieval, Average activation, Arrow, Merged, SMEAR and PHATGOOSE, all through `gaggle
# eval`. Three benchmarks are scored: heldout/ (a held-in skill under new wordings, and
# inputs of two segments that need two experts: what the paper's held-out sets ask for),
# compose/ (two skills composed on the same words: a harder benchmark) and heldin/ (each
# expert on its own task, and how well each router finds it).
#
# With --seeds N the whole experiment runs N times, for seeds S, S+1, ..., S+N-1
# (--first-seed S, default 0), seed s in RUN_DIR/seed-s (a suite
# made with --seed s, experts, gates and Multitask trained with --seed s), and
# RUN_DIR/report/summary.md gives every method's mean ± standard deviation over the seeds,
# beside the T0 held-out column of the paper's Table 1.
#
# Steps are resumable: a finished expert (or gate, or suite, or evaluation) is kept.
# Environment (all optional):
#   GAGGLE           the gaggle binary (default: gaggle on PATH, else build/gaggle)
#   GAGGLE_BASE      base model directory (default examples/base)
#   TASKS_DIR        an existing suite directory (default: RUN_DIR/seed-s/tasks, generated)
#   MINI_STEPS       optimiser steps per expert (default 1000)
#   MINI_PATIENCE    stop an expert (and Multitask) once this many validations in a row
#                    are no better than its best (default 0: every step runs)
#   MINI_GATE_STEPS  gate steps (default 100)
#   MINI_MT_STEPS    Multitask steps (default 4 x MINI_STEPS: it sees 12 tasks)
#   MINI_LIMIT       examples per held-out task (default 200; 0: all)
#   MINI_HELDIN_LIMIT examples per held-in task (default 100)
#   MINI_TRAIN       training examples generated per held-in task (default 2000)
#   MINI_DEVICE      cpu | cuda (default cpu)
#   MINI_THREADS     compute threads per command (default 1; 0 = every core)
#   MINI_JOBS        experts trained at the same time (default: the number of cores; their
#                    progress bars are then replaced by the step lines)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [ -z "${GAGGLE:-}" ]; then
  if command -v gaggle >/dev/null 2>&1; then GAGGLE=gaggle; else GAGGLE="$root/build/gaggle"; fi
fi
usage() { sed -n '2,38p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
SEEDS=1
FIRST_SEED=0
RUN=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) [ $# -ge 2 ] || { echo "mini-t0: --seeds needs a number" >&2; exit 2; }; SEEDS="$2"; shift 2 ;;
    --seeds=*) SEEDS="${1#--seeds=}"; shift ;;
    --first-seed) [ $# -ge 2 ] || { echo "mini-t0: --first-seed needs a number" >&2; exit 2; }; FIRST_SEED="$2"; shift 2 ;;
    --first-seed=*) FIRST_SEED="${1#--first-seed=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "mini-t0: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) [ -z "$RUN" ] || { echo "mini-t0: one RUN_DIR only (got '$RUN' and '$1')" >&2; exit 2; }; RUN="$1"; shift ;;
  esac
done
[[ "$SEEDS" =~ ^[1-9][0-9]*$ ]] || { echo "mini-t0: --seeds takes a whole number >= 1, got '$SEEDS'" >&2; exit 2; }
[[ "$FIRST_SEED" =~ ^(0|[1-9][0-9]{0,8})$ ]] ||
  { echo "mini-t0: --first-seed takes a whole number >= 0, got '$FIRST_SEED'" >&2; exit 2; }
RUN="${RUN:-mini-t0-run}"
BASE="${GAGGLE_BASE:-$root/examples/base}"
STEPS="${MINI_STEPS:-1000}"
GATE_STEPS="${MINI_GATE_STEPS:-100}"
PATIENCE="${MINI_PATIENCE:-0}"
MT_STEPS="${MINI_MT_STEPS:-$((4 * STEPS))}"
LIMIT="${MINI_LIMIT:-200}"
HELDIN_LIMIT="${MINI_HELDIN_LIMIT:-100}"
TRAIN="${MINI_TRAIN:-2000}"
DEVICE="${MINI_DEVICE:-cpu}"
THREADS="${MINI_THREADS:-1}"
JOBS="${MINI_JOBS:-$(nproc)}"
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || { echo "mini-t0: MINI_JOBS takes a whole number >= 1, got '$JOBS'" >&2; exit 2; }
QUIET=""
[ "$JOBS" -le 1 ] || QUIET="--quiet"
ROUTERS="phatgoose,arrow,average-activation,retrieval,merged,smear"
# The rows of the tables, in the paper's order, with its T0 held-out column.
METHODS=("Base" "Multitask" "Oracle" "Best individual" "Retrieval" "Average activation" "Arrow" "Merged" "SMEAR" "PHATGOOSE")
paper() {
  case "$1" in
    Multitask) echo 51.6 ;; Oracle) echo 57.2 ;; "Best individual") echo 52.8 ;; Retrieval) echo 50.0 ;;
    "Average activation") echo 50.2 ;; Arrow) echo 55.1 ;; Merged) echo 45.4 ;; PHATGOOSE) echo 56.9 ;; *) echo "-" ;;
  esac
}

start=$SECONDS
step() { printf '\n==> [%dm%02ds] %s\n' $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)) "$*" >&2; }
command -v jq >/dev/null 2>&1 || { echo "mini-t0: needs jq (apt-get install jq)" >&2; exit 1; }
mkdir -p "$RUN"
RUN="$(cd "$RUN" && pwd)"
[ -z "${TASKS_DIR:-}" ] || TASKS_DIR="$(cd "$TASKS_DIR" && pwd)"

# One whole experiment with seed $1 in directory $2.
run_seed() {
  local seed="$1" dir="$2"
  mkdir -p "$dir"
  cd "$dir"
  local tasks="${TASKS_DIR:-$dir/tasks}"
  if [ ! -f "$tasks/suite.json" ]; then
    step "seed $seed: generating the synthetic task suite"
    "$GAGGLE" debug make-tasks --out "$tasks" --seed "$seed" --train "$TRAIN" --force
  fi
  local held_in held_out
  mapfile -t held_in < <(jq -r '.held_in[].name' "$tasks/suite.json")
  mapfile -t held_out < <(jq -r '.held_out[].name' "$tasks/suite.json")
  step "seed $seed: ${#held_in[@]} held-in tasks (${held_in[*]}); ${#held_out[@]} held-out tasks"

  # One expert and its gate; MINI_JOBS of them at a time (each with MINI_THREADS threads).
  train_one() {
    local t="$1" i="$2"
    if [ ! -f "experts/$t/manifest.json" ]; then
      step "seed $seed: expert $i/${#held_in[@]}: '$t' ($STEPS steps)"
      "$GAGGLE" train-expert --base "$BASE" --data "$tasks/train/$t.jsonl" --valid "$tasks/validation/$t.jsonl" \
        --out "experts/$t" --name "$t" --steps "$STEPS" --patience "$PATIENCE" --batch-size 16 --eval-every 100 --save-every 0 \
        --log-every 50 --seed "$seed" --device "$DEVICE" --threads "$THREADS" --force $QUIET
    fi
    if [ "$(jq -r .method "experts/$t/manifest.json")" != phatgoose ]; then
      step "seed $seed: gate $i/${#held_in[@]}: '$t' ($GATE_STEPS steps)"
      "$GAGGLE" train-gate --base "$BASE" --expert "experts/$t" --data "$tasks/train/$t.jsonl" --steps "$GATE_STEPS" \
        --batch-size 16 --save-every 0 --seed "$seed" --avg-act-examples 500 --embed-examples 500 \
        --device "$DEVICE" --threads "$THREADS" $QUIET
    fi
  }
  local i=0 t running=0 failed=0
  for t in "${held_in[@]}"; do
    i=$((i + 1))
    if [ "$JOBS" -le 1 ]; then
      train_one "$t" "$i"
      continue
    fi
    if [ "$running" -ge "$JOBS" ]; then
      wait -n || failed=1
      running=$((running - 1))
    fi
    train_one "$t" "$i" &
    running=$((running + 1))
  done
  while [ "$running" -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
  done
  [ "$failed" = 0 ] || { echo "mini-t0: an expert or gate failed (see above)" >&2; exit 1; }

  if [ ! -f multitask/manifest.json ]; then
    step "seed $seed: Multitask, one LoRA on the union of the held-in training data ($MT_STEPS steps)"
    mkdir -p multitask-data
    for t in "${held_in[@]}"; do cat "$tasks/train/$t.jsonl"; done >multitask-data/train.jsonl
    for t in "${held_in[@]}"; do head -n 20 "$tasks/validation/$t.jsonl"; done >multitask-data/valid.jsonl
    "$GAGGLE" train-expert --base "$BASE" --data multitask-data/train.jsonl --valid multitask-data/valid.jsonl \
      --out multitask --name multitask --steps "$MT_STEPS" --patience "$PATIENCE" --batch-size 16 --eval-every 200 --save-every 0 \
      --log-every 50 --seed "$seed" --device "$DEVICE" --threads "$THREADS" --force
  fi

  # Held-out benchmarks (limit LIMIT) and the held-in one (limit HELDIN_LIMIT, which shows
  # each expert on its own task and how often each router finds it).
  local benches=()
  [ -d "$tasks/heldout" ] && benches+=("$tasks/heldout")
  [ -d "$tasks/compose" ] && benches+=("$tasks/compose")
  if [ ! -f report/mini-t0.json ]; then
    step "seed $seed: evaluating every method on ${benches[*]##*/} (limit $LIMIT examples per task)"
    "$GAGGLE" eval --base "$BASE" --pool experts --routers "$ROUTERS" --single-experts --multitask multitask \
      --with-base --tasks "${benches[@]}" --limit "$LIMIT" --seed "$seed" --device "$DEVICE" --threads "$THREADS" \
      --report report/mini-t0.json
  fi
  if [ -d "$tasks/heldin" ] && [ ! -f report/heldin.json ]; then
    step "seed $seed: the held-in benchmark (limit $HELDIN_LIMIT)"
    "$GAGGLE" eval --base "$BASE" --pool experts --routers "$ROUTERS" --single-experts --with-base \
      --tasks "$tasks/heldin" --limit "$HELDIN_LIMIT" --seed "$seed" --device "$DEVICE" --threads "$THREADS" \
      --report report/heldin.json
  fi
}

for ((s = FIRST_SEED; s < FIRST_SEED + SEEDS; s++)); do
  run_seed "$s" "$RUN/seed-$s"
done
cd "$RUN"
mkdir -p report

# Every (method, benchmark) mean of every seed -> mean ± sample standard deviation.
reports=()
heldins=()
for ((s = FIRST_SEED; s < FIRST_SEED + SEEDS; s++)); do
  reports+=("seed-$s/report/mini-t0.json")
  [ -f "seed-$s/report/heldin.json" ] && heldins+=("seed-$s/report/heldin.json")
done
reports+=("${heldins[@]}")
jq -s '[.[] | .means[]] | group_by([.method, .benchmark]) | map({
         method: .[0].method, benchmark: .[0].benchmark, n: length,
         values: map(.value * 100),
         mean: (map(.value * 100) | add / length),
         std: (if length > 1 then (map(.value * 100) | (add / length) as $m | map((. - $m) * (. - $m)) | add / (length - 1) | sqrt) else 0 end)})' \
  "${reports[@]}" >report/summary.json
mapfile -t benches < <(jq -r '[.[].benchmark] | unique | .[]' report/summary.json)
cell() {  # method benchmark -> "mean ± std" (or "-")
  jq -r --arg m "$1" --arg b "$2" --argjson n "$SEEDS" \
    '[.[] | select(.method == $m and .benchmark == $b)] | first |
     if . == null then "-" elif $n > 1 then "\(.mean * 10 | round / 10) ± \(.std * 10 | round / 10)"
     else "\(.mean * 10 | round / 10)" end' report/summary.json
}
{
  echo "# mini-T0: the paper's Table 1 in miniature"
  echo
  stop=""
  [ "$PATIENCE" = 0 ] || stop=", stopped after $PATIENCE validations without a better one"
  first_seed_arg=""
  [ "$FIRST_SEED" = 0 ] || first_seed_arg=" --first-seed $FIRST_SEED"
  echo "Base: $BASE; $SEEDS seed(s); experts $STEPS steps (batch 16$stop), gates $GATE_STEPS steps, Multitask $MT_STEPS steps;"
  echo "held-out tasks scored on $LIMIT examples each, held-in tasks on $HELDIN_LIMIT. Command: bench/mini-t0/run.sh --seeds $SEEDS$first_seed_arg"
  [ "$SEEDS" -gt 1 ] && echo "Cells: mean ± sample standard deviation over the seeds, accuracy %."
  echo
  header="| Method |"
  rule="|---|"
  for b in "${benches[@]}"; do header+=" $b |"; rule+="---:|"; done
  echo "$header paper, T0 held-out |"
  echo "$rule---:|"
  for m in "${METHODS[@]}"; do
    row="| $m |"
    for b in "${benches[@]}"; do row+=" $(cell "$m" "$b") |"; done
    echo "$row $(paper "$m") |"
  done
  echo
  echo "Oracle, Best individual and Multitask are not zero-shot (they use held-out labels or every task's data)."
  if [ "${#heldins[@]}" -gt 0 ]; then
    echo
    echo "## Each expert on its own held-in task (accuracy %, held-in evaluation split)"
    echo
    echo "| task | expert | PHATGOOSE | Retrieval |"
    echo "|---|---:|---:|---:|"
    jq -rs '[.[] | .rows[]] | group_by(.task) | .[] | .[0].task as $t |
      def avg(m): [.[] | select(.method == m) | .value * 100] | if length == 0 then "-" else (add / length * 10 | round / 10 | tostring) end;
      "| \($t) | \(avg("Single \($t)@1.0.0")) | \(avg("PHATGOOSE")) | \(avg("Retrieval")) |"' "${heldins[@]}"
  fi
  echo
  echo "## How the routers route"
  echo
  echo "Share of the top-k token slots that go to the task's oracle expert (the best single expert on it), slot-weighted over every"
  echo "layer and averaged over the benchmark's tasks and the seeds (k = 2: at most 50%; uniform over N experts: 100/N %)."
  echo "Share entropy: the entropy of the task's slot shares per layer over log N (1: every expert equally often), averaged likewise."
  echo
  echo "| Router | benchmark | oracle share (%) | share entropy |"
  echo "|---|---|---:|---:|"
  jq -rs '[.[] | .routing // [] | .[]] | group_by([.method, .benchmark]) | .[] |
    "| \(.[0].method) | \(.[0].benchmark) | \([.[] | .oracle_share // empty] | if length == 0 then "-" else (add / length * 1000 | round / 10 | tostring) end) | \([.[] | .layers[] | .entropy] | add / length * 100 | round / 100) |"' \
    "${reports[@]}"
  for ((s = FIRST_SEED; s < FIRST_SEED + SEEDS; s++)); do
    echo
    echo "## Seed $s, per task"
    echo
    cat "seed-$s/report/mini-t0.md"
  done
} >report/summary.md
step "done in $(((SECONDS - start) / 60))m$(((SECONDS - start) % 60))s; report: $RUN/report/summary.md"
cat report/summary.md
