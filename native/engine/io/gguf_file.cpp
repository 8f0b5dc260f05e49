#include "gguf_file.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>

#include "file_io.h"
#include "sdnode.h"

namespace sdnode {

namespace {

// Facts of the format (ggml's docs/gguf.md): the key-value value types and their sizes.
enum ValueType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};

uint64_t scalarSize(uint32_t type) {
  switch (type) {
    case kU8: case kI8: case kBool: return 1;
    case kU16: case kI16: return 2;
    case kU32: case kI32: case kF32: return 4;
    case kU64: case kI64: case kF64: return 8;
    default: return 0;
  }
}

constexpr uint64_t kDefaultAlignment = 32;
constexpr uint64_t kMaxAlignment = 1u << 20;
constexpr uint64_t kMaxKeyBytes = 64u << 10;
constexpr uint64_t kMaxNameBytes = 4096;
// Metadata strings longer than this are skipped rather than kept (tokenizer blobs and the like).
constexpr uint64_t kMaxKeptValueBytes = 64u << 10;
constexpr int64_t kMaxDimension = int64_t(1) << 40;
// Far more than any model has (hundreds of key-value pairs, a few thousand tensors), and what keeps
// a large hostile file of minimal entries from taking ten times its size in memory.
constexpr uint64_t kMaxTensors = 1u << 20;
constexpr uint64_t kMaxKeyValues = 1u << 20;
// The smallest tensor info (1-byte name, one dimension) and key-value pair (1-byte key, u8 value).
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;
constexpr uint64_t kMinKeyValueBytes = 8 + 1 + 4 + 1;

// Sequential reads of the header through a buffer; every read is checked against the file's end.
class HeaderCursor {
 public:
  HeaderCursor(InputFile& input, const std::string& path) : input_(input), path_(path) {}

  uint64_t position() const { return position_; }
  uint64_t remaining() const { return input_.size() - position_; }

  void read(void* out, uint64_t bytes, const std::string& what) {
    require(bytes, what);
    auto* dst = static_cast<uint8_t*>(out);
    while (bytes > 0) {
      if (position_ < bufferStart_ || position_ >= bufferStart_ + buffer_.size()) refill();
      const uint64_t at = position_ - bufferStart_;
      const uint64_t chunk = std::min<uint64_t>(bytes, buffer_.size() - at);
      std::memcpy(dst, buffer_.data() + at, chunk);
      dst += chunk;
      position_ += chunk;
      bytes -= chunk;
    }
  }

  void skip(uint64_t bytes, const std::string& what) {
    require(bytes, what);
    position_ += bytes;
  }

  template <typename T>
  T number(const std::string& what) {
    uint8_t bytes[sizeof(T)];
    read(bytes, sizeof(T), what);
    uint64_t value = 0;
    for (size_t i = sizeof(T); i-- > 0;) value = (value << 8) | bytes[i];  // little-endian
    return static_cast<T>(value);
  }

  // A length-prefixed string of at most `maxBytes`.
  std::string string(uint64_t maxBytes, const std::string& what) {
    const uint64_t length = number<uint64_t>("the length of " + what);
    if (length > maxBytes) fail(what + " is " + std::to_string(length) + " bytes long (at most " + std::to_string(maxBytes) + " allowed)");
    std::string text(length, '\0');
    read(text.data(), length, what);
    return text;
  }

  [[noreturn]] void fail(const std::string& what) const { throw Error(ErrorCode::ModelFormat, path_ + ": " + what); }

 private:
  InputFile& input_;
  const std::string& path_;
  uint64_t position_ = 0;
  std::vector<uint8_t> buffer_;
  uint64_t bufferStart_ = 0;

  void require(uint64_t bytes, const std::string& what) const {
    if (bytes > remaining()) {
      fail("the file ends inside " + what + " (needs " + std::to_string(bytes) + " bytes at byte " + std::to_string(position_) +
           " of " + std::to_string(input_.size()) + "; truncated?)");
    }
  }

  void refill() {
    bufferStart_ = position_;
    buffer_.resize(static_cast<size_t>(std::min<uint64_t>(1u << 20, remaining())));
    input_.readAt(bufferStart_, buffer_.data(), buffer_.size());
  }
};

std::string quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text.substr(0, 200)) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  return out + (text.size() > 200 ? "…'" : "'");
}

