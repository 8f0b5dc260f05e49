#include "components.h"

#include <cmath>
#include <cstring>
#include <map>

#include "file_io.h"
#include "sdnode.h"
#include "weight_types.h"

namespace sdnode {

namespace {

bool startsWith(const std::string& text, const std::string& prefix) { return text.compare(0, prefix.size(), prefix) == 0; }

// The prefixes under which single-file checkpoints keep their components.
const char* const kBundlePrefixes[] = {"model.diffusion_model.", "text_encoders.", "first_stage_model.", "cond_stage_model.", "conditioner."};


struct Spelling {
  std::vector<std::string> strip;  // prefixes other tools write, removed first
  std::string add;                 // then this is put in front
  std::vector<std::string> markers;  // tensors of which every file of this role has one, after renaming
  const char* what;
};

Spelling spellingOf(ComponentRole role) {
  switch (role) {
    case ComponentRole::DiffusionModel:
      return {{"model.diffusion_model.", "diffusion_model."}, "", {"img_in.weight", "x_embedder.proj.weight", "cap_embedder.1.weight"},
              "a FLUX.1, SD3 or Z-Image diffusion model (img_in, x_embedder or cap_embedder; double_blocks.*, joint_blocks.* or layers.*)"};
    case ComponentRole::ClipL:
      return {{"text_encoders.clip_l.transformer.", "cond_stage_model.transformer.", "conditioner.embedders.0.transformer.", "transformer."},
              "cond_stage_model.transformer.",
              {"cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"},
              "a CLIP text encoder (text_model.*)"};
    case ComponentRole::ClipG:
      return {{"text_encoders.clip_g.transformer.", "transformer."},
              "cond_stage_model.transformer.",
              {"cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"},
              "a CLIP text encoder (text_model.*)"};
    case ComponentRole::T5:
      return {{"text_encoders.t5xxl.transformer.", "t5xxl.transformer.", "t5xxl."}, "", {"shared.weight"}, "a T5 encoder (shared.weight, encoder.block.*)"};
    case ComponentRole::Vae:
      return {{"first_stage_model.", "vae."}, "first_stage_model.", {"first_stage_model.decoder.conv_in.weight"}, "a VAE (decoder.*)"};
    case ComponentRole::Llm:
      return {{"text_encoders.llm.model.", "text_encoders.llm.", "model."}, "", {"embed_tokens.weight"},
              "a Qwen3 text model (model.embed_tokens.weight, model.layers.*; or a llama.cpp GGUF's token_embd.weight, blk.*)"};
  }
  return {};
}

// llama.cpp's GGUF names of a Qwen3 model's tensors in Hugging Face's: blk.N.<name> -> layers.N.<name>.
std::string llamaCppToHuggingFace(const std::string& name) {
  static const std::map<std::string, std::string> top = {
      {"token_embd.weight", "embed_tokens.weight"}, {"output_norm.weight", "norm.weight"}, {"output.weight", "lm_head.weight"}};
  static const std::map<std::string, std::string> layer = {
      {"attn_q.weight", "self_attn.q_proj.weight"},       {"attn_k.weight", "self_attn.k_proj.weight"},
      {"attn_v.weight", "self_attn.v_proj.weight"},       {"attn_output.weight", "self_attn.o_proj.weight"},
      {"attn_q_norm.weight", "self_attn.q_norm.weight"},  {"attn_k_norm.weight", "self_attn.k_norm.weight"},
      {"attn_norm.weight", "input_layernorm.weight"},     {"ffn_norm.weight", "post_attention_layernorm.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},        {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"}};
  if (auto it = top.find(name); it != top.end()) return it->second;
  if (startsWith(name, "blk.")) {
    const size_t dot = name.find('.', 4);
    if (dot != std::string::npos) {
      if (auto it = layer.find(name.substr(dot + 1)); it != layer.end()) return "layers." + name.substr(4, dot - 4) + "." + it->second;
    }
  }
  return name;
}

}  // namespace

bool isComponentWeight(const CheckpointTensor& t) { return (isWeightType(t.type) || isFloat8(t)) && t.elements() > 0; }

namespace {

bool endsWith(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

// Scaled fp8 files (ComfyUI's, as in SD3.5's …_t5xxlfp8scaled bundles) store each fp8 weight with a
// scalar `<name>.scale_weight` it is multiplied by; `scale_input` (fp8 matmul's input scale) and the
// `scaled_fp8` marker only matter to fp8 arithmetic. The scale moves onto its weight, which is then
// widened as any fp8 weight, and the helper tensors leave the list.
void applyFloat8Scales(Checkpoint& file, const std::string& flag) {
  std::unique_ptr<InputFile> in;
  for (auto it = file.tensors.begin(); it != file.tensors.end();) {
    const std::string& name = it->first;
    const CheckpointTensor& t = it->second;
    if (name == "scaled_fp8" || endsWith(name, ".scale_input")) {
      it = file.tensors.erase(it);
      continue;
    }
    if (!endsWith(name, ".scale_weight")) {
      ++it;
      continue;
    }
    auto bad = [&](const std::string& why) {
      throw Error(ErrorCode::ModelFormat, file.path + " (" + flag + "): " + name + " " + why);
    };
    if (t.elements() != 1 || (t.type != GGML_TYPE_F32 && t.type != GGML_TYPE_F16 && t.type != GGML_TYPE_BF16)) {
      bad("must be one f32, f16 or bf16 value (the scale of an fp8 weight), but is " + t.typeName + " with " +
          std::to_string(t.elements()) + " values");
    }
    const std::string weightName = name.substr(0, name.size() - 13) + ".weight";
    auto weight = file.tensors.find(weightName);
    if (weight == file.tensors.end() || !isFloat8(weight->second)) bad("scales " + weightName + ", which is not an fp8 weight of the file");
    if (!in) in = std::make_unique<InputFile>(file.path);
    uint8_t raw[4] = {};
    in->readAt(t.offset, raw, t.bytes);
    float scale = 0.0f;
    if (t.type == GGML_TYPE_F32) {
      std::memcpy(&scale, raw, sizeof scale);
    } else {
      ggml_get_type_traits(t.type)->to_float(raw, &scale, 1);
    }
    if (!std::isfinite(scale) || scale <= 0.0f) bad("holds " + std::to_string(scale) + "; an fp8 weight's scale must be a positive number");
    weight->second.scale = scale;
    it = file.tensors.erase(it);
  }
}

std::optional<ComponentRole> componentRoleOf(const Checkpoint& file) {
  for (ComponentRole role : {ComponentRole::DiffusionModel, ComponentRole::T5, ComponentRole::ClipL, ComponentRole::Vae, ComponentRole::Llm}) {
    const Spelling spelling = spellingOf(role);
    for (const auto& [name, tensor] : file.tensors) {
      std::string bare = role == ComponentRole::Llm ? llamaCppToHuggingFace(name) : name;
      for (const std::string& prefix : spelling.strip) {
        if (startsWith(bare, prefix)) {
          bare = bare.substr(prefix.size());
          break;
        }
      }
      for (const std::string& marker : spelling.markers) {
        if (spelling.add + bare == marker) return role;
      }
    }
  }
  return std::nullopt;
}

const char* componentFlag(ComponentRole role) {
  switch (role) {
    case ComponentRole::DiffusionModel: return "--diffusion-model";
    case ComponentRole::ClipL: return "--clip-l";
    case ComponentRole::ClipG: return "--clip-g";
    case ComponentRole::T5: return "--t5xxl";
    case ComponentRole::Vae: return "--vae";
    case ComponentRole::Llm: return "--llm";
  }
  return "";
}

std::unique_ptr<Component> loadComponent(const std::string& path, ComponentRole role, ggml_type requested, int threads,
                                         ggml_backend_t backend) {
  auto component = std::make_unique<Component>();
  component->file = openCheckpoint(path);
  const Spelling spelling = spellingOf(role);
  // A file that bundles components (an SD3 checkpoint with its VAE, SD3.5's with its text encoders)
  // names each under its prefix: this role takes its own tensors only. A file of one component
  // (bare names) is taken whole.
  bool bundle = false;
  for (const auto& [name, tensor] : component->file.tensors) {
    for (const char* prefix : kBundlePrefixes) bundle = bundle || startsWith(name, prefix);
  }
  std::map<std::string, CheckpointTensor> renamed;
  for (auto& [name, tensor] : component->file.tensors) {
    std::string bare = role == ComponentRole::Llm ? llamaCppToHuggingFace(name) : name;
    bool own = !bundle;
    // openCheckpoint already maps the aliases of single-file checkpoints (vae. -> first_stage_model.).
    for (const std::string& prefix : spelling.strip) {
      if (startsWith(bare, prefix)) {
        bare = bare.substr(prefix.size());
        own = true;
        break;
      }
    }
    if (!own) continue;
    tensor.name = spelling.add + bare;
    renamed[tensor.name] = std::move(tensor);
  }
  component->file.tensors = std::move(renamed);
  bool marked = false;
  for (const std::string& marker : spelling.markers) marked = marked || component->file.tensors.count(marker) > 0;
  if (!marked) {
    throw Error(ErrorCode::ModelUnsupported, path + " (" + componentFlag(role) + ") is not " + spelling.what + ": it has no " +
                                                 spelling.markers.front());
  }
  applyFloat8Scales(component->file, componentFlag(role));
  component->weights = std::make_unique<Weights>(component->file, requested, threads, backend, isComponentWeight);
  return component;
}

}  // namespace sdnode
