#!/usr/bin/env bash
# Train, gate and publish one expert, non-interactively (a CI job, a cron job, a script).
#
# Everything comes from the environment; nothing is ever asked on a terminal:
#   GAGGLE_SIGNING_KEY   the Ed25519 private key (OpenSSH format) as text, from a CI secret;
#                        or GAGGLE_SIGNING_KEY_FILE, a path to it
#   GAGGLE_HUB           the hub URL (path, file://, git://, https://, ssh://)
#   GAGGLE_TRUST         allowed-signers file the bundle must verify against before it leaves
#   EXPERT_NAME, EXPERT_VERSION
#   BASE_MODEL, TRAIN_DATA   base checkpoint directory and training JSONL (train-expert, train-gate)
# Optional:
#   GAGGLE               the gaggle binary (default: gaggle on PATH)
#   GAGGLE_TOKEN or GAGGLE_USER + GAGGLE_PASSWORD   HTTP(S) hub credentials (never printed)
#   GAGGLE_BLOB_STORE    HTTP(S) blob store for adapters over GAGGLE_BLOB_THRESHOLD (default 10MB)
#   TRAIN_STEPS, GATE_STEPS  (defaults 1000 and 100, the paper's)
#   EXPERT_DIR           where the bundle is built (default: ./out/$EXPERT_NAME)
#   SKIP_TRAINING=1      publish an EXPERT_DIR that is already trained and gated
#
# Exit status: 0 published; 1 something failed (the message says what); 2 misconfigured.
set -euo pipefail
exec </dev/null  # no prompts, ever: nothing here reads a terminal

die() { echo "publish-expert: $*" >&2; exit 2; }
need() { [ -n "${!1:-}" ] || die "set $1"; }
need GAGGLE_HUB
need GAGGLE_TRUST
need EXPERT_NAME
need EXPERT_VERSION
gaggle=${GAGGLE:-gaggle}
expert_dir=${EXPERT_DIR:-out/$EXPERT_NAME}

# The key: from a secret's text into a private temporary file, removed on exit.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -n "${GAGGLE_SIGNING_KEY:-}" ]; then
  (umask 077 && printf '%s\n' "$GAGGLE_SIGNING_KEY" >"$work/signing_key")
  key="$work/signing_key"
elif [ -n "${GAGGLE_SIGNING_KEY_FILE:-}" ]; then
  key=$GAGGLE_SIGNING_KEY_FILE
else
  die "set GAGGLE_SIGNING_KEY (the key's text, from a secret) or GAGGLE_SIGNING_KEY_FILE"
fi

if [ "${SKIP_TRAINING:-0}" != 1 ]; then
  need BASE_MODEL
  need TRAIN_DATA
  echo "publish-expert: training $EXPERT_NAME@$EXPERT_VERSION" >&2
  "$gaggle" train-expert --base "$BASE_MODEL" --data "$TRAIN_DATA" --out "$expert_dir" \
    --name "$EXPERT_NAME" --version "$EXPERT_VERSION" --steps "${TRAIN_STEPS:-1000}" --force --quiet
  echo "publish-expert: training the gate" >&2
  "$gaggle" train-gate --base "$BASE_MODEL" --expert "$expert_dir" --data "$TRAIN_DATA" \
    --steps "${GATE_STEPS:-100}" --quiet
fi
[ -f "$expert_dir/manifest.json" ] || die "no bundle in $expert_dir"

blob_args=()
if [ -n "${GAGGLE_BLOB_STORE:-}" ]; then
  blob_args=(--blob-store "$GAGGLE_BLOB_STORE" --blob-threshold "${GAGGLE_BLOB_THRESHOLD:-10MB}")
fi
echo "publish-expert: signing, verifying and publishing to $GAGGLE_HUB" >&2
"$gaggle" publish "$expert_dir" --hub "$GAGGLE_HUB" --key "$key" --trust "$GAGGLE_TRUST" \
  "${blob_args[@]}" --json --quiet -m "published by ${CI_JOB_URL:-${GITHUB_SERVER_URL:-}${GITHUB_REPOSITORY:+/$GITHUB_REPOSITORY/actions/runs/${GITHUB_RUN_ID:-}}}"
