// Z-Image's parts of FlowModel: its components (the transformer, the Qwen3 text encoder, FLUX.1's
// VAE) and its prompt encoding; sampling and decoding are the other flow families'.
#include "flow_model.h"

namespace sdnode {

void FlowModel::loadZImage(const LoadParams& params, ggml_type weightType, int threads) {
  zImage_ = true;
  info_.family = "z-image";
  info_.textEncoders = {"llm"};
  auto refuse = [](const std::string& given, const char* what) {
    if (!given.empty()) throw Error(ErrorCode::InvalidArgument, std::string("Z-Image models take no ") + what);
  };
  refuse(params.clipL, "CLIP-L text encoder (--clip-l)");
  refuse(params.clipG, "CLIP-G text encoder (--clip-g)");
  refuse(params.t5xxl, "T5-XXL text encoder (--t5xxl); their text encoder is a Qwen3 model (--llm)");
  zImageConfig_ = readZImageConfig(*diffusion_->weights, params.diffusionModel + " (--diffusion-model)");
  buildTransformer();
  noteComponent("diffusionModel", *diffusion_);
  if (params.lowMemory) releaseTransformer();
  auto load = [&](const std::string& path, ComponentRole role, const char* what) {
    if (path.empty()) throw Error(ErrorCode::InvalidArgument, std::string("this Z-Image model needs ") + what + ": give its file with " + componentFlag(role));
    return loadComponent(path, role, weightType, threads, backend_->handle());
  };
  llmFile_ = load(params.llm, ComponentRole::Llm, "the Qwen3 text encoder (qwen_3_4b.safetensors, or a Qwen3-4B GGUF)");
  vaeFile_ = load(params.vae, ComponentRole::Vae, "the FLUX.1 VAE (ae.safetensors)");
  llmConfig_ = readLlmConfig(*llmFile_->weights, params.llm + " (--llm)");
  VaeConfig vaeConfig = readVaeConfig(*vaeFile_->weights);
  // Z-Image shares FLUX.1's VAE and its latent normalisation.
  vaeConfig.latentScale = kFluxLatentScale;
  vaeConfig.latentShift = kFluxLatentShift;
  auto mismatch = [](const std::string& what) { throw Error(ErrorCode::ModelFormat, what); };
  if (zImageConfig_.contextDim != llmConfig_.width) {
    mismatch(params.diffusionModel + ": the transformer takes " + std::to_string(zImageConfig_.contextDim) + "-wide text states but the Qwen3 model (" +
             params.llm + ") gives " + std::to_string(llmConfig_.width));
  }
  if (zImageConfig_.latentChannels != vaeConfig.latentChannels) {
    mismatch(params.diffusionModel + ": the transformer works on " + std::to_string(zImageConfig_.latentChannels) + "-channel latents but the VAE (" +
             params.vae + ") has " + std::to_string(vaeConfig.latentChannels));
  }
  // The reference engine's default shift for Z-Image, over the discrete schedule.
  schedule_ = {FlowShiftKind::Snr, 3.0f};
  llm_ = std::make_unique<LlmEncoder>(llmConfig_, *llmFile_->weights, *backend_);
  vae_ = std::make_unique<Vae>(vaeConfig, *vaeFile_->weights, *backend_);
  llm_->validate();
  vae_->validate();
  loadTaesd(params, threads, "Z-Image", "taef1");
  noteModel(zImageConfig_.latentChannels, zImageConfig_.contextDim, vaeConfig.scale());
}

FlowText FlowModel::encodeZImagePrompt(const Conditioning& llmTokens) {
  if (llmTokens.weights.size() != llmTokens.tokens.size()) {
    throw Error(ErrorCode::InvalidArgument, "the Qwen3 conditioning must have one weight per token");
  }
  FlowText text;
  text.context = llm_->encode(llmTokens.tokens);
  weighStates(text.context, llmTokens.weights, llmConfig_.width);
  text.tokens = static_cast<int64_t>(llmTokens.tokens.size());
  return text;
}

}  // namespace sdnode
