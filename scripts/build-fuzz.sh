#!/usr/bin/env bash
# Builds the libFuzzer targets of test/fuzz/ (clang, AddressSanitizer + UBSan) into
# .native-build/fuzz/ (not build/, which node-gyp rebuild wipes): the checkpoint reader sources
# compiled with the sanitizers, linked against the real ggml-base library of the last native build
# (.native-build/cmake-*, for ggml's type traits and names).
# Exit 0: built. Exit 2: no clang with libFuzzer here. Exit 3: no native build to link ggml from.
# Usage: scripts/build-fuzz.sh [outdir]   (CXX_FUZZ overrides the compiler, default clang++)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/.native-build/fuzz}"
cxx="${CXX_FUZZ:-clang++}"
readers=(file_io json safetensors gguf_file checkpoint family lora_names)
targets=(safetensors gguf checkpoint lora json)
sanitize=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)

mkdir -p "$out/obj"
probe="$out/obj/probe"
if ! command -v "$cxx" >/dev/null 2>&1 ||
   ! printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' |
     "$cxx" -x c++ - -fsanitize=fuzzer,address,undefined -o "$probe" 2>/dev/null; then
  echo "build-fuzz: $cxx cannot build libFuzzer targets (Debian: apt-get install clang)" >&2
  exit 2
fi

# The newest native build from source: its ggml-base library and the ggml headers it came from.
lib=$(ls -t "$root"/.native-build/cmake-*/lib/libggml-base.a 2>/dev/null | head -1 || true)
include=$(ls -d "$root"/.native-build/llama-*/ggml/include 2>/dev/null | head -1 || true)
if [ -z "$lib" ] || [ -z "$include" ]; then
  echo "build-fuzz: no native build in .native-build/ to take ggml from (run npm install first)" >&2
  exit 3
fi
# A private copy, so a native rebuild running meanwhile cannot hand the linker half a file.
cp "$lib" "$out/obj/libggml-base.a"
# Built with gcc's OpenMP where the compiler had it (ggml-quants' iq* tables): link libgomp then.
system_libs=(-lpthread -lm)
if nm "$out/obj/libggml-base.a" 2>/dev/null | grep ' U GOMP_' >/dev/null; then system_libs+=(-lgomp); fi

# The engine's folders all sit on the include path (its files include each other by name alone).
engine_includes=()
while IFS= read -r folder; do engine_includes+=(-I "$folder"); done < <(find "$root/native/engine" -type d)
flags=(-std=c++17 -gline-tables-only -O1 "${sanitize[@]}" "${engine_includes[@]}" -I "$include" -I "$root/test/fuzz")
# Rebuilds an object only when its source or any engine / harness header is newer.
newest_header=$(ls -t $(find "$root/native/engine" -name '*.h') "$root"/test/fuzz/*.h | head -1)
compile() {  # source object [extra flags]
  local source=$1 object=$2
  shift 2
  if [ ! -f "$object" ] || [ "$source" -nt "$object" ] || [ "$newest_header" -nt "$object" ] || [ "$0" -nt "$object" ]; then
    "$cxx" "${flags[@]}" "$@" -c "$source" -o "$object" &
    pids+=($!)
  fi
}
# Waits for every job started since the last call; fails if any did (a compile that ended before
# the wait counts too: `jobs -p` would no longer list it).
wait_all() {
  local status=0 pid
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
  pids=()
  return $status
}
pids=()
for r in "${readers[@]}"; do compile "$(find "$root/native/engine" -name "$r.cpp" | head -1)" "$out/obj/$r.o" -fsanitize=fuzzer-no-link; done
for t in "${targets[@]}"; do compile "$root/test/fuzz/${t}_fuzzer.cpp" "$out/obj/${t}_fuzzer.o" -fsanitize=fuzzer; done
wait_all
objects=()
for r in "${readers[@]}"; do objects+=("$out/obj/$r.o"); done
for t in "${targets[@]}"; do
  "$cxx" "${sanitize[@]}" -fsanitize=fuzzer "$out/obj/${t}_fuzzer.o" "${objects[@]}" "$out/obj/libggml-base.a" \
    "${system_libs[@]}" -o "$out/${t}_fuzzer" &
  pids+=($!)
done
wait_all
echo "build-fuzz: ${targets[*]} in $out"
