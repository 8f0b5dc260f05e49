#!/usr/bin/env bash
# Runs before `npm test` (the pretest script): installs the Debian packages the tests drive when
# they are missing and this machine can install them (root with apt-get): chromium for the web
# page's test, redis-server for the scale-out tests, clang (with libFuzzer) for the fuzz smoke.
# Elsewhere it says what to install; the tests that need them then fail with the same hint.
set -uo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v clang++ >/dev/null 2>&1 || missing+=(clang)
[ ${#missing[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "test-deps: installing ${missing[*]} (apt-get)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/dev/null 2>&1 \
    || echo "test-deps: could not install ${missing[*]}; the tests that need them will fail"
else
  echo "test-deps: the tests need ${missing[*]}: install them (e.g. sudo apt-get install ${missing[*]})"
fi
exit 0
