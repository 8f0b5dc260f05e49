#include "safetensors.h"

#include <cstdio>
#include <limits>

#include "file_io.h"
#include "json.h"
#include "sdnode.h"

namespace sdnode {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

[[noreturn]] void formatError(const std::string& path, const std::string& what) {
  throw Error(ErrorCode::ModelFormat, path + ": " + what);
}

struct DtypeEntry {
  const char* name;
  ggml_type type;  // GGML_TYPE_COUNT: ggml has no such type
  uint64_t size;
};

constexpr DtypeEntry kDtypes[] = {
    {"F32", GGML_TYPE_F32, 4},       {"F16", GGML_TYPE_F16, 2},         {"BF16", GGML_TYPE_BF16, 2},
    {"F64", GGML_TYPE_F64, 8},       {"I64", GGML_TYPE_I64, 8},         {"I32", GGML_TYPE_I32, 4},
    {"I16", GGML_TYPE_I16, 2},       {"I8", GGML_TYPE_I8, 1},           {"U8", GGML_TYPE_COUNT, 1},
    {"BOOL", GGML_TYPE_COUNT, 1},    {"F8_E4M3", GGML_TYPE_COUNT, 1},   {"F8_E5M2", GGML_TYPE_COUNT, 1},
};

const DtypeEntry* findDtype(const std::string& dtype) {
  for (const DtypeEntry& entry : kDtypes) {
    if (dtype == entry.name) return &entry;
  }
  return nullptr;
}

uint64_t requireOffset(const std::string& path, const std::string& name, const JsonValue& v) {
  if (v.kind != JsonValue::Kind::Number || !v.isInteger || v.integer < 0) {
    formatError(path, "tensor '" + name + "' has a data offset that is not a non-negative integer");
  }
  return static_cast<uint64_t>(v.integer);
}

CheckpointTensor readTensorEntry(const std::string& path, const std::string& name, const JsonValue& entry, uint64_t dataStart,
                                 uint64_t dataSize) {
  if (entry.kind != JsonValue::Kind::Object) formatError(path, "tensor '" + name + "' is not a JSON object");
  CheckpointTensor tensor;
  tensor.name = name;
  const JsonValue* dtype = entry.find("dtype");
  const JsonValue* shape = entry.find("shape");
  const JsonValue* offsets = entry.find("data_offsets");
  if (!dtype || dtype->kind != JsonValue::Kind::String) formatError(path, "tensor '" + name + "' has no dtype");
  const DtypeEntry* stored = findDtype(dtype->string);
  if (!stored) formatError(path, "tensor '" + name + "' has dtype " + dtype->string + " which is not a safetensors dtype");
  tensor.type = stored->type;
  tensor.typeName = stored->name;
  if (!shape || shape->kind != JsonValue::Kind::Array || shape->array.size() > 4) {
    formatError(path, "tensor '" + name + "' has no shape of at most 4 dimensions");
  }
  // The product of the non-zero extents must fit in int64_t, the type shapes and element counts
  // have everywhere else, whatever order they are multiplied in: [2^40, 2^23, 0] holds no data,
  // yet its first two extents already wrap a signed product.
  uint64_t extentProduct = 1;
  bool empty = false;
  for (const JsonValue& d : shape->array) {
    if (d.kind != JsonValue::Kind::Number || !d.isInteger || d.integer < 0 || d.integer > (1ll << 40)) {
      formatError(path, "tensor '" + name + "' has an invalid dimension");
    }
    tensor.shape.push_back(d.integer);
    if (d.integer == 0) {
      empty = true;
      continue;
    }
    if (extentProduct > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / static_cast<uint64_t>(d.integer)) {
      formatError(path, "tensor '" + name + "' is impossibly large");
    }
    extentProduct *= static_cast<uint64_t>(d.integer);
  }
  const uint64_t elements = empty ? 0 : extentProduct;
  if (!offsets || offsets->kind != JsonValue::Kind::Array || offsets->array.size() != 2) {
    formatError(path, "tensor '" + name + "' has no data_offsets [begin, end]");
  }
  uint64_t begin = requireOffset(path, name, offsets->array[0]);
  uint64_t end = requireOffset(path, name, offsets->array[1]);
  if (begin > end || end > dataSize) {
    formatError(path, "tensor '" + name + "' lies outside the file (data_offsets [" + std::to_string(begin) + ", " +
                          std::to_string(end) + "], data section " + std::to_string(dataSize) + " bytes)");
  }
  if (elements > std::numeric_limits<uint64_t>::max() / stored->size) formatError(path, "tensor '" + name + "' is impossibly large");
  const uint64_t expected = elements * stored->size;
  if (end - begin != expected) {
    formatError(path, "tensor '" + name + "' holds " + std::to_string(end - begin) + " bytes but its shape and dtype need " +
                          std::to_string(expected));
  }
  tensor.offset = dataStart + begin;
  tensor.bytes = expected;
  return tensor;
}

}  // namespace

Checkpoint readSafetensors(const std::string& path) {
  Checkpoint file;
  file.path = path;
  file.format = "safetensors";
  InputFile input(path);
  file.fileSize = input.size();
  if (file.fileSize < 8) formatError(path, "file is " + std::to_string(file.fileSize) + " bytes, too short for a safetensors header");
  uint8_t lengthBytes[8];
  input.readAt(0, lengthBytes, 8);
  uint64_t headerBytes = 0;
  for (int i = 7; i >= 0; i--) headerBytes = (headerBytes << 8) | lengthBytes[i];
  if (headerBytes == 0 || headerBytes > kMaxHeaderBytes || headerBytes > file.fileSize - 8) {
    formatError(path, "header length " + std::to_string(headerBytes) + " does not fit in a file of " + std::to_string(file.fileSize) +
                          " bytes (not a safetensors file, or truncated)");
  }
  std::string headerText(headerBytes, '\0');
  input.readAt(8, headerText.data(), headerBytes);
  JsonValue header;
  try {
    header = parseJson(headerText);
  } catch (const std::exception& e) {
    formatError(path, std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (header.kind != JsonValue::Kind::Object) formatError(path, "header is not a JSON object");
  uint64_t dataStart = 8 + headerBytes;
  uint64_t dataSize = file.fileSize - dataStart;
  for (const auto& [name, entry] : header.object) {
    if (name == "__metadata__") {
      if (entry.kind != JsonValue::Kind::Object) formatError(path, "__metadata__ is not an object");
      for (const auto& [key, value] : entry.object) {
        if (value.kind == JsonValue::Kind::String) file.metadata[key] = value.string;
      }
      continue;
    }
    if (file.tensors.count(name)) formatError(path, "tensor '" + name + "' appears twice");
    file.tensors[name] = readTensorEntry(path, name, entry, dataStart, dataSize);
  }
  if (file.tensors.empty()) formatError(path, "holds no tensors");
  return file;
}

}  // namespace sdnode