// One scalar value as metadata text, or "" for types kept out of the metadata (floats).
std::string scalarText(HeaderCursor& cursor, uint32_t type, const std::string& what) {
  switch (type) {
    case kU8: return std::to_string(cursor.number<uint8_t>(what));
    case kI8: return std::to_string(cursor.number<int8_t>(what));
    case kU16: return std::to_string(cursor.number<uint16_t>(what));
    case kI16: return std::to_string(cursor.number<int16_t>(what));
    case kU32: return std::to_string(cursor.number<uint32_t>(what));
    case kI32: return std::to_string(cursor.number<int32_t>(what));
    case kU64: return std::to_string(cursor.number<uint64_t>(what));
    case kI64: return std::to_string(cursor.number<int64_t>(what));
    case kBool: return cursor.number<uint8_t>(what) ? "true" : "false";
    default: cursor.skip(scalarSize(type), what); return "";
  }
}

void skipArray(HeaderCursor& cursor, const std::string& what) {
  const uint32_t elementType = cursor.number<uint32_t>("the element type of " + what);
  const uint64_t count = cursor.number<uint64_t>("the length of " + what);
  if (elementType == kString) {
    // Each element is a length and its bytes; every length is checked as it is read.
    if (count > cursor.remaining() / 8) cursor.fail(what + " claims " + std::to_string(count) + " strings, more than the file holds");
    // Named once: a file can hold a hundred million empty strings, each a loop turn.
    const std::string element = "a string of " + what;
    for (uint64_t i = 0; i < count; i++) {
      const uint64_t length = cursor.number<uint64_t>(element);
      cursor.skip(length, element);
    }
    return;
  }
  const uint64_t size = scalarSize(elementType);
  if (size == 0) cursor.fail(what + " has elements of unknown type " + std::to_string(elementType) + " (nested arrays are not GGUF)");
  if (count > cursor.remaining() / size) cursor.fail(what + " claims " + std::to_string(count) + " elements, more than the file holds");
  cursor.skip(count * size, what);
}

void readKeyValues(HeaderCursor& cursor, uint64_t count, Checkpoint& file, uint64_t& alignment) {
  std::set<std::string> seen;
  for (uint64_t i = 0; i < count; i++) {
    const std::string key = cursor.string(kMaxKeyBytes, "the key of metadata entry " + std::to_string(i));
    const std::string what = "metadata " + quoted(key);
    if (!seen.insert(key).second) cursor.fail(what + " appears twice");
    const uint32_t type = cursor.number<uint32_t>("the type of " + what);
    if (key == "general.alignment") {
      if (type != kU32) cursor.fail(what + " must be a uint32 (type 4), not type " + std::to_string(type));
      alignment = cursor.number<uint32_t>(what);
      if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > kMaxAlignment) {
        cursor.fail(what + " is " + std::to_string(alignment) + "; it must be a power of two up to " + std::to_string(kMaxAlignment));
      }
      file.metadata[key] = std::to_string(alignment);
    } else if (type == kString) {
      const uint64_t length = cursor.number<uint64_t>("the length of " + what);
      if (length <= kMaxKeptValueBytes) {
        std::string value(length, '\0');
        cursor.read(value.data(), length, what);
        file.metadata[key] = value;
      } else {
        cursor.skip(length, what);
      }
    } else if (type == kArray) {
      skipArray(cursor, what);
    } else if (scalarSize(type) > 0) {
      std::string value = scalarText(cursor, type, what);
      if (!value.empty()) file.metadata[key] = value;
    } else {
      cursor.fail(what + " has unknown value type " + std::to_string(type));
    }
  }
}

// The stored bytes of a tensor of `type` and ggml extents `ne`, or a format error.
uint64_t storedBytes(HeaderCursor& cursor, const std::string& what, ggml_type type, const int64_t* ne, uint32_t dims) {
  const ggml_type_traits* traits = ggml_get_type_traits(type);
  const uint64_t block = static_cast<uint64_t>(traits->blck_size);
  if (ne[0] % static_cast<int64_t>(block) != 0) {
    cursor.fail(what + " has rows of " + std::to_string(ne[0]) + " values, not a whole number of " + std::string(ggml_type_name(type)) +
                " blocks (" + std::to_string(block) + " values each)");
  }
  uint64_t bytes = static_cast<uint64_t>(ne[0]) / block * traits->type_size;
  for (uint32_t d = 1; d < dims; d++) {
    if (bytes > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(ne[d])) cursor.fail(what + " is impossibly large");
    bytes *= static_cast<uint64_t>(ne[d]);
  }
  return bytes;
}

