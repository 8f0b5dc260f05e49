#include "gguf_writer.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <system_error>

#if defined(_WIN32)
#include <io.h>
#else
#include <unistd.h>
#endif

#include "sdnode.h"

namespace sdnode {

namespace {

constexpr uint32_t kVersion = 3;
constexpr uint32_t kStringType = 8;
// ggml's default alignment, so no general.alignment entry is needed.
constexpr uint64_t kAlignment = 32;

uint64_t aligned(uint64_t offset) { return (offset + kAlignment - 1) / kAlignment * kAlignment; }

// A name no other writer picks at the same time: converting twice to one target must not mix files.
std::string temporaryName(const std::string& path) {
  std::random_device random;
  char suffix[32];
  std::snprintf(suffix, sizeof(suffix), ".%08x%08x.tmp", random(), random());
  return path + suffix;
}

int flushToDisk(std::FILE* file) {
#if defined(_WIN32)
  return _commit(_fileno(file));
#else
  return fsync(fileno(file));
#endif
}

// Little-endian bytes of an integer, whatever the host's order.
template <typename T>
void appendNumber(std::vector<uint8_t>& out, T value) {
  for (size_t i = 0; i < sizeof(T); i++) out.push_back(static_cast<uint8_t>(static_cast<uint64_t>(value) >> (8 * i)));
}

void appendString(std::vector<uint8_t>& out, const std::string& text) {
  appendNumber<uint64_t>(out, text.size());
  out.insert(out.end(), text.begin(), text.end());
}

}  // namespace

uint64_t GgufTensorInfo::bytes() const {
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < shape.size(); i++) rows *= shape[i];
  const int64_t rowLength = shape.empty() ? 1 : shape.back();
  return static_cast<uint64_t>(ggml_row_size(type, rowLength)) * static_cast<uint64_t>(rows);
}

GgufWriter::GgufWriter(const std::string& path, const std::map<std::string, std::string>& metadata,
                       const std::vector<GgufTensorInfo>& tensors)
    : path_(path), temporary_(temporaryName(path)) {
  std::vector<uint8_t> header;
  header.insert(header.end(), {'G', 'G', 'U', 'F'});
  appendNumber<uint32_t>(header, kVersion);
  appendNumber<uint64_t>(header, tensors.size());
  appendNumber<uint64_t>(header, metadata.size());
  for (const auto& [key, value] : metadata) {
    appendString(header, key);
    appendNumber<uint32_t>(header, kStringType);
    appendString(header, value);
  }
  uint64_t offset = 0;
  for (const GgufTensorInfo& tensor : tensors) {
    if (tensor.shape.empty() || tensor.shape.size() > 4 || tensor.shape.back() % ggml_blck_size(tensor.type) != 0) {
      throw Error(ErrorCode::Internal, path + ": tensor '" + tensor.name + "' cannot be stored as " + ggml_type_name(tensor.type));
    }
    appendString(header, tensor.name);
    appendNumber<uint32_t>(header, static_cast<uint32_t>(tensor.shape.size()));
    for (size_t d = tensor.shape.size(); d-- > 0;) appendNumber<uint64_t>(header, tensor.shape[d]);
    appendNumber<uint32_t>(header, static_cast<uint32_t>(tensor.type));
    appendNumber<uint64_t>(header, offset);
    sizes_.push_back(tensor.bytes());
    offset = aligned(offset + sizes_.back());
  }
  file_ = std::fopen(temporary_.c_str(), "wbx");
  if (!file_) throw Error(ErrorCode::ModelIo, temporary_ + ": cannot create (" + std::strerror(errno) + ")");
  try {
    write(header.data(), header.size());
    padTo();
  } catch (...) {
    closeFile();
    std::remove(temporary_.c_str());
    throw;
  }
}

GgufWriter::~GgufWriter() {
  if (committed_) return;
  closeFile();
  std::remove(temporary_.c_str());
}

void GgufWriter::writeTensor(const void* data, uint64_t bytes) {
  if (next_ >= sizes_.size() || bytes != sizes_[next_]) {
    fail("tensor " + std::to_string(next_) + " has " + std::to_string(bytes) + " bytes, not the " +
         (next_ < sizes_.size() ? std::to_string(sizes_[next_]) : std::string("none")) + " announced");
  }
  // Tensor data starts aligned, and so does the next one: the padding follows each tensor.
  write(data, bytes);
  padTo();
  next_++;
}

uint64_t GgufWriter::commit() {
  if (next_ != sizes_.size()) fail(std::to_string(sizes_.size() - next_) + " tensors were never written");
  if (std::fflush(file_) != 0 || flushToDisk(file_) != 0) fail(std::string("cannot write (") + std::strerror(errno) + ")");
  const int closed = std::fclose(file_);
  file_ = nullptr;
  if (closed != 0) fail(std::string("cannot write (") + std::strerror(errno) + ")");
  std::error_code error;
  std::filesystem::rename(temporary_, path_, error);
  if (error) throw Error(ErrorCode::ModelIo, path_ + ": cannot replace it with " + temporary_ + " (" + error.message() + ")");
  committed_ = true;
  return written_;
}

void GgufWriter::write(const void* data, uint64_t bytes) {
  if (bytes > 0 && std::fwrite(data, 1, bytes, file_) != bytes) fail(std::string("cannot write (") + std::strerror(errno) + ")");
  written_ += bytes;
}

void GgufWriter::padTo() {
  static const uint8_t zeros[kAlignment] = {};
  write(zeros, aligned(written_) - written_);
}

void GgufWriter::closeFile() {
  if (file_) std::fclose(file_);
  file_ = nullptr;
}

void GgufWriter::fail(const std::string& what) const { throw Error(ErrorCode::ModelIo, temporary_ + ": " + what); }

}  // namespace sdnode
