#include "z_image.h"

#include <cmath>

#include "clip.h"
#include "dit.h"
#include "nn.h"
#include "sdnode.h"

namespace sdnode {

namespace {

constexpr int64_t kPatch = kDitPatch;
constexpr int64_t kRunMultiple = 32;  // text and image runs are padded to whole multiples of this
constexpr float kRopeTheta = 256.0f;
constexpr float kNormEps = 1e-5f;      // the blocks' and cap_embedder's RMS norms
constexpr float kHeadNormEps = 1e-6f;  // q_norm, k_norm
constexpr int kTimeFrequencies = 256;
const std::vector<int> kRopeAxes = {32, 48, 48};

int64_t paddedRun(int64_t tokens) { return (tokens + kRunMultiple - 1) / kRunMultiple * kRunMultiple; }

// Text at (i + 1, 0, 0) over its padded run, the image's patches at (text run + 1, row, column), the
// image's padding at (0, 0, 0).
std::vector<RopePosition> zImagePositions(int64_t textTokens, int64_t rows, int64_t columns) {
  const int64_t textRun = paddedRun(textTokens), imageTokens = rows * columns;
  std::vector<RopePosition> positions;
  for (int64_t i = 0; i < textRun; i++) positions.push_back({static_cast<float>(i + 1), 0.0f, 0.0f});
  for (int64_t i = 0; i < imageTokens; i++) {
    positions.push_back({static_cast<float>(textRun + 1), static_cast<float>(i / columns), static_cast<float>(i % columns)});
  }
  positions.resize(static_cast<size_t>(textRun + paddedRun(imageTokens)), RopePosition{0.0f, 0.0f, 0.0f});
  return positions;
}

// The model sees time running from noise (0) to image (1000).
std::vector<float> timeEmbedding(float sigma) { return timestepEmbedding(1000.0f - 1000.0f * sigma, kTimeFrequencies); }

}  // namespace

ZImageConfig readZImageConfig(const Weights& w, const std::string& source) {
  auto bad = [&](const std::string& what) { throw Error(ErrorCode::ModelFormat, source + " is not a Z-Image transformer this reads: " + what); };
  ZImageConfig c;
  const std::vector<int64_t>& xIn = w.shape("x_embedder.weight");
  if (xIn.size() != 2 || xIn[1] % (kPatch * kPatch) != 0) bad("x_embedder.weight must be [hidden, channels x 4]");
  c.hidden = xIn[0];
  c.latentChannels = xIn[1] / (kPatch * kPatch);
  c.contextDim = w.shape("cap_embedder.1.weight").at(1);
  c.timeWidth = w.shape("t_embedder.mlp.2.weight").at(0);
  c.layers = countIndexed(w, "layers.", ".attention.qkv.weight");
  c.refiners = countIndexed(w, "noise_refiner.", ".attention.qkv.weight");
  if (c.layers < 1) bad("it has no layers (layers.0.attention.qkv.weight)");
  if (countIndexed(w, "context_refiner.", ".attention.qkv.weight") != c.refiners) {
    bad("it has " + std::to_string(c.refiners) + " noise_refiner blocks but a different number of context_refiner blocks");
  }
  c.headWidth = w.shape("layers.0.attention.q_norm.weight").at(0);
  const int64_t qkv = w.shape("layers.0.attention.qkv.weight").at(0);
  if (c.headWidth != 128 || c.hidden % c.headWidth != 0 || qkv % c.headWidth != 0) {
    throw Error(ErrorCode::ModelUnsupported, source + ": layers.0.attention: Z-Image's RoPE needs 128-wide heads over a whole number of them; this file has " +
                                                 std::to_string(c.headWidth) + "-wide heads, width " + std::to_string(c.hidden));
  }
  c.heads = c.hidden / c.headWidth;
  c.kvHeads = (qkv / c.headWidth - c.heads) / 2;
  if (c.kvHeads < 1 || c.heads % c.kvHeads != 0 || (c.heads + 2 * c.kvHeads) * c.headWidth != qkv) {
    bad("layers.0.attention.qkv.weight gives " + std::to_string(qkv) + " values per token, not q, k and v of whole heads");
  }
  c.ff = w.shape("layers.0.feed_forward.w1.weight").at(0);
  return c;
}

ZImageTransformer::ZImageTransformer(const ZImageConfig& config, Weights& weights, Backend& backend)
    : config_(config), weights_(weights), runner_(backend) {}

ggml_tensor* ZImageTransformer::build(GraphBuild& g, const std::vector<float>& tokens, const std::vector<float>& context, int64_t Tt,
                                      const std::vector<float>& rope, const std::vector<float>& timeEmb) {
  Net n{g.ctx(), weights_, false, &g};
  ggml_context* ctx = g.ctx();
  const ZImageConfig& c = config_;
  const int64_t H = c.hidden, d = c.headWidth, patchWidth = c.latentChannels * kPatch * kPatch;
  const int64_t Ti = static_cast<int64_t>(tokens.size()) / patchWidth, textRun = paddedRun(Tt), imageRun = paddedRun(Ti);
  const int64_t pairs = d / 2;

  // temb: [timeWidth], the adaLN input of the modulated blocks.
  const int64_t tHidden = weights_.shape("t_embedder.mlp.0.weight").at(0);
  ggml_tensor* temb = linear(n, g.input(GGML_TYPE_F32, {kTimeFrequencies}, timeEmb.data()), "t_embedder.mlp.0", kTimeFrequencies, tHidden);
  temb = linear(n, ggml_silu(ctx, temb), "t_embedder.mlp.2", tHidden, c.timeWidth);

  // A run of `count` tokens [H, count] padded with `padName`'s learned token to `run` tokens.
  auto padRun = [&](ggml_tensor* x, int64_t count, int64_t run, const char* padName) {
    if (run == count) return x;
    ggml_tensor* pad = ggml_reshape_2d(ctx, weights_.get(padName, {1, H}), H, 1);
    if (pad->type != GGML_TYPE_F32) pad = ggml_cast(ctx, pad, GGML_TYPE_F32);
    return ggml_concat(ctx, x, ggml_repeat_4d(ctx, pad, H, run - count, 1, 1), 1);
  };
  // txt: [H, textRun], img: [H, imageRun]
  ggml_tensor* txt = rmsNorm(n, g.input(GGML_TYPE_F32, {c.contextDim, Tt}, context.data()), "cap_embedder.0.weight", c.contextDim, kNormEps);
  txt = padRun(linear(n, txt, "cap_embedder.1", c.contextDim, H), Tt, textRun, "cap_pad_token");
  ggml_tensor* img = padRun(linear(n, g.input(GGML_TYPE_F32, {patchWidth, Ti}, tokens.data()), "x_embedder", patchWidth, H), Ti, imageRun, "x_pad_token");

  ggml_tensor* table = g.input(GGML_TYPE_F32, {pairs, textRun + imageRun, 2}, rope.data());
  const Rope textRope = ropeOf(ctx, table, 0, textRun), imageRope = ropeOf(ctx, table, textRun, imageRun), jointRope = ropeOf(ctx, table);

  // x: [H, T] -> [H, T]; q, k and v of whole heads side by side in qkv, each head's q and k RMS-normed.
  auto attend = [&](ggml_tensor* x, const std::string& a, const Rope& pe) {
    const int64_t T = x->ne[1];
    ggml_tensor* qkv = linear(n, x, a + "qkv", H, (c.heads + 2 * c.kvHeads) * d, false);
    auto headsOf = [&](int64_t from, int64_t count) { return ggml_reshape_3d(ctx, ggml_cont(ctx, valuesOf(ctx, qkv, from * d, count * d)), d, count, T); };
    ggml_tensor* q = rotate(ctx, rmsNorm(n, headsOf(0, c.heads), a + "q_norm.weight", d, kHeadNormEps), pe);
    ggml_tensor* k = rotate(ctx, rmsNorm(n, headsOf(c.heads, c.kvHeads), a + "k_norm.weight", d, kHeadNormEps), pe);
    ggml_tensor* v = ggml_reshape_2d(ctx, headsOf(c.heads + c.kvHeads, c.kvHeads), d * c.kvHeads, T);
    k = repeatKvHeads(ctx, k, d, c.kvHeads, c.heads);
    v = repeatKvHeads(ctx, v, d, c.kvHeads, c.heads);
    return linear(n, attention(n, q, k, v, static_cast<int>(c.heads), false), a + "out", c.heads * d, H, false);
  };
  // One block; `modulated` ones scale their normed inputs by the timestep and gate their outputs.
  auto block = [&](ggml_tensor* x, const std::string& p, const Rope& pe, bool modulated) {
    ggml_tensor* m = modulated ? linear(n, temb, p + "adaLN_modulation.0", c.timeWidth, 4 * H) : nullptr;
    auto scaled = [&](ggml_tensor* h, int piece) { return m ? ggml_add(ctx, h, ggml_mul(ctx, h, pieceOf(ctx, m, H, piece))) : h; };
    auto gated = [&](ggml_tensor* h, int piece) { return m ? ggml_mul(ctx, h, ggml_tanh(ctx, pieceOf(ctx, m, H, piece))) : h; };
    ggml_tensor* h = attend(scaled(rmsNorm(n, x, p + "attention_norm1.weight", H, kNormEps), 0), p + "attention.", pe);
    x = ggml_add(ctx, x, gated(rmsNorm(n, h, p + "attention_norm2.weight", H, kNormEps), 1));
    h = scaled(rmsNorm(n, x, p + "ffn_norm1.weight", H, kNormEps), 2);
    const std::string f = p + "feed_forward.";
    h = ggml_mul(ctx, ggml_silu(ctx, linear(n, h, f + "w1", H, c.ff, false)), linear(n, h, f + "w3", H, c.ff, false));
    h = linear(n, h, f + "w2", c.ff, H, false);
    return ggml_add(ctx, x, gated(rmsNorm(n, h, p + "ffn_norm2.weight", H, kNormEps), 3));
  };

  for (int i = 0; i < c.refiners; i++) txt = block(txt, "context_refiner." + std::to_string(i) + ".", textRope, false);
  for (int i = 0; i < c.refiners; i++) img = block(img, "noise_refiner." + std::to_string(i) + ".", imageRope, true);
  // x: [H, textRun + imageRun], text first
  ggml_tensor* x = ggml_concat(ctx, txt, img, 1);
  for (int i = 0; i < c.layers; i++) x = block(x, "layers." + std::to_string(i) + ".", jointRope, true);

  // The final layer on the image's own tokens: layer norm without weights, scaled by the timestep.
  x = ggml_norm(ctx, ggml_cont(ctx, tokensOf(ctx, x, textRun, Ti)), 1e-6f);
  ggml_tensor* scale = linear(n, ggml_silu(ctx, temb), "final_layer.adaLN_modulation.1", c.timeWidth, H);
  x = ggml_add(ctx, x, ggml_mul(ctx, x, scale));
  return linear(n, x, "final_layer.linear", H, patchWidth);
}

void ZImageTransformer::validate() {
  int pairs = 0;
  for (int a : kRopeAxes) pairs += a / 2;
  if (2 * pairs != config_.headWidth) throw Error(ErrorCode::Internal, "Z-Image RoPE axes must fill the head width");
  const int64_t w = 2, h = 2, textTokens = 1;
  const std::vector<float> latent(static_cast<size_t>(config_.latentChannels * w * h), 0.0f);
  const std::vector<float> context(static_cast<size_t>(config_.contextDim * textTokens), 0.0f);
  GraphBuild g;
  build(g, patchify(latent, config_.latentChannels, h, w, PatchOrder::ChannelLast), context, textTokens,
        ropeTable(kRopeAxes, kRopeTheta, zImagePositions(textTokens, 1, 1)), timeEmbedding(1.0f));
}

std::vector<float> ZImageTransformer::forward(const std::vector<float>& latent, int64_t width, int64_t height, float sigma,
                                              const std::vector<float>& context, int64_t contextTokens) {
  if (width % kPatch != 0 || height % kPatch != 0) throw Error(ErrorCode::InvalidArgument, "Z-Image latents must have an even width and height");
  if (contextTokens < 1 || static_cast<int64_t>(context.size()) != contextTokens * config_.contextDim) {
    throw Error(ErrorCode::Internal, "Z-Image conditioning has the wrong size");
  }
  const int64_t C = config_.latentChannels, rows = height / kPatch, columns = width / kPatch;
  const std::vector<float> tokens = patchify(latent, C, height, width, PatchOrder::ChannelLast);
  const std::vector<float> rope = ropeTable(kRopeAxes, kRopeTheta, zImagePositions(contextTokens, rows, columns));
  const std::vector<float> time = timeEmbedding(sigma);
  std::vector<float> out = runner_.run([&](GraphBuild& g) { return build(g, tokens, context, contextTokens, rope, time); });
  // The network predicts image minus noise; the sampler takes noise minus image.
  for (float& v : out) v = -v;
  return unpatchify(out, C, height, width, PatchOrder::ChannelLast);
}

}  // namespace sdnode
