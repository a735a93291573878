#!/usr/bin/env bash
# Build the libFuzzer targets with clang, ASan and UBSan, straight from the
# sources (localapi/*.c, mod_authnz_tailscale/azt_authz.c and azt_rules.c for fuzz_require,
# azt_entry.c for fuzz_shared_entry):
# no configure, nothing shared with the main build.
#
#   test/fuzz/build.sh [--out DIR] [TARGET...]     (default DIR: out/fuzz)
#
# Binaries land in DIR/bin/<target>.  Exits 77 (and says why) when clang or
# its fuzzer runtime is missing: install the Debian packages clang and
# libclang-rt-dev (build/setup does).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/../.." && pwd)"
out="$top/out/fuzz"
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$here"/fuzz_*.c; do
    t="$(basename "$f" .c)"
    [ "$t" = fuzz_common ] || targets+=("$t")
  done
fi

CC="${FUZZ_CC:-clang}"
if ! command -v "$CC" >/dev/null 2>&1; then
  echo "build.sh: $CC not found: install the Debian packages clang and libclang-rt-dev" >&2
  exit 77
fi
probe="$(mktemp -d)"
trap 'rm -rf "$probe"' EXIT
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n){(void)d;(void)n;return 0;}\n' \
  > "$probe/p.c"
if ! "$CC" -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" 2>"$probe/err"; then
  echo "build.sh: $CC cannot link libFuzzer with ASan/UBSan (install libclang-rt-dev):" >&2
  cat "$probe/err" >&2
  exit 77
fi

mkdir -p "$out/obj" "$out/bin" "$out/include"
# One build at a time per output directory (test runs may overlap); binaries
# are replaced by rename, so a fuzzer running from an earlier build is not
# disturbed.
exec 9>"$out/.lock"
flock 9
[ -f "$out/include/config.h" ] || : > "$out/include/config.h"   # defaults suffice here

SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CPPFLAGS="-I$top/localapi -I$here -I$out/include $(apr-1-config --cppflags --includes) \
$(apu-1-config --includes) $(pkg-config --cflags jansson libcurl libcrypto)"
CFLAGS="-std=gnu11 -g -O1 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers $SAN"
LIBS="$(apr-1-config --link-ld --libs) $(apu-1-config --link-ld --libs) \
$(pkg-config --libs jansson libcurl libcrypto)"
HTTPD_INC="-I$(apxs -q INCLUDEDIR 2>/dev/null || echo /usr/include/apache2) -I$top/mod_authnz_tailscale"

# Compile src into obj when obj is missing or older than the source or any
# header it could include.
compile() {
  local src="$1" obj="$2"; shift 2
  local newest
  newest="$(ls -t "$src" "$top"/localapi/*.h "$here"/*.h "$top"/mod_authnz_tailscale/*.[ch] \
            "$0" 2>/dev/null | head -1)"
  if [ ! -f "$obj" ] || [ "$newest" -nt "$obj" ]; then
    # shellcheck disable=SC2086
    "$CC" $CFLAGS -fsanitize=fuzzer-no-link $CPPFLAGS "$@" -c "$src" -o "$obj.tmp.$$"
    mv -f "$obj.tmp.$$" "$obj"
  fi
}

objs=()
for src in "$top"/localapi/*.c "$here/fuzz_common.c"; do
  obj="$out/obj/$(basename "$src" .c).o"
  compile "$src" "$obj" &
  objs+=("$obj")
done
wait_all() { local rc=0; for j in $(jobs -p); do wait "$j" || rc=1; done; return $rc; }
wait_all || { echo "build.sh: compiling the library failed" >&2; exit 1; }

for t in "${targets[@]}"; do
  src="$here/$t.c"
  [ -f "$src" ] || { echo "build.sh: no such target $t ($src)" >&2; exit 2; }
  extra=""
  [ "$t" = fuzz_require ] && extra="$HTTPD_INC"
  # shellcheck disable=SC2086
  compile "$src" "$out/obj/$t.o" $extra
  bin="$out/bin/$t"
  if [ ! -x "$bin" ] || [ -n "$(find "$out/obj/$t.o" "${objs[@]}" -newer "$bin" -print -quit)" ]; then
    # shellcheck disable=SC2086
    "$CC" $CFLAGS -fsanitize=fuzzer "$out/obj/$t.o" "${objs[@]}" $LIBS -o "$bin.tmp.$$"
    mv -f "$bin.tmp.$$" "$bin"
    echo "built $bin"
  else
    echo "up to date: $bin"
  fi
done
