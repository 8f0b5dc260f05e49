#include "checkpoint.h"

#include <cstring>

#include "file_io.h"
#include "gguf_file.h"
#include "safetensors.h"
#include "sdnode.h"

namespace sdnode {

namespace {

// Prefixes stable-diffusion.cpp reads as these components (a VAE or text encoder merged in at
// conversion time, a bare diffusion model) and the single-file LDM prefix each stands for.
struct PrefixAlias {
  const char* alias;
  const char* canonical;
};

constexpr PrefixAlias kPrefixAliases[] = {
    {"vae.", "first_stage_model."},
    {"diffusion_model.", "model.diffusion_model."},
    {"text_encoder.", "cond_stage_model.transformer."},
    {"clip_l.", "cond_stage_model.transformer."},
};

// The canonical name of a tensor, or "" when it is not under an alias.
std::string canonicalName(const std::string& name) {
  for (const PrefixAlias& prefix : kPrefixAliases) {
    const size_t length = std::strlen(prefix.alias);
    if (name.compare(0, length, prefix.alias) == 0) return prefix.canonical + name.substr(length);
  }
  return "";
}

// A tensor under an alias replaces the canonical one of the same name: it is the component that
// was merged in on purpose (stable-diffusion.cpp's convert --vae writes both).
void renameAliases(Checkpoint& file) {
  std::map<std::string, CheckpointTensor> tensors;
  for (auto& [name, tensor] : file.tensors) {
    if (canonicalName(name).empty()) tensors.emplace(name, std::move(tensor));
  }
  for (auto& [name, tensor] : file.tensors) {
    const std::string canonical = canonicalName(name);
    if (canonical.empty()) continue;
    tensor.name = canonical;
    tensors[canonical] = std::move(tensor);
  }
  file.tensors = std::move(tensors);
}

}  // namespace

int64_t CheckpointTensor::elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Checkpoint openCheckpoint(const std::string& path) {
  bool gguf = false;
  {
    InputFile input(path);
    char magic[4] = {};
    if (input.size() >= 4) input.readAt(0, magic, 4);
    gguf = std::memcmp(magic, "GGUF", 4) == 0;
  }
  Checkpoint file;
  try {
    file = gguf ? readGguf(path) : readSafetensors(path);
  } catch (const Error& e) {
    // The content decides the reader; the name only decides which complaint makes sense.
    const bool namedGguf = path.size() >= 5 && path.compare(path.size() - 5, 5, ".gguf") == 0;
    if (!gguf && namedGguf && e.code() == ErrorCode::ModelFormat) {
      throw Error(ErrorCode::ModelFormat, path + ": not a GGUF file (it does not start with \"GGUF\") nor a safetensors file");
    }
    throw;
  }
  renameAliases(file);
  return file;
}

bool isWeightType(ggml_type type) {
  switch (type) {
    case GGML_TYPE_F32: case GGML_TYPE_F16: case GGML_TYPE_BF16:
    case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_0: case GGML_TYPE_Q5_1: case GGML_TYPE_Q8_0:
    case GGML_TYPE_Q2_K: case GGML_TYPE_Q3_K: case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: case GGML_TYPE_Q6_K:
      return true;
    default:
      return false;
  }
}

const char* weightTypeNames() { return "f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_K, q3_K, q4_K, q5_K, q6_K"; }

}  // namespace sdnode
