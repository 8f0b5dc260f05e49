#include "file_io.h"

#include <cerrno>
#include <cstring>
#include <sys/stat.h>

#include "sdnode.h"

namespace sdnode {

namespace {

int seekTo(std::FILE* file, uint64_t offset) {
#if defined(_WIN32)
  return _fseeki64(file, static_cast<__int64>(offset), SEEK_SET);
#else
  return fseeko(file, static_cast<off_t>(offset), SEEK_SET);
#endif
}

}  // namespace

InputFile::InputFile(const std::string& path) : path_(path) {
  struct stat info;
  if (stat(path.c_str(), &info) != 0) {
    throw Error(ErrorCode::ModelIo, path + ": cannot open (" + std::strerror(errno) + ")");
  }
  if (!S_ISREG(info.st_mode)) throw Error(ErrorCode::ModelIo, path + ": not a regular file");
  file_ = std::fopen(path.c_str(), "rb");
  if (!file_) throw Error(ErrorCode::ModelIo, path + ": cannot open (" + std::strerror(errno) + ")");
  size_ = static_cast<uint64_t>(info.st_size);
}

InputFile::~InputFile() {
  if (file_) std::fclose(file_);
}

void InputFile::readAt(uint64_t offset, void* out, uint64_t bytes) {
  if (offset > size_ || bytes > size_ - offset) {
    throw Error(ErrorCode::ModelFormat, path_ + ": read of " + std::to_string(bytes) + " bytes at " + std::to_string(offset) +
                                            " runs past the end of the file (" + std::to_string(size_) + " bytes)");
  }
  if (seekTo(file_, offset) != 0) throw Error(ErrorCode::ModelIo, path_ + ": seek failed (" + std::strerror(errno) + ")");
  uint64_t done = 0;
  auto* dst = static_cast<uint8_t*>(out);
  while (done < bytes) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(bytes - done, 64ull << 20));
    size_t got = std::fread(dst + done, 1, chunk, file_);
    if (got == 0) throw Error(ErrorCode::ModelIo, path_ + ": read failed at byte " + std::to_string(offset + done));
    done += got;
  }
}

}  // namespace sdnode
