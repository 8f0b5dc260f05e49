// Positioned reads from a model file; errors name the file.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace sdnode {

class InputFile {
 public:
  explicit InputFile(const std::string& path);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  uint64_t size() const { return size_; }
  // Reads exactly `bytes` at `offset` or throws sdnode::Error(ModelIo / ModelFormat).
  void readAt(uint64_t offset, void* out, uint64_t bytes);

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace sdnode
