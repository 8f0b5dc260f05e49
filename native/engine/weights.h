// Weights of one checkpoint, resident in one backend buffer. Graph builders fetch them by
// checkpoint name with the shape they expect, so a checkpoint that disagrees with the inferred
// architecture is an error naming the tensor, never a ggml assertion.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "checkpoint.h"
#include "family.h"
#include "ggml-backend.h"
#include "ggml.h"

namespace sdnode {

class Weights {
 public:
  // Loads every tensor `accept` takes: by default isModelWeight's (family.h), a checkpoint's; a
  // file of another network (TAESD) passes its own. `requested` is parseWeightType's answer; what
  // it changes, tensor by tensor, is residentType's business (weight_types.cpp). `threads`
  // quantize on load.
  Weights(const Checkpoint& file, ggml_type requested, int threads, ggml_backend_t backend,
          const std::function<bool(const CheckpointTensor&)>& accept = isModelWeight);
  ~Weights();
  Weights(const Weights&) = delete;
  Weights& operator=(const Weights&) = delete;

  bool has(const std::string& name) const;
  // Shape in checkpoint order (outermost first), or throws if the tensor is missing.
  const std::vector<int64_t>& shape(const std::string& name) const;
  // The tensor, checked against `shape` (checkpoint order; 0-dim tensors are shape {}). Leading
  // extents of 1 do not count: GGUF writers drop them.
  ggml_tensor* get(const std::string& name, std::initializer_list<int64_t> shape);

  uint64_t bytes() const { return bytes_; }
  // Names of loaded tensors that no graph has asked for.
  std::vector<std::string> unused() const;
  // How many loaded tensors the file stores in each type, by ggml's name ("f16", "q8_0", "q4_K").
  std::map<std::string, int> storedTypes() const;

 private:
  const Checkpoint& file_;
  ggml_context* ctx_ = nullptr;
  ggml_backend_buffer_t buffer_ = nullptr;
  std::map<std::string, ggml_tensor*> lookup_;
  std::set<std::string> used_;
  uint64_t bytes_ = 0;
  void load(ggml_backend_t backend, int threads);
};

}  // namespace sdnode