CheckpointTensor readTensorInfo(HeaderCursor& cursor, uint64_t index) {
  CheckpointTensor tensor;
  tensor.name = cursor.string(kMaxNameBytes, "the name of tensor " + std::to_string(index));
  const std::string what = "tensor " + quoted(tensor.name);
  if (tensor.name.empty()) cursor.fail("tensor " + std::to_string(index) + " has an empty name");
  const uint32_t dims = cursor.number<uint32_t>("the dimension count of " + what);
  if (dims < 1 || dims > 4) cursor.fail(what + " has " + std::to_string(dims) + " dimensions (1 to 4 allowed)");
  int64_t ne[4] = {1, 1, 1, 1};
  for (uint32_t d = 0; d < dims; d++) {
    const uint64_t extent = cursor.number<uint64_t>("the shape of " + what);
    if (extent < 1 || extent > static_cast<uint64_t>(kMaxDimension)) {
      cursor.fail(what + " has an invalid dimension " + std::to_string(extent));
    }
    ne[d] = static_cast<int64_t>(extent);
  }
  const uint32_t typeId = cursor.number<uint32_t>("the type of " + what);
  // Ids ggml never had or has retired (the removed q4_2, q4_3 and repacked q4_0_4_4 …) have no block size.
  if (typeId >= GGML_TYPE_COUNT || ggml_get_type_traits(static_cast<ggml_type>(typeId))->blck_size <= 0 ||
      ggml_get_type_traits(static_cast<ggml_type>(typeId))->type_size == 0) {
    cursor.fail(what + " has unknown type id " + std::to_string(typeId));
  }
  tensor.type = static_cast<ggml_type>(typeId);
  tensor.typeName = ggml_type_name(tensor.type);
  tensor.offset = cursor.number<uint64_t>("the data offset of " + what);
  tensor.bytes = storedBytes(cursor, what, tensor.type, ne, dims);
  for (uint32_t d = dims; d-- > 0;) tensor.shape.push_back(ne[d]);  // ggml's innermost-first → outermost-first
  return tensor;
}

}  // namespace

Checkpoint readGguf(const std::string& path) {
  Checkpoint file;
  file.path = path;
  file.format = "gguf";
  InputFile input(path);
  file.fileSize = input.size();
  HeaderCursor cursor(input, path);

  char magic[4];
  cursor.read(magic, 4, "the GGUF magic");
  if (std::memcmp(magic, "GGUF", 4) != 0) cursor.fail("not a GGUF file (bad magic)");
  const uint32_t version = cursor.number<uint32_t>("the GGUF version");
  if (version == 1) cursor.fail("GGUF version 1 files are not supported (re-convert the checkpoint)");
  if (version != 2 && version != 3) {
    cursor.fail("GGUF version " + std::to_string(version) + " is not supported (2 and 3 are; big-endian files are not)");
  }
  const uint64_t tensorCount = cursor.number<uint64_t>("the tensor count");
  const uint64_t keyValueCount = cursor.number<uint64_t>("the metadata count");
  if (keyValueCount > cursor.remaining() / kMinKeyValueBytes) {
    cursor.fail("the header claims " + std::to_string(keyValueCount) + " metadata entries, more than the file holds");
  }
  if (keyValueCount > kMaxKeyValues) {
    cursor.fail("the header claims " + std::to_string(keyValueCount) + " metadata entries (at most " + std::to_string(kMaxKeyValues) + " allowed)");
  }
  if (tensorCount > cursor.remaining() / kMinTensorInfoBytes) {
    cursor.fail("the header claims " + std::to_string(tensorCount) + " tensors, more than the file holds");
  }
  if (tensorCount > kMaxTensors) {
    cursor.fail("the header claims " + std::to_string(tensorCount) + " tensors (at most " + std::to_string(kMaxTensors) + " allowed)");
  }
  if (tensorCount == 0) cursor.fail("holds no tensors");

  uint64_t alignment = kDefaultAlignment;
  readKeyValues(cursor, keyValueCount, file, alignment);

  std::vector<CheckpointTensor> infos;
  for (uint64_t i = 0; i < tensorCount; i++) infos.push_back(readTensorInfo(cursor, i));

  const uint64_t headerEnd = cursor.position();
  const uint64_t dataStart = (headerEnd + alignment - 1) / alignment * alignment;
  if (dataStart > file.fileSize) cursor.fail("the file ends before its tensor data begins (truncated?)");
  const uint64_t dataSize = file.fileSize - dataStart;
  for (CheckpointTensor& tensor : infos) {
    const std::string what = "tensor " + quoted(tensor.name);
    if (tensor.offset % alignment != 0) {
      cursor.fail(what + " has data offset " + std::to_string(tensor.offset) + ", not a multiple of the alignment " +
                  std::to_string(alignment));
    }
    if (tensor.offset > dataSize || tensor.bytes > dataSize - tensor.offset) {
      cursor.fail(what + " lies outside the file (" + std::to_string(tensor.bytes) + " bytes at data offset " +
                  std::to_string(tensor.offset) + ", data section " + std::to_string(dataSize) + " bytes; truncated?)");
    }
    tensor.offset += dataStart;
    const std::string name = tensor.name;
    if (!file.tensors.emplace(name, std::move(tensor)).second) cursor.fail(what + " appears twice");
  }
  return file;
}

}  // namespace sdnode
