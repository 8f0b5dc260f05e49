#include "components.h"

#include <map>

#include "sdnode.h"
#include "weight_types.h"

namespace sdnode {

namespace {

bool startsWith(const std::string& text, const std::string& prefix) { return text.compare(0, prefix.size(), prefix) == 0; }

// The prefixes under which single-file checkpoints keep their components.
const char* const kBundlePrefixes[] = {"model.diffusion_model.", "text_encoders.", "first_stage_model.", "cond_stage_model.", "conditioner."};

// Every float or quantized tensor of a component file is one of its weights (8-bit floats widened on load).
bool isComponentWeight(const CheckpointTensor& t) { return (isWeightType(t.type) || isFloat8(t)) && t.elements() > 0; }

struct Spelling {
  std::vector<std::string> strip;  // prefixes other tools write, removed first
  std::string add;                 // then this is put in front
  std::vector<std::string> markers;  // tensors of which every file of this role has one, after renaming
  const char* what;
};

Spelling spellingOf(ComponentRole role) {
  switch (role) {
    case ComponentRole::DiffusionModel:
      return {{"model.diffusion_model.", "diffusion_model."}, "", {"img_in.weight", "x_embedder.proj.weight"},
              "a FLUX.1 or SD3 diffusion model (img_in or x_embedder, double_blocks.* or joint_blocks.*)"};
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
  }
  return {};
}

}  // namespace

const char* componentFlag(ComponentRole role) {
  switch (role) {
    case ComponentRole::DiffusionModel: return "--diffusion-model";
    case ComponentRole::ClipL: return "--clip-l";
    case ComponentRole::ClipG: return "--clip-g";
    case ComponentRole::T5: return "--t5xxl";
    case ComponentRole::Vae: return "--vae";
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
    std::string bare = name;
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
  for (const auto& [name, tensor] : component->file.tensors) {
    if (name == "scaled_fp8" || name.size() > 13 && name.compare(name.size() - 13, 13, ".scale_weight") == 0) {
      throw Error(ErrorCode::ModelUnsupported, path + " (" + componentFlag(role) + ") stores scaled fp8 weights (" + name +
                                                   "), which are not supported yet: use the fp16 / bf16 file, a plain fp8 e4m3fn one, or a GGUF");
    }
  }
  component->weights = std::make_unique<Weights>(component->file, requested, threads, backend, isComponentWeight);
  return component;
}

}  // namespace sdnode
