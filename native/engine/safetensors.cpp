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

struct TypeEntry {
  const char* name;
  StoredType type;
  size_t size;
};

constexpr TypeEntry kTypes[] = {
    {"F32", StoredType::F32, 4},   {"F16", StoredType::F16, 2},         {"BF16", StoredType::BF16, 2},
    {"F64", StoredType::F64, 8},   {"I64", StoredType::I64, 8},         {"I32", StoredType::I32, 4},
    {"I16", StoredType::I16, 2},   {"I8", StoredType::I8, 1},           {"U8", StoredType::U8, 1},
    {"BOOL", StoredType::BOOL, 1}, {"F8_E4M3", StoredType::F8_E4M3, 1}, {"F8_E5M2", StoredType::F8_E5M2, 1},
};

bool parseStoredType(const std::string& dtype, StoredType& type) {
  for (const TypeEntry& entry : kTypes) {
    if (dtype == entry.name) {
      type = entry.type;
      return true;
    }
  }
  return false;
}

uint64_t requireOffset(const std::string& path, const std::string& name, const JsonValue& v) {
  if (v.kind != JsonValue::Kind::Number || !v.isInteger || v.integer < 0) {
    formatError(path, "tensor '" + name + "' has a data offset that is not a non-negative integer");
  }
  return static_cast<uint64_t>(v.integer);
}

StoredTensor readTensorEntry(const std::string& path, const std::string& name, const JsonValue& entry, uint64_t dataStart,
                             uint64_t dataSize) {
  if (entry.kind != JsonValue::Kind::Object) formatError(path, "tensor '" + name + "' is not a JSON object");
  StoredTensor tensor;
  tensor.name = name;
  const JsonValue* dtype = entry.find("dtype");
  const JsonValue* shape = entry.find("shape");
  const JsonValue* offsets = entry.find("data_offsets");
  if (!dtype || dtype->kind != JsonValue::Kind::String) formatError(path, "tensor '" + name + "' has no dtype");
  if (!parseStoredType(dtype->string, tensor.type)) {
    formatError(path, "tensor '" + name + "' has dtype " + dtype->string + " which is not a safetensors dtype");
  }
  if (!shape || shape->kind != JsonValue::Kind::Array || shape->array.size() > 4) {
    formatError(path, "tensor '" + name + "' has no shape of at most 4 dimensions");
  }
  uint64_t elements = 1;
  for (const JsonValue& d : shape->array) {
    if (d.kind != JsonValue::Kind::Number || !d.isInteger || d.integer < 0 || d.integer > (1ll << 40)) {
      formatError(path, "tensor '" + name + "' has an invalid dimension");
    }
    tensor.shape.push_back(d.integer);
    if (d.integer != 0 && elements > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d.integer)) {
      formatError(path, "tensor '" + name + "' is impossibly large");
    }
    elements *= static_cast<uint64_t>(d.integer);
  }
  if (!offsets || offsets->kind != JsonValue::Kind::Array || offsets->array.size() != 2) {
    formatError(path, "tensor '" + name + "' has no data_offsets [begin, end]");
  }
  uint64_t begin = requireOffset(path, name, offsets->array[0]);
  uint64_t end = requireOffset(path, name, offsets->array[1]);
  if (begin > end || end > dataSize) {
    formatError(path, "tensor '" + name + "' lies outside the file (data_offsets [" + std::to_string(begin) + ", " +
                          std::to_string(end) + "], data section " + std::to_string(dataSize) + " bytes)");
  }
  uint64_t expected = elements * storedTypeSize(tensor.type);
  if (end - begin != expected) {
    formatError(path, "tensor '" + name + "' holds " + std::to_string(end - begin) + " bytes but its shape and dtype need " +
                          std::to_string(expected));
  }
  tensor.offset = dataStart + begin;
  tensor.bytes = expected;
  return tensor;
}

}  // namespace

int64_t StoredTensor::elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

size_t storedTypeSize(StoredType type) {
  for (const TypeEntry& entry : kTypes) {
    if (entry.type == type) return entry.size;
  }
  return 1;
}

const char* storedTypeName(StoredType type) {
  for (const TypeEntry& entry : kTypes) {
    if (entry.type == type) return entry.name;
  }
  return "?";
}

bool isFloatWeightType(StoredType type) {
  return type == StoredType::F32 || type == StoredType::F16 || type == StoredType::BF16;
}

SafetensorsFile readSafetensorsHeader(const std::string& path) {
  SafetensorsFile file;
  file.path = path;
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
