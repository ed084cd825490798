#!/usr/bin/env bash
# One entry point for a fresh Debian/Ubuntu machine with Python 3.11:
#   bash scripts/dev.sh run    - the service on :8080 with an embedded Redis and the demo config
#   bash scripts/dev.sh test   - the whole test suite (REDIS_URL if set, else an embedded Redis),
#                                then the queueing, callbacks and statistics suites again on a
#                                local 3-master Redis Cluster (the cluster pass, see below)
#   bash scripts/dev.sh lint   - ruff and mypy
# Each creates .venv and installs what it needs first (system packages via apt-get as root).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv
SYSTEM_PACKAGES=(python3-venv python3-dev gcc espeak-ng sox redis-server)
TEST_PACKAGES=(chromium)  # the wallboard browser test

missing_system_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  echo "${missing[@]:-}"
}

ensure_system() {
  command -v dpkg-query >/dev/null 2>&1 || return 0
  local missing
  missing=$(missing_system_packages "$@")
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages: $missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "please install these system packages first: sudo apt-get install $missing" >&2
    # espeak-ng and sox only enable pre-rendered prompts and speech tests; keep going.
  fi
}

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  local stamp="$VENV/.installed"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e '.[test]'
    touch "$stamp"
  fi
}

# The suites that run a second time on a local 3-master Redis Cluster that the tests start
# from redis-server (tests/conftest.py, HOTLINE_TEST_REDIS=cluster).
CLUSTER_SUITES=(tests/queueing tests/callbacks tests/supervisors/test_stats.py
  tests/supervisors/test_stats_snapshot.py tests/supervisors/test_stats_gzip.py
  tests/supervisors/test_sampler_lease.py)

names_tests() {  # true when an argument is a test path (tests/x, tests/x.py::name)
  for arg in "$@"; do
    [ -e "${arg%%::*}" ] && return 0
  done
  return 1
}

cluster_pass() {
  if names_tests "$@"; then
    echo "cluster pass: skipped (specific tests named; HOTLINE_TEST_REDIS=cluster $VENV/bin/pytest <tests> runs them on a local cluster)"
    return 0
  fi
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    echo "cluster pass: SKIPPED, redis-server/redis-cli not installed (apt-get install redis-server)"
    return 0
  fi
  echo "=== cluster pass: ${CLUSTER_SUITES[*]} on a local 3-master Redis Cluster ==="
  local start=$SECONDS rc=0
  HOTLINE_TEST_REDIS=cluster "$VENV/bin/python" -m pytest "$@" "${CLUSTER_SUITES[@]}" || rc=$?
  [ "$rc" = 5 ] && rc=0  # pytest's "no tests collected": the options (-k ...) selected none here
  echo "=== cluster pass: $([ "$rc" = 0 ] && echo passed || echo "FAILED (exit $rc)") in $((SECONDS - start)) s ==="
  return "$rc"
}

cmd="${1:-}"
shift || true
case "$cmd" in
  run)
    ensure_system "${SYSTEM_PACKAGES[@]}"
    ensure_venv
    exec "$VENV/bin/hotline" serve "$@"
    ;;
  test)
    ensure_system "${SYSTEM_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
    ensure_venv
    rc=0
    "$VENV/bin/python" -m pytest "$@" || rc=$?
    cluster_rc=0
    cluster_pass "$@" || cluster_rc=$?
    [ "$rc" = 0 ] || exit "$rc"
    exit "$cluster_rc"
    ;;
  lint)
    ensure_venv
    "$VENV/bin/ruff" check .
    "$VENV/bin/mypy"
    ;;
  *)
    echo "usage: bash scripts/dev.sh run|test|lint [args]" >&2
    exit 2
    ;;
esac
