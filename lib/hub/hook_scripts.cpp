// The hook scripts of hooks/, embedded so that `gaggle hub init` installs them from any
// install. Generated from hooks/pre-receive and hooks/pre-push by tests/hub/embed_hooks.sh
// (tests/hub/hub_test.cpp checks that they stay byte-identical): after editing a hook,
// regenerate with  tests/hub/embed_hooks.sh > lib/hub/hook_scripts.cpp
#include "hub/hub.h"

namespace gaggle::hub {

const std::string& pre_receive_hook_script() {
  static const std::string script = R"GAGGLEHOOK(#!/bin/sh
# gaggle pre-receive hook for hub repositories ('gaggle hub init' installs it).
#
# Accepts a push to refs/heads/main only when every change under experts/ adds a new
# experts/<name>/<version>/ bundle that 'gaggle verify' accepts against the hub's trust
# file (signature, trusted signer, file hashes, manifest schema) and whose manifest names
# that same <name> and <version>. Changing or deleting a published version, deleting a
# branch, and bundles outside the layout are rejected.
#
# Configuration (git config in the hub): gaggle.binary (path of gaggle; default: the
# GAGGLE environment variable, then 'gaggle' on PATH), gaggle.trust (allowed-signers
# file, relative to the hub; default allowed_signers).
set -u
zero=0000000000000000000000000000000000000000
hub_dir=$(pwd)
gaggle=${GAGGLE:-$(git config --get gaggle.binary || echo gaggle)}
trust=$(git config --get gaggle.trust || echo allowed_signers)
case "$trust" in /*) ;; *) trust="$hub_dir/$trust" ;; esac

reject() {
  echo "gaggle hub: push rejected: $*" >&2
  exit 1
}

[ -f "$trust" ] || reject "this hub has no trust file ($trust); its admin adds one with 'gaggle hub trust HUB FILE'"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gaggle-hook.XXXXXX") || reject "cannot make a temporary directory"
trap 'rm -rf "$tmp"' EXIT INT TERM

while read -r old new ref; do
  [ "$ref" = refs/heads/main ] || reject "only refs/heads/main can be pushed to a hub (got $ref)"
  [ "$new" = "$zero" ] && reject "deleting $ref is not allowed"
  if [ "$old" = "$zero" ]; then
    git ls-tree -r --name-only "$new" | sed 's/^/A	/' >"$tmp/changes"
  else
    git diff --no-renames --name-status "$old" "$new" >"$tmp/changes"
  fi
  : >"$tmp/bundles"
  while IFS='	' read -r status path; do
    case "$path" in
      experts/README.md) continue ;;
      experts/*) ;;
      *) continue ;;  # hub files outside experts/ (README, hub.json) are the admin's business
    esac
    [ "$status" = A ] || reject "'$path': published versions are immutable (status $status)"
    rest=${path#experts/}
    name=${rest%%/*}; rest=${rest#*/}
    version=${rest%%/*}; file=${rest#*/}
    if [ -z "$name" ] || [ -z "$version" ] || [ "$file" = "$rest" ] || [ -z "$file" ]; then
      reject "'$path' is outside the layout experts/<name>/<version>/<file>"
    fi
    if [ "$old" != "$zero" ] && git cat-file -e "$old:experts/$name/$version" 2>/dev/null; then
      reject "experts/$name/$version is already published; versions are immutable"
    fi
    echo "$name/$version" >>"$tmp/bundles"
  done <"$tmp/changes"

