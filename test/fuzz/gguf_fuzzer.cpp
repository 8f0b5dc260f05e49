// libFuzzer target: any bytes as a .gguf file (the harness adds nothing to the magic: the mutator
// learns "GGUF" from the seeds). Only a checkpoint or an sdnode::Error may come back.
#include "fuzz_target.h"
#include "gguf_file.h"
#include "sdnode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    fuzz::checkTensors(sdnode::readGguf(fuzz::inputPath(data, size)));
  } catch (const sdnode::Error&) {
  }
  return 0;
}
