#include "unet.h"

#include "metadata.h"
#include "nn.h"
#include "sdnode.h"
#include "unet_blocks.h"

namespace sdnode {

namespace {

const std::string kPrefix = "model.diffusion_model.";

}  // namespace

UnetConfig readUnetConfig(const Weights& w, const std::map<std::string, std::string>& metadata, bool headDim64) {
  UnetConfig c;
  readUnetEncoder(w, kPrefix, c);
  if (headDim64) {
    c.headDim = metadataPositiveInt(metadata, "sdnode.unet_head_dim", 64);
  } else {
    c.heads = metadataPositiveInt(metadata, "sdnode.unet_num_heads", 8);
  }
  c.outChannels = w.shape(kPrefix + "out.2.weight").at(0);
  int64_t channels = c.middle.back().out;
  for (int i = 0; w.has(kPrefix + "output_blocks." + std::to_string(i) + ".0.in_layers.2.weight"); i++) {
    c.output.push_back(readUnetBlock(w, kPrefix + "output_blocks." + std::to_string(i) + ".", channels));
  }
  if (c.output.size() != c.input.size() + 1) {
    throw Error(ErrorCode::ModelUnsupported, "UNet blocks do not form the LDM layout (" + std::to_string(c.input.size()) +
                                                 " input blocks, " + std::to_string(c.output.size()) + " output blocks)");
  }
  for (const auto* blocks : {&c.input, &c.output}) {
    for (const auto& block : *blocks) checkUnetHeads(c, block);
  }
  checkUnetHeads(c, c.middle);
  return c;
}

Unet::Unet(const UnetConfig& config, Weights& weights, Backend& backend) : config_(config), weights_(weights), runner_(backend) {}

ggml_tensor* Unet::build(GraphBuild& g, const float* x, int64_t width, int64_t height, const float* timestep, const float* context,
                         int64_t contextTokens, const float* added, const UnetControl& control) {
  Net n{g.ctx(), weights_, circular_, &g};
  ggml_context* ctx = g.ctx();
  const UnetConfig& c = config_;
  ggml_tensor* h = g.input(GGML_TYPE_F32, {width, height, c.inChannels, 1}, x);
  ggml_tensor* ctxTokens = g.input(GGML_TYPE_F32, {c.contextDim, contextTokens, 1}, context);
  ggml_tensor* emb = unetEmbedding(n, g, kPrefix, c, timestep, added);
  // A ControlNet's residual for `target` (a skip connection or the middle block's output), added to it.
  auto addControl = [&](ggml_tensor* target, size_t index) {
    if (control.empty()) return target;
    const std::vector<float>& residual = control.at(index);
    if (static_cast<int64_t>(residual.size()) != ggml_nelements(target)) {
      throw Error(ErrorCode::Internal, "ControlNet residual " + std::to_string(index) + " has " + std::to_string(residual.size()) +
                                           " values for a UNet feature of " + std::to_string(ggml_nelements(target)));
    }
    return ggml_add(ctx, target, g.input(GGML_TYPE_F32, {target->ne[0], target->ne[1], target->ne[2], 1}, residual.data()));
  };

  // x: [W, H, C, 1] throughout; skips hold every input block's output.
  std::vector<ggml_tensor*> skips;
  h = conv2d(n, h, kPrefix + "input_blocks.0.0", c.inChannels, c.modelChannels, 3, 1, 1);
  skips.push_back(h);
  for (const auto& block : c.input) {
    h = runUnetLayers(n, h, block, emb, ctxTokens, c, nullptr);
    skips.push_back(h);
  }
  if (!control.empty() && control.size() != skips.size() + 1) {
    throw Error(ErrorCode::Internal, "the UNet takes " + std::to_string(skips.size() + 1) + " ControlNet residuals, got " +
                                         std::to_string(control.size()));
  }
  h = addControl(runUnetLayers(n, h, c.middle, emb, ctxTokens, c, nullptr), skips.size());
  for (const auto& block : c.output) {
    ggml_tensor* skip = addControl(skips.back(), skips.size() - 1);
    skips.pop_back();
    // A resampler missing from (or extra in) the checkpoint shows here first; ggml_concat would abort.
    if (h->ne[0] != skip->ne[0] || h->ne[1] != skip->ne[1]) {
      throw Error(ErrorCode::ModelFormat, block.front().prefix + " gets a " + std::to_string(h->ne[0]) + "x" + std::to_string(h->ne[1]) +
                                              " input but its skip connection is " + std::to_string(skip->ne[0]) + "x" +
                                              std::to_string(skip->ne[1]) + " (an up- or downsampler is missing or extra)");
    }
    h = ggml_concat(ctx, h, skip, 2);
    h = runUnetLayers(n, h, block, emb, ctxTokens, c, skips.empty() ? nullptr : skips.back());
  }
  h = ggml_silu(ctx, groupNorm(n, h, kPrefix + "out.0", c.modelChannels));
  return conv2d(n, h, kPrefix + "out.2", c.modelChannels, c.outChannels, 3, 1, 1);
}

void Unet::validate() {
  GraphBuild g;
  std::vector<float> x(8 * 8 * config_.inChannels), context(config_.contextDim * 77), added(config_.admChannels);
  float t = 0;
  build(g, x.data(), 8, 8, &t, context.data(), 77, added.data(), {});
}

std::vector<float> Unet::forward(const std::vector<float>& x, int64_t width, int64_t height, float timestep,
                                 const std::vector<float>& context, int64_t contextTokens, const std::vector<float>& added,
                                 const UnetControl& control) {
  if (static_cast<int64_t>(added.size()) != config_.admChannels) {
    throw Error(ErrorCode::Internal, "the UNet's added conditioning has " + std::to_string(added.size()) + " values, not " +
                                         std::to_string(config_.admChannels));
  }
  return runner_.run([&](GraphBuild& g) {
    return build(g, x.data(), width, height, &timestep, context.data(), contextTokens, added.data(), control);
  });
}

}  // namespace sdnode
