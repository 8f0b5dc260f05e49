// Writer of GGUF files (version 3, the layout ggml's docs/gguf.md describes and gguf_file.cpp
// reads): header, string metadata, tensor infos, then each tensor's data at an offset aligned to
// 32 bytes. The tensors are streamed in, so a file larger than memory can be written. The file is
// built under a temporary name next to the target and renamed over it only when complete: an
// error, an abort or a crash leaves whatever was at the target as it was.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "ggml.h"

namespace sdnode {

struct GgufTensorInfo {
  std::string name;
  ggml_type type = GGML_TYPE_F32;
  std::vector<int64_t> shape;  // outermost first, as in Checkpoint; written innermost first

  uint64_t bytes() const;
};

class GgufWriter {
 public:
  // Creates the temporary file and writes the header. Throws sdnode::Error (ModelIo when the file
  // cannot be created or written; Internal for a tensor of a shape its type cannot hold).
  GgufWriter(const std::string& path, const std::map<std::string, std::string>& metadata,
             const std::vector<GgufTensorInfo>& tensors);
  // Removes the temporary file unless commit() succeeded.
  ~GgufWriter();
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  // Appends the data of the next tensor, in the order given to the constructor: exactly its bytes().
  void writeTensor(const void* data, uint64_t bytes);
  // Flushes the file to disk and renames it over the target; returns its size in bytes.
  uint64_t commit();

 private:
  std::string path_;
  std::string temporary_;
  std::FILE* file_ = nullptr;
  std::vector<uint64_t> sizes_;
  size_t next_ = 0;
  uint64_t written_ = 0;
  bool committed_ = false;

  void write(const void* data, uint64_t bytes);
  void padTo();
  void closeFile();
  [[noreturn]] void fail(const std::string& what) const;
};

}  // namespace sdnode
