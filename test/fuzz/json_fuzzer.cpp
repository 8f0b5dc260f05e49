// libFuzzer target: any bytes as JSON text (a safetensors header). The parser documents
// std::runtime_error for bad input; bounded depth means no stack overflow whatever the nesting.
#include <stdexcept>
#include <string>

#include "json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)sdnode::parseJson(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const std::runtime_error&) {
  }
  return 0;
}
