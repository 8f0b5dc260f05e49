#include "checkpoint.h"

#include <algorithm>
#include <cstring>
#include <iterator>

#include "file_io.h"
#include "gguf_file.h"
#include "safetensors.h"
#include "sdnode.h"

namespace sdnode {

namespace {

// A name, or a name's prefix, and what it stands for.
struct NameMap {
  const char* from;
  const char* to;
};

// Prefixes stable-diffusion.cpp reads as these components (a VAE or text encoder merged in at
// conversion time, a bare diffusion model) and the single-file LDM prefix each stands for.
constexpr NameMap kPrefixAliases[] = {
    {"vae.", "first_stage_model."},
    {"diffusion_model.", "model.diffusion_model."},
    {"text_encoder.", "cond_stage_model.transformer."},
    {"clip_l.", "cond_stage_model.transformer."},
};

// The canonical name of a tensor, or "" when it is not under an alias.
std::string canonicalName(const std::string& name) {
  for (const NameMap& prefix : kPrefixAliases) {
    const size_t length = std::strlen(prefix.from);
    if (name.compare(0, length, prefix.from) == 0) return prefix.to + name.substr(length);
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

// stable-diffusion.cpp names an SD 2.x text encoder (OpenCLIP ViT-H) the way Hugging Face names
// OpenAI's CLIP, and its converter writes those names. They are mapped back to the OpenCLIP
// layout, whose architecture (GELU, penultimate layer) comes with it. The attention projection
// may be packed (two spellings) or split into q/k/v (kept split, under attn.q_proj and so on).
const std::string kHfTextPrefix = "cond_stage_model.transformer.text_model.";
const std::string kOpenClipTextPrefix = "cond_stage_model.model.";

constexpr NameMap kHfToOpenClip[] = {
    {"embeddings.token_embedding.weight", "token_embedding.weight"},
    {"embeddings.position_embedding.weight", "positional_embedding"},
    {"final_layer_norm.weight", "ln_final.weight"},
    {"final_layer_norm.bias", "ln_final.bias"},
    {"text_projection", "text_projection"},
};

constexpr NameMap kHfLayerToOpenClip[] = {
    {"layer_norm1.", "ln_1."},
    {"layer_norm2.", "ln_2."},
    {"self_attn.out_proj.", "attn.out_proj."},
    {"mlp.fc1.", "mlp.c_fc."},
    {"mlp.fc2.", "mlp.c_proj."},
    {"attn.in_proj_weight", "attn.in_proj_weight"},
    {"attn.in_proj_bias", "attn.in_proj_bias"},
    {"self_attn.in_proj.weight", "attn.in_proj_weight"},
    {"self_attn.in_proj.bias", "attn.in_proj_bias"},
    {"self_attn.q_proj.", "attn.q_proj."},
    {"self_attn.k_proj.", "attn.k_proj."},
    {"self_attn.v_proj.", "attn.v_proj."},
};

bool startsWith(const std::string& text, const std::string& prefix) { return text.compare(0, prefix.size(), prefix) == 0; }

// The OpenCLIP name of a text-encoder tensor under the Hugging Face prefix, or "" when it has none.
std::string openClipName(const std::string& name) {
  const std::string rest = name.substr(kHfTextPrefix.size());
  for (const NameMap& map : kHfToOpenClip) {
    if (rest == map.from) return kOpenClipTextPrefix + map.to;
  }
  const std::string layers = "encoder.layers.";
  if (!startsWith(rest, layers)) return "";
  const size_t dot = rest.find('.', layers.size());
  if (dot == std::string::npos) return "";
  const std::string index = rest.substr(layers.size(), dot - layers.size());
  const std::string suffix = rest.substr(dot + 1);
  for (const NameMap& map : kHfLayerToOpenClip) {
    if (startsWith(suffix, map.from)) {
      return kOpenClipTextPrefix + "transformer.resblocks." + index + "." + map.to + suffix.substr(std::strlen(map.from));
    }
  }
  return "";
}

// SD 1.x's CLIP ViT-L has no text projection and is 768 wide; OpenCLIP ViT-H has one and is 1024.
bool isOpenClipUnderHfNames(const Checkpoint& file) {
  if (file.tensors.count(kHfTextPrefix + "text_projection")) return true;
  auto embedding = file.tensors.find(kHfTextPrefix + "embeddings.token_embedding.weight");
  return embedding != file.tensors.end() && embedding->second.shape.size() == 2 && embedding->second.shape[1] == 1024;
}

void renameOpenClipText(Checkpoint& file) {
  if (!isOpenClipUnderHfNames(file)) return;
  std::map<std::string, CheckpointTensor> tensors;
  for (auto& [name, tensor] : file.tensors) {
    const std::string renamed = startsWith(name, kHfTextPrefix) ? openClipName(name) : "";
    if (!renamed.empty()) tensor.name = renamed;
    tensors[tensor.name] = std::move(tensor);
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
  renameOpenClipText(file);
  return file;
}

namespace {

constexpr ggml_type kWeightStorageTypes[] = {
    GGML_TYPE_F32,  GGML_TYPE_F16,  GGML_TYPE_BF16, GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1,
    GGML_TYPE_Q8_0, GGML_TYPE_Q2_K, GGML_TYPE_Q3_K, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K,
};

}  // namespace

bool isWeightType(ggml_type type) {
  return std::find(std::begin(kWeightStorageTypes), std::end(kWeightStorageTypes), type) != std::end(kWeightStorageTypes);
}

std::string weightTypeNames() {
  std::string names;
  for (ggml_type type : kWeightStorageTypes) names += (names.empty() ? "" : ", ") + std::string(ggml_type_name(type));
  return names;
}

}  // namespace sdnode
