// What the targets share: the fuzz input as a file the readers can open by path (one memfd per
// process, rewritten for each input, named by its /proc/self/fd path: a regular file to stat(), so
// InputFile takes it), and the promises every checkpoint a reader returns must keep.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "checkpoint.h"

namespace fuzz {

inline const std::string& inputPath(const uint8_t* data, size_t size) {
  static const int fd = memfd_create("fuzz-input", 0);
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  if (fd < 0 || ftruncate(fd, 0) != 0) {
    std::perror("fuzz: memfd");
    std::abort();
  }
  for (size_t done = 0; done < size;) {
    const ssize_t wrote = pwrite(fd, data + done, size - done, static_cast<off_t>(done));
    if (wrote <= 0) {
      std::perror("fuzz: pwrite");
      std::abort();
    }
    done += static_cast<size_t>(wrote);
  }
  return path;
}

// Every tensor lies inside the file, is filed under its own name, and has an element count that
// int64_t holds (elements() multiplies the extents without checks).
inline void checkTensors(const sdnode::Checkpoint& file) {
  for (const auto& [name, tensor] : file.tensors) {
    if (name != tensor.name || tensor.offset > file.fileSize || tensor.bytes > file.fileSize - tensor.offset ||
        tensor.elements() < 0) {
      std::abort();
    }
  }
}

}  // namespace fuzz