  sort -u "$tmp/bundles" | while read -r nv; do
    name=${nv%%/*}; version=${nv#*/}
    # Every version of the expert: a tensor sent as a delta is rebuilt from an earlier one.
    dir="$tmp/x/experts/$name/$version"
    rm -rf "$tmp/x" && mkdir -p "$tmp/x" || exit 1
    git archive --format=tar "$new" "experts/$name" | tar -x -C "$tmp/x" -f - || {
      echo "gaggle hub: push rejected: cannot read experts/$name/$version" >&2; exit 1; }
    if ! out=$("$gaggle" verify --json --trust "$trust" --allow-remote-files "$dir" 2>"$tmp/verify.err"); then
      echo "gaggle hub: push rejected: experts/$name/$version does not verify:" >&2
      sed 's/^/  /' "$tmp/verify.err" >&2
      exit 1
    fi
    # The manifest must name the folder it sits in.
    echo "$out" | tr -d ' \n' | grep -q "\"name\":\"$name\"" &&
      echo "$out" | tr -d ' \n' | grep -q "\"version\":\"$version\"" || {
      echo "gaggle hub: push rejected: experts/$name/$version holds a manifest for another name or version" >&2
      exit 1; }
    echo "gaggle hub: accepted experts/$name/$version" >&2
  done || exit 1
done
exit 0
)GAGGLEHOOK";
  return script;
}

const std::string& pre_push_hook_script() {
  static const std::string script = R"GAGGLEHOOK(#!/bin/sh
# gaggle pre-push hook for contributors: install it as .git/hooks/pre-push in a clone of
# a hub. Before 'git push' sends anything, every bundle the push adds under
# experts/<name>/<version>/ must pass 'gaggle verify' against your trust file, and no
# published version may change. The hub's own pre-receive hook checks again on arrival;
# this one just tells you first.
#
# Trust file: $GAGGLE_TRUST, else 'git config gaggle.trust'. gaggle: $GAGGLE, else on PATH.
set -u
zero=0000000000000000000000000000000000000000
gaggle=${GAGGLE:-gaggle}
trust=${GAGGLE_TRUST:-$(git config --get gaggle.trust || true)}

reject() {
  echo "gaggle pre-push: $*" >&2
  exit 1
}

[ -n "$trust" ] || reject "no trust file: set GAGGLE_TRUST or 'git config gaggle.trust PATH'"
[ -f "$trust" ] || reject "trust file '$trust' does not exist"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gaggle-pre-push.XXXXXX") || reject "cannot make a temporary directory"
trap 'rm -rf "$tmp"' EXIT INT TERM

while read -r local_ref local_sha remote_ref remote_sha; do
  [ "$local_sha" = "$zero" ] && reject "deleting $remote_ref on a hub is not allowed"
  if [ "$remote_sha" != "$zero" ] && git cat-file -e "$remote_sha^{commit}" 2>/dev/null; then
    git diff --no-renames --name-status "$remote_sha" "$local_sha" >"$tmp/changes"
    base=$remote_sha
  else
    git ls-tree -r --name-only "$local_sha" | sed 's/^/A	/' >"$tmp/changes"
    base=
  fi
  : >"$tmp/bundles"
  while IFS='	' read -r status path; do
    case "$path" in experts/README.md) continue ;; experts/*) ;; *) continue ;; esac
    [ "$status" = A ] || reject "'$path': published versions are immutable (status $status)"
    rest=${path#experts/}; name=${rest%%/*}; rest=${rest#*/}; version=${rest%%/*}
    if [ -n "$base" ] && git cat-file -e "$base:experts/$name/$version" 2>/dev/null; then
      reject "experts/$name/$version is already published; versions are immutable"
    fi
    echo "$name/$version" >>"$tmp/bundles"
  done <"$tmp/changes"
  sort -u "$tmp/bundles" | while read -r nv; do
    mkdir -p "$tmp/x" || exit 1
    # Every version of the expert: a tensor sent as a delta is rebuilt from an earlier one.
    git archive --format=tar "$local_sha" "experts/${nv%%/*}" | tar -x -C "$tmp/x" -f - || exit 1
    if ! "$gaggle" verify --trust "$trust" --allow-remote-files "$tmp/x/experts/$nv" >/dev/null 2>"$tmp/err"; then
      echo "gaggle pre-push: experts/$nv does not verify:" >&2
      sed 's/^/  /' "$tmp/err" >&2
      exit 1
    fi
    rm -rf "$tmp/x"
  done || exit 1
done
exit 0
)GAGGLEHOOK";
  return script;
}

}  // namespace gaggle::hub
