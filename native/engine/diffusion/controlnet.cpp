#include "controlnet.h"

#include "nn.h"
#include "sdnode.h"
#include "unet_blocks.h"
#include "unet_names.h"

namespace sdnode {

namespace {

constexpr int kHintConvolutions = 8;

bool isWeight(const CheckpointTensor& t) { return isWeightType(t.type) && t.elements() > 0; }

// Files that hold a ControlNet beside other networks (the "control_model." prefix) load only its tensors.
bool isControlModelWeight(const CheckpointTensor& t) { return t.name.rfind("control_model.", 0) == 0 && isWeight(t); }

bool hasTensor(const Checkpoint& file, const std::string& name) { return file.tensors.count(name) > 0; }

bool startsWith(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

// Where "N.rest" has its dot after a block index N of 1 to 3 digits; 0 for anything else (a file's
// names are not trusted to hold numbers that fit).
size_t indexEnd(const std::string& text) {
  const size_t dot = text.find('.');
  if (dot == std::string::npos || dot == 0 || dot > 3 || text.find_first_not_of("0123456789") != dot) return 0;
  return dot;
}

// The original name of a diffusers ControlNetModel tensor that the UNet has no counterpart of (the
// hint block, the zero convolutions), or "".
std::string controlOnlyName(const std::string& name, int hintBlocks) {
  const std::string hint = "controlnet_cond_embedding.", down = "controlnet_down_blocks.", mid = "controlnet_mid_block.";
  if (startsWith(name, hint + "conv_in.")) return "input_hint_block.0." + name.substr(hint.size() + 8);
  if (startsWith(name, hint + "conv_out.")) return "input_hint_block." + std::to_string(2 * (hintBlocks + 1)) + "." + name.substr(hint.size() + 9);
  if (startsWith(name, hint + "blocks.")) {
    const std::string rest = name.substr(hint.size() + 7);
    const size_t dot = indexEnd(rest);
    if (dot == 0) return "";
    return "input_hint_block." + std::to_string(2 * std::stoi(rest.substr(0, dot)) + 2) + rest.substr(dot);
  }
  if (startsWith(name, down)) {
    const std::string rest = name.substr(down.size());
    const size_t dot = indexEnd(rest);
    if (dot == 0) return "";
    return "zero_convs." + rest.substr(0, dot) + ".0" + rest.substr(dot);
  }
  if (startsWith(name, mid)) return "middle_block_out.0." + name.substr(mid.size());
  return "";
}

// A ControlNet in diffusers' layout (ControlNetModel, as controlnet-canny-sdxl-1.0 ships it) under
// the original names: its UNet encoder's names are the model's UNet's in diffusers' spelling (the
// table LoRA files are matched with), the rest are its own. Tensors of neither stay out.
Checkpoint originalLayout(const Checkpoint& file, const Checkpoint& model) {
  const std::string unet = "model.diffusion_model.";
  const UnetBlocks blocks = unetBlocks(model, unet);
  std::map<std::string, std::string> original;  // diffusers tensor name → original
  for (const auto& [name, t] : model.tensors) {
    if (!startsWith(name, unet)) continue;
    const std::string ldm = name.substr(unet.size());
    const size_t dot = ldm.rfind('.');
    if (dot == std::string::npos) continue;
    const std::string diffusers = diffusersUnetPath(ldm.substr(0, dot), blocks);
    if (!diffusers.empty()) original[diffusers + ldm.substr(dot)] = ldm;
  }
  int hintBlocks = 0;
  while (hasTensor(file, "controlnet_cond_embedding.blocks." + std::to_string(hintBlocks) + ".weight")) hintBlocks++;
  Checkpoint out = file;
  out.tensors.clear();
  for (const auto& [name, t] : file.tensors) {
    std::string renamed = controlOnlyName(name, hintBlocks);
    if (renamed.empty() && original.count(name)) renamed = original.at(name);
    if (renamed.empty()) continue;
    CheckpointTensor tensor = t;
    tensor.name = "control_model." + renamed;
    out.tensors[tensor.name] = tensor;
  }
  return out;
}

// The file, in the original layout whichever it is stored in.
Checkpoint readControlNet(const std::string& path, const Checkpoint& model) {
  Checkpoint file = openCheckpoint(path);
  return hasTensor(file, "controlnet_cond_embedding.conv_in.weight") ? originalLayout(file, model) : file;
}

// The layout's prefix, or an error saying what the file is instead.
std::string controlPrefix(const Checkpoint& file) {
  if (hasTensor(file, "control_model.input_hint_block.0.weight")) return "control_model.";
  if (hasTensor(file, "input_hint_block.0.weight")) return "";
  if (hasTensor(file, "model.diffusion_model.input_blocks.0.0.weight")) {
    throw Error(ErrorCode::ModelUnsupported, file.path + " is a Stable Diffusion checkpoint, not a ControlNet");
  }
  throw Error(ErrorCode::ModelUnsupported, file.path + " is not a ControlNet (expected control_model.input_hint_block.0.weight, "
                                                       "control_model.zero_convs.N and a copy of the UNet's input blocks)");
}

// The family a ControlNet copies its UNet from, told as checkpoints are: SDXL's has label_emb, SD 2.x's
// linear proj_in / proj_out, SD 1.x's 1x1 convolutions.
std::string familyOf(const UnetConfig& c) {
  if (c.admChannels > 0) return "SDXL";
  return c.linearProjection ? "SD 2.x" : "SD 1.x";
}

int64_t blockOut(const std::vector<UnetBlock>& layers) { return layers.back().out; }

}  // namespace

ControlNet::ControlNet(const std::string& path, Backend& backend, const Checkpoint& model, const UnetConfig& unet, int64_t latentChannels,
                       const std::string& modelFamily)
    : file_(readControlNet(path, model)), prefix_(controlPrefix(file_)), runner_(backend) {
  weights_ = std::make_unique<Weights>(file_, GGML_TYPE_COUNT, 1, backend.handle(), prefix_.empty() ? isWeight : isControlModelWeight);
  readUnetEncoder(*weights_, prefix_, config_);
  for (int k = 0; weights_->has(prefix_ + "input_hint_block." + std::to_string(2 * k) + ".weight"); k++) {
    hintWidths_.push_back(weights_->shape(prefix_ + "input_hint_block." + std::to_string(2 * k) + ".weight").at(0));
  }
  if (hintWidths_.size() != kHintConvolutions || hintWidths_.back() != config_.modelChannels) {
    throw Error(ErrorCode::ModelUnsupported, path + ": the hint block has " + std::to_string(hintWidths_.size()) +
                                                 " convolutions (input_hint_block.0, .2, …); a ControlNet's has " +
                                                 std::to_string(kHintConvolutions) + ", the last giving the UNet copy's " +
                                                 std::to_string(config_.modelChannels) + " channels");
  }

  auto mismatch = [&](const std::string& what) {
    throw Error(ErrorCode::InvalidArgument, path + " is a ControlNet for " + familyOf(config_) + " but the model is " +
                                                modelFamily + " (" + what + ")");
  };
  if (config_.contextDim != unet.contextDim) {
    mismatch("its text context is " + std::to_string(config_.contextDim) + " wide, the model's " + std::to_string(unet.contextDim));
  }
  if (config_.modelChannels != unet.modelChannels || config_.admChannels != unet.admChannels || config_.inChannels != latentChannels) {
    mismatch("its UNet copy starts at " + std::to_string(config_.modelChannels) + " channels from " + std::to_string(config_.inChannels) +
             " latent channels, the model's at " + std::to_string(unet.modelChannels) + " from " + std::to_string(latentChannels));
  }
  bool sameBlocks = config_.input.size() == unet.input.size() && blockOut(config_.middle) == blockOut(unet.middle);
  for (size_t i = 0; sameBlocks && i < unet.input.size(); i++) sameBlocks = blockOut(config_.input[i]) == blockOut(unet.input[i]);
  if (!sameBlocks) mismatch("its input blocks differ from the UNet's");
  config_.heads = unet.heads;
  config_.headDim = unet.headDim;
  for (const auto& block : config_.input) checkUnetHeads(config_, block);
  checkUnetHeads(config_, config_.middle);

  // Every weight is checked against the architecture now, not at the first step.
  GraphBuild g;
  std::vector<float> x(8 * 8 * config_.inChannels), hint(8 * 8 * config_.modelChannels), context(config_.contextDim),
      added(config_.admChannels), pixels(64 * 64 * 3);
  float t = 0;
  build(g, x.data(), 8, 8, &t, hint.data(), context.data(), 1, added.data());
  GraphBuild hintGraph;
  buildHint(hintGraph, pixels.data(), 64, 64);
}

// planes: [W, H, 3, 1] in [0, 1] -> [W/8, H/8, modelChannels, 1]
ggml_tensor* ControlNet::buildHint(GraphBuild& g, const float* planes, int64_t width, int64_t height) {
  Net n{g.ctx(), *weights_, false, &g};
  ggml_tensor* h = g.input(GGML_TYPE_F32, {width, height, 3, 1}, planes);
  int64_t channels = 3;
  for (int k = 0; k < kHintConvolutions; k++) {
    // Convolutions 2, 4 and 6 halve the size: 8x down to the latent.
    const int stride = k == 2 || k == 4 || k == 6 ? 2 : 1;
    h = conv2d(n, h, prefix_ + "input_hint_block." + std::to_string(2 * k), channels, hintWidths_[k], 3, stride, 1);
    channels = hintWidths_[k];
    if (k + 1 < kHintConvolutions) h = ggml_silu(g.ctx(), h);
  }
  return h;
}

std::vector<ggml_tensor*> ControlNet::build(GraphBuild& g, const float* x, int64_t width, int64_t height, const float* timestep,
                                            const float* guidedHint, const float* context, int64_t contextTokens, const float* added) {
  Net n{g.ctx(), *weights_, false, &g};
  const UnetConfig& c = config_;
  ggml_tensor* h = g.input(GGML_TYPE_F32, {width, height, c.inChannels, 1}, x);
  ggml_tensor* hint = g.input(GGML_TYPE_F32, {width, height, c.modelChannels, 1}, guidedHint);
  ggml_tensor* ctxTokens = g.input(GGML_TYPE_F32, {c.contextDim, contextTokens, 1}, context);
  ggml_tensor* emb = unetEmbedding(n, g, prefix_, c, timestep, added);
  auto zeroConv = [&](ggml_tensor* t, const std::string& name) {
    return conv2d(n, t, prefix_ + name, t->ne[2], t->ne[2], 1);
  };
  std::vector<ggml_tensor*> residuals;
  h = ggml_add(g.ctx(), conv2d(n, h, prefix_ + "input_blocks.0.0", c.inChannels, c.modelChannels, 3, 1, 1), hint);
  residuals.push_back(zeroConv(h, "zero_convs.0.0"));
  for (size_t i = 0; i < c.input.size(); i++) {
    h = runUnetLayers(n, h, c.input[i], emb, ctxTokens, c, nullptr);
    residuals.push_back(zeroConv(h, "zero_convs." + std::to_string(i + 1) + ".0"));
  }
  h = runUnetLayers(n, h, c.middle, emb, ctxTokens, c, nullptr);
  residuals.push_back(zeroConv(h, "middle_block_out.0"));
  return residuals;
}

std::vector<float> ControlNet::guidedHint(const std::vector<uint8_t>& rgb, int64_t width, int64_t height) {
  if (width % 8 != 0 || height % 8 != 0 || rgb.size() != static_cast<size_t>(width * height * 3)) {
    throw Error(ErrorCode::InvalidArgument, "a control image must hold width*height*3 RGB bytes at a size of multiples of 8");
  }
  const int64_t plane = width * height;
  std::vector<float> planes(plane * 3);
  for (int64_t p = 0; p < plane; p++) {
    for (int c = 0; c < 3; c++) planes[c * plane + p] = rgb[p * 3 + c] / 255.0f;
  }
  return runner_.run([&](GraphBuild& g) { return buildHint(g, planes.data(), width, height); });
}

UnetControl ControlNet::forward(const std::vector<float>& x, int64_t width, int64_t height, float timestep,
                                const std::vector<float>& guidedHint, const std::vector<float>& context, int64_t contextTokens,
                                const std::vector<float>& added) {
  if (static_cast<int64_t>(guidedHint.size()) != width * height * config_.modelChannels) {
    throw Error(ErrorCode::Internal, "the ControlNet's guided hint does not match the latent's size");
  }
  return runner_.runOutputs([&](GraphBuild& g) {
    return build(g, x.data(), width, height, &timestep, guidedHint.data(), context.data(), contextTokens, added.data());
  });
}

}  // namespace sdnode
