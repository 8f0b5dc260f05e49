// libFuzzer target: any bytes as a LoRA file and as the model it is applied to: each family's table
// of LoRA module names built from the file's tensors (the UNet block places read from the names),
// and every tensor's module name (the name less its last part) turned into kohya's spelling.
#include "checkpoint.h"
#include "fuzz_target.h"
#include "lora.h"
#include "sdnode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const sdnode::Checkpoint file = sdnode::openCheckpoint(fuzz::inputPath(data, size));
    for (const char* family : {"sd1", "sd2", "sdxl", "sdxl-refiner"}) {
      for (const auto& [module, target] : sdnode::loraTargets(family, file)) {
        const auto found = file.tensors.find(target.tensor);
        if (found == file.tensors.end() || found->second.elements() <= 0 || target.firstRow < 0 || target.rows < 0 ||
            target.firstRow + target.rows > found->second.shape.at(0)) {
          std::abort();
        }
      }
      for (const auto& [name, tensor] : file.tensors) {
        const size_t dot = name.rfind('.');
        (void)sdnode::kohyaModuleName(family, name.substr(0, dot == std::string::npos ? name.size() : dot));
      }
    }
  } catch (const sdnode::Error&) {
  }
  return 0;
}
