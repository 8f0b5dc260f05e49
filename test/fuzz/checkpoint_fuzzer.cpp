// libFuzzer target: any bytes as a model file, the way loading sees it: the reader chosen by the
// magic, the alias and OpenCLIP renames, the family detection and the choice of model weights.
#include "checkpoint.h"
#include "family.h"
#include "fuzz_target.h"
#include "sdnode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const sdnode::Checkpoint file = sdnode::openCheckpoint(fuzz::inputPath(data, size));
    fuzz::checkTensors(file);
    for (const auto& [name, tensor] : file.tensors) (void)sdnode::isModelWeight(tensor);
    (void)sdnode::detectFamily(file);
  } catch (const sdnode::Error&) {
  }
  return 0;
}
