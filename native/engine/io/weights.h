// Weights of one checkpoint, resident in one backend buffer. Graph builders fetch them by
// checkpoint name with the shape they expect, so a checkpoint that disagrees with the inferred
// architecture is an error naming the tensor, never a ggml assertion.
#pragma once

#include <cstdint>
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

// Which tensors of a file a Weights object loads.
using WeightFilter = bool (*)(const CheckpointTensor& t);

class Weights {
 public:
  // Loads every tensor `wanted` accepts: by default a Stable Diffusion model's (isModelWeight,
  // family.h). `requested` is parseWeightType's answer; what it changes, tensor by tensor, is
  // residentType's business (weight_types.cpp). `threads` quantize on load.
  Weights(const Checkpoint& file, ggml_type requested, int threads, ggml_backend_t backend,
          WeightFilter wanted = isModelWeight);
  ~Weights();
  Weights(const Weights&) = delete;
  Weights& operator=(const Weights&) = delete;

  bool has(const std::string& name) const;
  // Shape in checkpoint order (outermost first), or throws if the tensor is missing.
  const std::vector<int64_t>& shape(const std::string& name) const;
  // The tensor, checked against `shape` (checkpoint order; 0-dim tensors are shape {}). Leading
  // extents of 1 do not count: GGUF writers drop them.
  ggml_tensor* get(const std::string& name, std::initializer_list<int64_t> shape);

  // The loaded tensor, or nullptr; for updating weights in place (lora.h), not for graphs.
  ggml_tensor* find(const std::string& name) const;

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
