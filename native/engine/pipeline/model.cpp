// Loading: read the header, derive the architecture, load the weights once, and build every
// component's graph once so a checkpoint that disagrees with itself fails here, by tensor name.
#include <algorithm>

#include "family.h"
#include "flow_model.h"
#include "model_impl.h"
#include "system_info.h"
#include "weight_types.h"

namespace sdnode {

namespace {

std::string choosePrediction(const std::string& requested, const std::string& family, const Checkpoint& file) {
  if (requested == "eps" || requested == "v") return requested;
  if (requested != "auto") throw Error(ErrorCode::InvalidArgument, "prediction must be 'auto', 'eps' or 'v', got '" + requested + "'");
  auto hint = file.metadata.find("sdnode.prediction");
  if (hint != file.metadata.end() && (hint->second == "eps" || hint->second == "v")) return hint->second;
  // The weights cannot tell; the common SD 2.x checkpoints (768-v) predict v, SD 1.x predicts noise.
  return family == "sd2" ? "v" : "eps";
}

}  // namespace

const char* errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::ModelIo: return "ERR_MODEL_IO";
    case ErrorCode::ModelFormat: return "ERR_MODEL_FORMAT";
    case ErrorCode::ModelUnsupported: return "ERR_MODEL_UNSUPPORTED";
    case ErrorCode::InvalidArgument: return "ERR_INVALID_ARGUMENT";
    case ErrorCode::Backend: return "ERR_BACKEND";
    case ErrorCode::OutOfMemory: return "ERR_OUT_OF_MEMORY";
    case ErrorCode::Aborted: return "ERR_ABORTED";
    case ErrorCode::Internal: return "ERR_INTERNAL";
  }
  return "ERR_INTERNAL";
}

std::unique_ptr<Model> Model::load(const LoadParams& params) {
  if (!params.diffusionModel.empty()) return std::make_unique<FlowModel>(params);
  // A single file that bundles a flow model with its text encoders and VAE (SD3's *_incl_clips*
  // checkpoints, all-in-one FLUX.1 files): each component comes from it unless given on its own.
  const Checkpoint file = openCheckpoint(params.path);
  const std::string dm = "model.diffusion_model.";
  if (file.tensors.count(dm + "img_in.weight") || file.tensors.count(dm + "x_embedder.proj.weight")) {
    LoadParams bundled = params;
    bundled.diffusionModel = params.path;
    auto has = [&](const std::string& prefix) {
      return std::any_of(file.tensors.begin(), file.tensors.end(), [&](const auto& entry) { return entry.first.rfind(prefix, 0) == 0; });
    };
    const std::pair<std::string*, const char*> roles[] = {{&bundled.clipL, "text_encoders.clip_l."},
                                                          {&bundled.clipG, "text_encoders.clip_g."},
                                                          {&bundled.t5xxl, "text_encoders.t5xxl."},
                                                          {&bundled.vae, "first_stage_model."}};
    for (const auto& [field, prefix] : roles) {
      if (field->empty() && has(prefix)) *field = params.path;
    }
    return std::make_unique<FlowModel>(bundled);
  }
  return std::make_unique<DiffusionModel>(params);
}

