// libFuzzer target: any bytes as a .safetensors file. The reader may only answer with a checkpoint
// or an sdnode::Error; anything else (a crash, a sanitizer report, another exception) is a finding.
#include "fuzz_target.h"
#include "safetensors.h"
#include "sdnode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    fuzz::checkTensors(sdnode::readSafetensors(fuzz::inputPath(data, size)));
  } catch (const sdnode::Error&) {
  }
  return 0;
}
