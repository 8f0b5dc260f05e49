// Reader for .safetensors files: validates the header against the file before any tensor read.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sdnode {

// Float types load; the others are recognised (so real checkpoints with integer side tensors such as
// position_ids open) but cannot be used as weights.
enum class StoredType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL, F8_E4M3, F8_E5M2 };

struct StoredTensor {
  std::string name;
  StoredType type = StoredType::F32;
  std::vector<int64_t> shape;  // as stored: outermost first ([out, in, kh, kw])
  uint64_t offset = 0;         // absolute file offset of the first byte
  uint64_t bytes = 0;
  int64_t elements() const;
};

struct SafetensorsFile {
  std::string path;
  uint64_t fileSize = 0;
  std::map<std::string, std::string> metadata;
  std::map<std::string, StoredTensor> tensors;
};

// Throws sdnode::Error (ModelIo / ModelFormat) naming the file and the offending tensor.
SafetensorsFile readSafetensorsHeader(const std::string& path);

size_t storedTypeSize(StoredType type);
const char* storedTypeName(StoredType type);
bool isFloatWeightType(StoredType type);  // F32, F16, BF16

}  // namespace sdnode
