// A model given as one file per component (FLUX.1, SD3): each file opened, its tensor names brought
// to the one spelling the networks read, and its weights loaded into a Weights of its own.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "checkpoint.h"
#include "weights.h"

namespace sdnode {

// Which part of a model a file holds; decides how its names are spelled after loading:
//   DiffusionModel: bare (double_blocks.0.…), whatever prefix the file used (model.diffusion_model.)
//   ClipL / ClipG:  cond_stage_model.transformer.text_model.… (the SD 1.x spelling of CLIP's HF layout)
//   T5:             bare (shared.weight, encoder.block.N.…)
//   Vae:            first_stage_model.encoder.… / decoder.…
//   Llm:            bare Hugging Face names (embed_tokens.weight, layers.N.…, norm.weight), also from
//                   llama.cpp's GGUF names (token_embd.weight, blk.N.attn_q.weight, …)
enum class ComponentRole { DiffusionModel, ClipL, ClipG, T5, Vae, Llm };

const char* componentFlag(ComponentRole role);  // "--diffusion-model", "--clip-l", "--llm", …

struct Component {
  Checkpoint file;
  std::unique_ptr<Weights> weights;
};

// The role of a file that holds one flow-model component under any spelling loadComponent accepts
// (a FLUX.1 / SD3 / Z-Image diffusion model, a T5 encoder, a CLIP text encoder, a Qwen3 text model, a
// 16-channel VAE); none when it
// holds something else.
std::optional<ComponentRole> componentRoleOf(const Checkpoint& file);

// Every float or quantized tensor of a component file is one of its weights (8-bit floats widened on load).
bool isComponentWeight(const CheckpointTensor& t);

// Scaled fp8 (ComfyUI's `<weight>.scale_weight` beside each fp8 weight): moves each scale onto its
// weight and drops the helper tensors. Throws ModelFormat naming the file (as `flag`) and the tensor
// for a scale that is not one positive number of a float type, or that scales no fp8 weight.
void applyFloat8Scales(Checkpoint& file, const std::string& flag);

// Opens `path` as `role` and loads its weights (converted to `requested` as Weights does).
// Throws ModelIo / ModelFormat naming the file, and ModelUnsupported when the file holds another
// component (a VAE passed as the diffusion model).
std::unique_ptr<Component> loadComponent(const std::string& path, ComponentRole role, ggml_type requested, int threads,
                                         ggml_backend_t backend);

}  // namespace sdnode
