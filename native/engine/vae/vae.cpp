#include "vae.h"

#include <cmath>

#include "nn.h"
#include "sdnode.h"

namespace sdnode {

namespace {

const std::string kPrefix = "first_stage_model.";

std::vector<VaeLevel> readLevels(const Weights& w, const std::string& side, const std::string& resampler) {
  std::vector<VaeLevel> levels;
  for (int l = 0;; l++) {
    const std::string p = kPrefix + side + "." + std::to_string(l);
    VaeLevel level;
    for (int b = 0; w.has(p + ".block." + std::to_string(b) + ".conv1.weight"); b++) {
      const auto& conv = w.shape(p + ".block." + std::to_string(b) + ".conv1.weight");
      level.blocks.emplace_back(conv.at(1), conv.at(0));
    }
    if (level.blocks.empty()) break;
    level.resample = w.has(p + "." + resampler + ".conv.weight");
    levels.push_back(level);
  }
  return levels;
}

// x: [W, H, in, N]
ggml_tensor* resBlock(Net& n, ggml_tensor* x, const std::string& p, int64_t in, int64_t out) {
  ggml_tensor* h = conv2d(n, ggml_silu(n.ctx, groupNorm(n, x, p + ".norm1", in)), p + ".conv1", in, out, 3, 1, 1);
  h = conv2d(n, ggml_silu(n.ctx, groupNorm(n, h, p + ".norm2", out)), p + ".conv2", out, out, 3, 1, 1);
  ggml_tensor* skip = in == out ? x : conv2d(n, x, p + ".nin_shortcut", in, out, 1);
  return ggml_add(n.ctx, skip, h);
}

// Single-head self-attention over all pixels. x: [W, H, C, N]
ggml_tensor* attnBlock(Net& n, ggml_tensor* x, const std::string& p, int64_t c) {
  const int64_t width = x->ne[0], height = x->ne[1];
  ggml_tensor* h = groupNorm(n, x, p + ".norm", c);
  ggml_tensor* q = imageToTokens(n.ctx, conv2d(n, h, p + ".q", c, c, 1));
  ggml_tensor* k = imageToTokens(n.ctx, conv2d(n, h, p + ".k", c, c, 1));
  ggml_tensor* v = imageToTokens(n.ctx, conv2d(n, h, p + ".v", c, c, 1));
  h = tokensToImage(n.ctx, attention(n, q, k, v, 1, false), width, height);
  return ggml_add(n.ctx, x, conv2d(n, h, p + ".proj_out", c, c, 1));
}

ggml_tensor* middle(Net& n, ggml_tensor* x, const std::string& p, int64_t c) {
  x = resBlock(n, x, p + ".block_1", c, c);
  x = attnBlock(n, x, p + ".attn_1", c);
  return resBlock(n, x, p + ".block_2", c, c);
}

}  // namespace

VaeConfig readVaeConfig(const Weights& w) {
  VaeConfig c;
  if (!w.has(kPrefix + "decoder.conv_in.weight")) {
    throw Error(ErrorCode::ModelUnsupported, "no VAE found (expected first_stage_model.decoder.conv_in.weight)");
  }
  const auto& convIn = w.shape(kPrefix + "decoder.conv_in.weight");
  c.middleChannels = convIn.at(0);
  c.latentChannels = convIn.at(1);
  c.baseChannels = w.shape(kPrefix + "decoder.conv_out.weight").at(1);
  c.decoder = readLevels(w, "decoder.up", "upsample");
  if (c.decoder.empty()) throw Error(ErrorCode::ModelFormat, "the VAE decoder has no levels (first_stage_model.decoder.up.*)");
  if (w.has(kPrefix + "encoder.conv_in.weight")) c.encoder = readLevels(w, "encoder.down", "downsample");
  c.quantConv = w.has(kPrefix + "post_quant_conv.weight");
  return c;
}

Vae::Vae(const VaeConfig& config, Weights& weights, Backend& backend) : config_(config), weights_(weights), runner_(backend) {}

ggml_tensor* Vae::buildDecoder(GraphBuild& g, const float* latent, int64_t width, int64_t height) {
  Net n{g.ctx(), weights_, circular_, &g};
  const VaeConfig& c = config_;
  const std::string p = kPrefix + "decoder.";
  ggml_tensor* x = g.input(GGML_TYPE_F32, {width, height, c.latentChannels, 1}, latent);
  if (c.quantConv) x = conv2d(n, x, kPrefix + "post_quant_conv", c.latentChannels, c.latentChannels, 1);
  x = conv2d(n, x, p + "conv_in", c.latentChannels, c.middleChannels, 3, 1, 1);
  x = middle(n, x, p + "mid", c.middleChannels);
  for (int l = static_cast<int>(c.decoder.size()) - 1; l >= 0; l--) {
    const std::string lp = p + "up." + std::to_string(l);
    const VaeLevel& level = c.decoder[l];
    for (size_t b = 0; b < level.blocks.size(); b++) {
      x = resBlock(n, x, lp + ".block." + std::to_string(b), level.blocks[b].first, level.blocks[b].second);
    }
    if (level.resample) {
      const int64_t ch = level.blocks.back().second;
      x = ggml_upscale(n.ctx, x, 2, GGML_SCALE_MODE_NEAREST);
      x = conv2d(n, x, lp + ".upsample.conv", ch, ch, 3, 1, 1);
    }
  }
  x = ggml_silu(n.ctx, groupNorm(n, x, p + "norm_out", c.baseChannels));
  return conv2d(n, x, p + "conv_out", c.baseChannels, 3, 3, 1, 1);
}

ggml_tensor* Vae::buildEncoder(GraphBuild& g, const float* image, int64_t width, int64_t height) {
  Net n{g.ctx(), weights_, circular_, &g};
  const VaeConfig& c = config_;
  const std::string p = kPrefix + "encoder.";
  ggml_tensor* x = g.input(GGML_TYPE_F32, {width, height, 3, 1}, image);
  x = conv2d(n, x, p + "conv_in", 3, c.baseChannels, 3, 1, 1);
  for (size_t l = 0; l < c.encoder.size(); l++) {
    const std::string lp = p + "down." + std::to_string(l);
    const VaeLevel& level = c.encoder[l];
    for (size_t b = 0; b < level.blocks.size(); b++) {
      x = resBlock(n, x, lp + ".block." + std::to_string(b), level.blocks[b].first, level.blocks[b].second);
    }
    if (level.resample) {
      // LDM pads only right and bottom before its stride-2 convolution.
      const int64_t ch = level.blocks.back().second;
      x = ggml_pad(n.ctx, x, 1, 1, 0, 0);
      x = conv2d(n, x, lp + ".downsample.conv", ch, ch, 3, 2, 0);
    }
  }
  x = middle(n, x, p + "mid", c.middleChannels);
  x = ggml_silu(n.ctx, groupNorm(n, x, p + "norm_out", c.middleChannels));
  x = conv2d(n, x, p + "conv_out", c.middleChannels, 2 * c.latentChannels, 3, 1, 1);
  if (!c.quantConv) return x;
  return conv2d(n, x, kPrefix + "quant_conv", 2 * c.latentChannels, 2 * c.latentChannels, 1);
}

void Vae::validate() {
  const int64_t side = config_.scale();
  {
    GraphBuild g;
    std::vector<float> latent(config_.latentChannels);
    buildDecoder(g, latent.data(), 1, 1);
  }
  if (!config_.encoder.empty()) {
    GraphBuild g;
    std::vector<float> image(3 * side * side);
    buildEncoder(g, image.data(), side, side);
  }
}

std::vector<float> Vae::decode(const std::vector<float>& latent, int64_t width, int64_t height) {
  return runner_.run([&](GraphBuild& g) { return buildDecoder(g, latent.data(), width, height); });
}

std::vector<float> Vae::encode(const std::vector<float>& image, int64_t width, int64_t height) {
  if (config_.encoder.empty()) throw Error(ErrorCode::ModelUnsupported, "this checkpoint has no VAE encoder (first_stage_model.encoder.*)");
  return runner_.run([&](GraphBuild& g) { return buildEncoder(g, image.data(), width, height); });
}

void Vae::releaseBuffers() { runner_.release(); }

}  // namespace sdnode
