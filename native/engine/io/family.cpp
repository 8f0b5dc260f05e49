#include "family.h"

#include "sdnode.h"

namespace sdnode {

namespace {

const char* const kComponentPrefixes[] = {"cond_stage_model.", "conditioner.embedders.", "model.diffusion_model.",
                                         "first_stage_model."};

}  // namespace

std::string detectFamily(const Checkpoint& file) {
  auto has = [&](const std::string& name) { return file.tensors.count(name) > 0; };
  if (has("cond_stage_model.transformer.text_model.embeddings.token_embedding.weight")) return "sd1";
  if (has("cond_stage_model.model.token_embedding.weight")) return "sd2";
  if (has("conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight")) {
    if (has("conditioner.embedders.1.model.token_embedding.weight")) return "sdxl";
    throw Error(ErrorCode::ModelUnsupported, file.path + ": an SDXL-style checkpoint without the second text encoder "
                                                         "(conditioner.embedders.1.model.*)");
  }
  if (has("conditioner.embedders.0.model.token_embedding.weight")) return "sdxl-refiner";
  throw Error(ErrorCode::ModelUnsupported,
              file.path + ": not a Stable Diffusion 1.x/2.x/XL checkpoint in the single-file LDM layout "
                          "(no cond_stage_model.* or conditioner.embedders.* text encoder)");
}

bool isModelWeight(const CheckpointTensor& t) {
  if (!isWeightType(t.type) || t.elements() <= 0) return false;
  for (const char* prefix : kComponentPrefixes) {
    if (t.name.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

}  // namespace sdnode