DiffusionModel::DiffusionModel(const LoadParams& params) : file_(openCheckpoint(params.path)) {
  const ggml_type weightType = parseWeightType(params.weightType);
  const std::string family = detectFamily(file_);
  const std::string prediction = choosePrediction(params.prediction, family, file_);
  const int threads = params.threads > 0 ? params.threads : physicalCores();
  backend_ = std::make_unique<Backend>(params.backend, threads);
  weights_ = std::make_unique<Weights>(file_, weightType, threads, backend_->handle());
  const bool xl = family == "sdxl";
  refiner_ = family == "sdxl-refiner";
  const bool sgm = xl || refiner_;  // SDXL's layout: conditioner.embedders.N
  ClipConfig clipConfig = readClipConfig(*weights_, file_.metadata, sgm ? "conditioner.embedders.0." : "cond_stage_model.");
  const UnetConfig unetConfig = readUnetConfig(*weights_, file_.metadata, family != "sd1");
  VaeConfig vaeConfig = readVaeConfig(*weights_);
  int64_t contextWidth = clipConfig.width;
  // label_emb takes the pooled text and then this many sinusoidal embeddings (sizes, crop, score).
  auto checkAddedWidth = [&](const ClipConfig& pooling, int embeddings) {
    const int64_t rest = unetConfig.admChannels - pooling.projection;
    if (pooling.projection <= 0 || rest <= 0 || rest % (2 * embeddings) != 0) {
      throw Error(ErrorCode::ModelFormat, file_.path + ": the UNet's label_emb takes " + std::to_string(unetConfig.admChannels) +
                                              " values, which is not the pooled text (" + std::to_string(pooling.projection) +
                                              ") plus " + std::to_string(embeddings) + " embeddings of even width");
    }
  };
  if (sgm) {
    // As the reference engine runs SDXL: the encoders' penultimate layers without the final norm;
    // bigG (the second encoder of the base, the only one of the refiner) pads with 0 after the end
    // token and gives the pooled vector.
    clipConfig.defaultClipSkip = 2;
    clipConfig.finalNormOnHidden = false;
    vaeConfig.latentScale = 0.13025f;
  }
  if (xl) {
    ClipConfig bigG = readClipConfig(*weights_, file_.metadata, "conditioner.embedders.1.");
    bigG.finalNormOnHidden = false;
    bigG.padAfterEnd = 0;
    contextWidth += bigG.width;
    checkAddedWidth(bigG, 6);
    clip2_ = std::make_unique<ClipTextEncoder>(bigG, *weights_, *backend_);
  } else if (refiner_) {
    clipConfig.padAfterEnd = 0;
    checkAddedWidth(clipConfig, 5);
  } else if (unetConfig.admChannels > 0) {
    throw Error(ErrorCode::ModelUnsupported, file_.path + ": a " + family + " UNet with label_emb (class-conditioned) is not supported");
  }
  if (contextWidth != unetConfig.contextDim) {
    throw Error(ErrorCode::ModelFormat, file_.path + ": text encoder width " + std::to_string(contextWidth) +
                                            " does not match the UNet's cross-attention width " + std::to_string(unetConfig.contextDim));
  }
  if (unetConfig.outChannels != vaeConfig.latentChannels) {
    throw Error(ErrorCode::ModelFormat, file_.path + ": UNet output channels " + std::to_string(unetConfig.outChannels) +
                                            " do not match the VAE's latent channels " + std::to_string(vaeConfig.latentChannels));
  }
  const int64_t expectedIn = vaeConfig.latentChannels;
  if (unetConfig.inChannels != expectedIn && unetConfig.inChannels != 2 * expectedIn + 1) {
    throw Error(ErrorCode::ModelUnsupported, file_.path + ": UNet takes " + std::to_string(unetConfig.inChannels) +
                                                 " input channels; supported are " + std::to_string(expectedIn) + " and " +
                                                 std::to_string(2 * expectedIn + 1) + " (inpainting)");
  }
  clip_ = std::make_unique<ClipTextEncoder>(clipConfig, *weights_, *backend_);
  unet_ = std::make_unique<Unet>(unetConfig, *weights_, *backend_);
  vae_ = std::make_unique<Vae>(vaeConfig, *weights_, *backend_);
  clip_->validate();
  if (clip2_) clip2_->validate();
  unet_->validate();
  vae_->validate();
  if (!params.taesd.empty()) {
    taesd_ = std::make_unique<Taesd>(params.taesd, *backend_, threads);
    const TaesdConfig& tc = taesd_->config();
    if (tc.latentChannels != vaeConfig.latentChannels || tc.scale() != vaeConfig.scale()) {
      throw Error(ErrorCode::ModelUnsupported, params.taesd + ": this TAESD decodes " + std::to_string(tc.latentChannels) +
                                                   "-channel latents at " + std::to_string(tc.scale()) + " pixels per cell, the model's VAE " +
                                                   std::to_string(vaeConfig.latentChannels) + " at " + std::to_string(vaeConfig.scale()));
    }
  }

  vPrediction_ = prediction == "v";
  threads_ = threads;
  info_.family = family;
  info_.prediction = prediction;
  info_.unetInChannels = static_cast<int>(unetConfig.inChannels);
  info_.contextDim = static_cast<int>(contextWidth);
  // SDXL's second encoder pads with 0 by itself; the first one, like SD 1.x, with the end token.
  info_.padToken = family == "sd2" ? 0 : 49407;
  info_.vaeScale = vaeConfig.scale();
  info_.weightBytes = weights_->bytes();
  info_.backend = backend_->name();
  info_.format = file_.format;
  info_.fileBytes = file_.fileSize;
  info_.storedTypes = weights_->storedTypes();
  info_.taesd = taesd_ != nullptr;
  // The encoders whose ids a caller may give (the prompt's rows feed every encoder of these families).
  if (family == "sd1" || family == "sdxl") info_.textEncoders = {"clipL"};
  if (taesd_) info_.weightBytes += taesd_->bytes();
  for (const std::string& name : weights_->unused()) {
    if (name.find("position_ids") == std::string::npos && name.find("logit_scale") == std::string::npos &&
        name.find("text_projection") == std::string::npos) {
      info_.unusedTensors.push_back(name);
    }
  }
}

}  // namespace sdnode
