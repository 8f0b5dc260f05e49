// Checkpoint metadata (safetensors __metadata__) that overrides what shapes cannot tell.
#pragma once

#include <map>
#include <string>

#include "sdnode.h"

namespace sdnode {

// The positive integer stored under `key`, or `fallback` when absent; anything else is an error.
inline int metadataPositiveInt(const std::map<std::string, std::string>& metadata, const std::string& key, int fallback) {
  auto it = metadata.find(key);
  if (it == metadata.end()) return fallback;
  try {
    size_t used = 0;
    int value = std::stoi(it->second, &used);
    if (value > 0 && used == it->second.size()) return value;
  } catch (const std::exception&) {
  }
  throw Error(ErrorCode::ModelFormat, "metadata '" + key + "' must be a positive integer, got '" + it->second + "'");
}

}  // namespace sdnode
