# shellcheck shell=bash
# The registry fixture of the registry end-to-end tests (registry_auth_test.sh,
# registry_resolve_test.sh): registries started with hack/registry.sh under the test's $work, taken
# down by the EXIT trap. Sourced after lib/checks.sh; the test sets repo, work, basic_dir,
# token_dir and password (handed to hack/registry.sh through the environment, never on a command
# line; set before the first `up`).
: "${repo:?}" "${work:?}" "${basic_dir:?}" "${token_dir:?set them before sourcing lib/registry.sh}"

# shellcheck disable=SC2317 # invoked by the EXIT trap
registry_cleanup() {
  bash "$repo/hack/registry.sh" down --dir "$basic_dir" >/dev/null 2>&1 || true
  bash "$repo/hack/registry.sh" down --dir "$token_dir" >/dev/null 2>&1 || true
  rm -rf "$work"
}

# up DIR PORT OPTIONS...: hack/registry.sh up; its export lines in DIR.up.out, evaluated into reg,
# ca, cert_dir, authfile and realm_env. A failure ends the test.
up() {
  local d=$1 p=$2 out
  shift 2
  if ! out=$(ROLLGATE_REGISTRY_PASSWORD=$password bash "$repo/hack/registry.sh" up --dir "$d" --port "$p" "$@" \
    2>"$d.up.err"); then
    fail "hack/registry.sh up $*: $(one_line "$(cat "$d.up.err")")"
    finish
  fi
  echo "$out" >"$d.up.out"
  reg=$(sed -n 's/^export ROLLGATE_REGISTRY=//p' <<<"$out")
  ca=$(sed -n 's/^export ROLLGATE_REGISTRY_CA=//p' <<<"$out")
  cert_dir=$(sed -n 's/^export ROLLGATE_REGISTRY_CERT_DIR=//p' <<<"$out")
  authfile=$(sed -n 's/^export ROLLGATE_REGISTRY_AUTHFILE=//p' <<<"$out")
  realm_env=$(sed -n 's/^export ROLLGATE_REGISTRY_TOKEN_REALM=//p' <<<"$out")
}
