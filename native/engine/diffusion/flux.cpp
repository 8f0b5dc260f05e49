#include "flux.h"

#include <cmath>

#include "clip.h"
#include "dit.h"
#include "nn.h"
#include "sdnode.h"

namespace sdnode {

namespace {

constexpr int64_t kHeadWidth = 128;
constexpr int64_t kPatch = kDitPatch;
constexpr float kRopeTheta = 10000.0f;
constexpr int kTimeEmbedding = 256;
// Chroma's approximator makes this many modulation rows, laid out for 19 double and 38 single blocks
// whatever the file holds: single block j at 3j, double block i's image half at 6i + 114, its text
// half at 6i + 228, the final layer's shift and scale last.
constexpr int64_t kChromaRows = 344;
constexpr int64_t kChromaSingleRows = 3 * 38;
constexpr int64_t kChromaDoubleRows = 6 * 19;

// Each approximator row's input: the timestep's embedding (16), the guidance's (16, Chroma is run
// with 0) and the row index's (32), each of value * 1000.
std::vector<float> chromaRows(float sigma) {
  const std::vector<float> time = timestepEmbedding(sigma * 1000.0f, 16), guidance = timestepEmbedding(0.0f, 16);
  std::vector<float> rows;
  rows.reserve(static_cast<size_t>(kChromaRows * 64));
  for (int64_t i = 0; i < kChromaRows; i++) {
    const std::vector<float> index = timestepEmbedding(static_cast<float>(i) * 1000.0f, 32);
    rows.insert(rows.end(), time.begin(), time.end());
    rows.insert(rows.end(), guidance.begin(), guidance.end());
    rows.insert(rows.end(), index.begin(), index.end());
  }
  return rows;
}

// FLUX.1 embeds t * 1000 (and its guidance the same way).
std::vector<float> timeEmbedding(float t) { return timestepEmbedding(t * 1000.0f, kTimeEmbedding); }

// A run of tokens on a grid of RoPE positions (index, row + rowOffset, column + columnOffset); text
// tokens are a 1 x count grid at (0, 0, 0) with no spread.
struct PositionGrid {
  int64_t rows = 0, columns = 0;
  float index = 0, rowOffset = 0, columnOffset = 0;
  bool spread = true;  // false: every token at (index, rowOffset, columnOffset)
};

// The RoPE positions of the grids' tokens, in order.
std::vector<RopePosition> gridPositions(const std::vector<PositionGrid>& grids) {
  std::vector<RopePosition> positions;
  for (const PositionGrid& g : grids) {
    for (int64_t i = 0; i < g.rows * g.columns; i++) {
      positions.push_back({g.index, g.rowOffset + (g.spread ? static_cast<float>(i / g.columns) : 0.0f),
                           g.columnOffset + (g.spread ? static_cast<float>(i % g.columns) : 0.0f)});
    }
  }
  return positions;
}

// The text, the image and the references, as FLUX.1 places them: references at index 1, each next
// to the ones before it (below when taller than wide so far, else to the right), offsets in latent
// cells as the reference engine counts them.
std::vector<PositionGrid> positionGrids(int64_t textTokens, int64_t rows, int64_t columns, const std::vector<FluxReference>* references) {
  std::vector<PositionGrid> grids = {{1, textTokens, 0, 0, 0, false}, {rows, columns, 0, 0, 0, true}};
  if (references == nullptr) return grids;
  int64_t usedRows = 0, usedColumns = 0;
  for (const FluxReference& ref : *references) {
    int64_t rowOffset = 0, columnOffset = 0;
    if (ref.height + usedRows > ref.width + usedColumns) columnOffset = usedColumns;
    else rowOffset = usedRows;
    grids.push_back({ref.height / kPatch, ref.width / kPatch, 1, static_cast<float>(rowOffset), static_cast<float>(columnOffset), true});
    usedRows = std::max(usedRows, ref.height + rowOffset);
    usedColumns = std::max(usedColumns, ref.width + columnOffset);
  }
  return grids;
}

struct Modulation {
  ggml_tensor* shift;
  ggml_tensor* scale;
  ggml_tensor* gate;
};

// silu(vec) through `<prefix>.lin` into `count` runs of (shift, scale, gate), each [hidden].
std::vector<Modulation> modulations(Net& n, ggml_tensor* vec, const std::string& prefix, int64_t hidden, int count) {
  ggml_tensor* m = linear(n, ggml_silu(n.ctx, vec), prefix + ".lin", hidden, 3 * count * hidden);
  std::vector<Modulation> out;
  for (int i = 0; i < count; i++) out.push_back({pieceOf(n.ctx, m, hidden, 3 * i), pieceOf(n.ctx, m, hidden, 3 * i + 1), pieceOf(n.ctx, m, hidden, 3 * i + 2)});
  return out;
}

// x: [128 * heads, T] of q or k, normed per head (RMS, `<norm>.scale`): [128, heads, T].
ggml_tensor* headNorm(Net& n, ggml_tensor* x, const std::string& norm, int64_t heads) {
  x = ggml_reshape_3d(n.ctx, ggml_cont(n.ctx, x), kHeadWidth, heads, x->ne[1]);
  return rmsNorm(n, x, norm + ".scale", kHeadWidth);
}

ggml_tensor* mlpEmbedder(Net& n, ggml_tensor* x, const std::string& prefix, int64_t in, int64_t hidden) {
  return linear(n, ggml_silu(n.ctx, linear(n, x, prefix + ".in_layer", in, hidden)), prefix + ".out_layer", hidden, hidden);
}

}  // namespace

FluxConfig readFluxConfig(const Weights& w) {
  FluxConfig c;
  const std::vector<int64_t>& imgIn = w.shape("img_in.weight");
  if (imgIn.size() != 2 || imgIn[1] % (kPatch * kPatch) != 0) throw Error(ErrorCode::ModelFormat, "img_in.weight must be [hidden, channels x 4]");
  c.hidden = imgIn[0];
  c.latentChannels = imgIn[1] / (kPatch * kPatch);
  if (c.hidden % kHeadWidth != 0) {
    throw Error(ErrorCode::ModelUnsupported, "img_in.weight: width " + std::to_string(c.hidden) + " is not a whole number of 128-wide heads");
  }
  c.heads = c.hidden / kHeadWidth;
  c.contextDim = w.shape("txt_in.weight").at(1);
  c.chroma = w.has("distilled_guidance_layer.in_proj.weight");
  c.pooledDim = c.chroma ? 0 : w.shape("vector_in.in_layer.weight").at(1);
  c.guidanceEmbed = w.has("guidance_in.in_layer.weight");
  c.doubleBlocks = countIndexed(w, "double_blocks.", ".img_attn.qkv.weight");
  c.singleBlocks = countIndexed(w, "single_blocks.", ".linear1.weight");
  if (c.doubleBlocks < 1) throw Error(ErrorCode::ModelFormat, "the Flux model has no double blocks (double_blocks.0.*)");
  c.mlp = w.shape("double_blocks.0.img_mlp.0.weight").at(0);
  return c;
}

FluxTransformer::FluxTransformer(const FluxConfig& config, Weights& weights, Backend& backend)
    : config_(config), weights_(weights), runner_(backend) {}

ggml_tensor* FluxTransformer::build(GraphBuild& g, const std::vector<float>& tokens, int64_t imageTokens, const std::vector<float>& rope,
                                    const std::vector<float>& timeEmb, const std::vector<float>& guidanceEmb, const FluxInputs& in) {
  Net n{g.ctx(), weights_, false, &g};
  ggml_context* ctx = g.ctx();
  const FluxConfig& c = config_;
  const int64_t patchWidth = c.latentChannels * kPatch * kPatch;
  // Ti: the image's tokens; Tx: the image's and the references'.
  const int64_t H = c.hidden, Tt = in.contextTokens, Ti = imageTokens, Tx = static_cast<int64_t>(tokens.size()) / patchWidth, T = Tt + Tx;
  int64_t pairs = 0;
  for (int a : c.axes) pairs += a / 2;
  if (2 * pairs != kHeadWidth) throw Error(ErrorCode::Internal, "Flux RoPE axes must fill the head width");

  // img: [H, Ti], txt: [H, Tt], vec: [H]
  ggml_tensor* img = linear(n, g.input(GGML_TYPE_F32, {patchWidth, Tx}, tokens.data()), "img_in", patchWidth, H);
  ggml_tensor* txt = linear(n, g.input(GGML_TYPE_F32, {c.contextDim, Tt}, in.context->data()), "txt_in", c.contextDim, H);
  // FLUX.1: one vector modulates every block through its own weights. Chroma: the approximator's
  // rows are the modulations themselves. timeEmb holds Chroma's approximator input.
  ggml_tensor* vec = nullptr;
  ggml_tensor* rows = nullptr;  // Chroma: [H, kChromaRows]
  if (c.chroma) {
    const std::string a = "distilled_guidance_layer.";
    const int64_t inner = weights_.shape(a + "in_proj.weight").at(0);
    rows = linear(n, g.input(GGML_TYPE_F32, {64, kChromaRows}, timeEmb.data()), a + "in_proj", 64, inner);
    for (int i = 0; i < 5; i++) {
      const std::string l = a + "layers." + std::to_string(i);
      ggml_tensor* h = rmsNorm(n, rows, a + "norms." + std::to_string(i) + ".scale", inner);
      rows = ggml_add(ctx, rows, mlpEmbedder(n, h, l, inner, inner));
    }
    rows = linear(n, rows, a + "out_proj", inner, H);
  } else {
    vec = mlpEmbedder(n, g.input(GGML_TYPE_F32, {kTimeEmbedding}, timeEmb.data()), "time_in", kTimeEmbedding, H);
    if (c.guidanceEmbed) {
      vec = ggml_add(ctx, vec, mlpEmbedder(n, g.input(GGML_TYPE_F32, {kTimeEmbedding}, guidanceEmb.data()), "guidance_in", kTimeEmbedding, H));
    }
    vec = ggml_add(ctx, vec, mlpEmbedder(n, g.input(GGML_TYPE_F32, {c.pooledDim}, in.pooled->data()), "vector_in", c.pooledDim, H));
  }
  auto row = [&](int64_t r) { return ggml_view_1d(ctx, rows, H, static_cast<size_t>(r) * rows->nb[1]); };
  // `count` (shift, scale, gate) runs from `<prefix>.lin`, or Chroma's rows from `first` on.
  auto mods = [&](const std::string& prefix, int count, int64_t first) {
    if (!c.chroma) return modulations(n, vec, prefix, H, count);
    std::vector<Modulation> out;
    for (int i = 0; i < count; i++) out.push_back({row(first + 3 * i), row(first + 3 * i + 1), row(first + 3 * i + 2)});
    return out;
  };
  // Chroma masks T5's padding as keys (the image's tokens never).
  ggml_tensor* keyMask = nullptr;
  if (in.textMask) {
    std::vector<float>& mask = *g.keep(std::vector<float>(static_cast<size_t>(T), 0.0f));
    std::copy(in.textMask->begin(), in.textMask->end(), mask.begin());
    keyMask = g.input(GGML_TYPE_F32, {T, 1, 1}, mask.data());
  }
  auto attend = [&](ggml_tensor* q, ggml_tensor* k, ggml_tensor* v) {
    if (!keyMask) return attention(n, q, k, v, static_cast<int>(c.heads), false);
    return attentionWithBias(n, q, k, v, static_cast<int>(c.heads), keyMask, 1.0f / std::sqrt(static_cast<float>(kHeadWidth)));
  };

  const Rope pe = ropeOf(ctx, g.input(GGML_TYPE_F32, {pairs, T, 2}, rope.data()));

  for (int b = 0; b < c.doubleBlocks; b++) {
    if (skipped(in.skipBlocks, b)) continue;
    const std::string p = "double_blocks." + std::to_string(b) + ".";
    const std::vector<Modulation> imgMod = mods(p + "img_mod", 2, 6 * b + kChromaSingleRows);
    const std::vector<Modulation> txtMod = mods(p + "txt_mod", 2, 6 * b + kChromaDoubleRows + kChromaSingleRows);
    ggml_tensor* imgQkv = linear(n, modulate(ctx, img, imgMod[0].shift, imgMod[0].scale), p + "img_attn.qkv", H, 3 * H);
    ggml_tensor* txtQkv = linear(n, modulate(ctx, txt, txtMod[0].shift, txtMod[0].scale), p + "txt_attn.qkv", H, 3 * H);
    // q, k, v over the joint sequence, text first: [H, T]; each stream norms its own q and k.
    auto qk = [&](int i, const char* norm) {
      ggml_tensor* t = headNorm(n, valuesOf(ctx, txtQkv, i * H, H), p + "txt_attn.norm." + norm, c.heads);
      ggml_tensor* m = headNorm(n, valuesOf(ctx, imgQkv, i * H, H), p + "img_attn.norm." + norm, c.heads);
      return rotate(ctx, ggml_concat(ctx, t, m, 2), pe);
    };
    ggml_tensor* v = ggml_concat(ctx, ggml_cont(ctx, valuesOf(ctx, txtQkv, 2 * H, H)), ggml_cont(ctx, valuesOf(ctx, imgQkv, 2 * H, H)), 1);
    ggml_tensor* attn = attend(qk(0, "query_norm"), qk(1, "key_norm"), v);
    ggml_tensor* txtAttn = ggml_cont(ctx, tokensOf(ctx, attn, 0, Tt));
    ggml_tensor* imgAttn = ggml_cont(ctx, tokensOf(ctx, attn, Tt, Tx));
    img = ggml_add(ctx, img, ggml_mul(ctx, linear(n, imgAttn, p + "img_attn.proj", H, H), imgMod[0].gate));
    ggml_tensor* h = ggml_gelu(ctx, linear(n, modulate(ctx, img, imgMod[1].shift, imgMod[1].scale), p + "img_mlp.0", H, c.mlp));
    img = ggml_add(ctx, img, ggml_mul(ctx, linear(n, h, p + "img_mlp.2", c.mlp, H), imgMod[1].gate));
    txt = ggml_add(ctx, txt, ggml_mul(ctx, linear(n, txtAttn, p + "txt_attn.proj", H, H), txtMod[0].gate));
    h = ggml_gelu(ctx, linear(n, modulate(ctx, txt, txtMod[1].shift, txtMod[1].scale), p + "txt_mlp.0", H, c.mlp));
    txt = ggml_add(ctx, txt, ggml_mul(ctx, linear(n, h, p + "txt_mlp.2", c.mlp, H), txtMod[1].gate));
  }

  // x: [H, T], text first
  ggml_tensor* x = ggml_concat(ctx, txt, img, 1);
  for (int b = 0; b < c.singleBlocks; b++) {
    if (skipped(in.skipBlocks, c.doubleBlocks + b)) continue;
    const std::string p = "single_blocks." + std::to_string(b) + ".";
    const Modulation mod = mods(p + "modulation", 1, 3 * b)[0];
    // linear1 gives q, k, v and the MLP's hidden layer side by side: [3H + mlp, T]
    ggml_tensor* fused = linear(n, modulate(ctx, x, mod.shift, mod.scale), p + "linear1", H, 3 * H + c.mlp);
    auto qk = [&](int i, const char* norm) { return rotate(ctx, headNorm(n, valuesOf(ctx, fused, i * H, H), p + "norm." + norm, c.heads), pe); };
    ggml_tensor* attn = attend(qk(0, "query_norm"), qk(1, "key_norm"), ggml_cont(ctx, valuesOf(ctx, fused, 2 * H, H)));
    ggml_tensor* mlp = ggml_gelu(ctx, ggml_cont(ctx, valuesOf(ctx, fused, 3 * H, c.mlp)));
    ggml_tensor* out = linear(n, ggml_concat(ctx, attn, mlp, 0), p + "linear2", H + c.mlp, H);
    x = ggml_add(ctx, x, ggml_mul(ctx, out, mod.gate));
  }

  ggml_tensor* imgOut = ggml_cont(ctx, tokensOf(ctx, x, Tt, Ti));
  ggml_tensor* shift;
  ggml_tensor* scale;
  if (c.chroma) {
    shift = row(kChromaRows - 2);
    scale = row(kChromaRows - 1);
  } else {
    ggml_tensor* m = linear(n, ggml_silu(ctx, vec), "final_layer.adaLN_modulation.1", H, 2 * H);
    shift = pieceOf(ctx, m, H, 0);
    scale = pieceOf(ctx, m, H, 1);
  }
  const int64_t outWidth = weights_.shape("final_layer.linear.weight").at(0);
  return linear(n, modulate(ctx, imgOut, shift, scale), "final_layer.linear", H, outWidth);
}

void FluxTransformer::validate() {
  const int64_t w = 2, h = 2, textTokens = 1;
  std::vector<float> latent(static_cast<size_t>(config_.latentChannels * w * h), 0.0f);
  std::vector<float> context(static_cast<size_t>(config_.contextDim * textTokens), 0.0f);
  std::vector<float> pooled(static_cast<size_t>(config_.pooledDim), 0.0f);
  FluxInputs in{&context, textTokens, &pooled, 1.0f};
  GraphBuild g;
  const std::vector<float> time = config_.chroma ? chromaRows(1.0f) : timeEmbedding(1.0f);
  ggml_tensor* out = build(g, patchify(latent, config_.latentChannels, h, w), 1, ropeTable(config_.axes, kRopeTheta, gridPositions(positionGrids(textTokens, 1, 1, nullptr))),
                           time, time, in);
  if (out->ne[0] != config_.latentChannels * kPatch * kPatch) {
    throw Error(ErrorCode::ModelFormat, "final_layer.linear gives " + std::to_string(out->ne[0]) + " values per token; img_in takes " +
                                            std::to_string(config_.latentChannels * kPatch * kPatch));
  }
}

std::vector<float> FluxTransformer::forward(const std::vector<float>& latent, int64_t width, int64_t height, float sigma,
                                            const FluxInputs& in) {
  if (width % kPatch != 0 || height % kPatch != 0) throw Error(ErrorCode::InvalidArgument, "Flux latents must have an even width and height");
  const int64_t C = config_.latentChannels;
  if (in.context == nullptr || in.pooled == nullptr || static_cast<int64_t>(in.context->size()) != in.contextTokens * config_.contextDim ||
      static_cast<int64_t>(in.pooled->size()) != config_.pooledDim ||
      (in.textMask && static_cast<int64_t>(in.textMask->size()) != in.contextTokens)) {
    throw Error(ErrorCode::Internal, "Flux conditioning has the wrong size");
  }
  std::vector<float> tokens = patchify(latent, C, height, width);
  const int64_t rows = height / kPatch, columns = width / kPatch;
  if (in.references) {
    for (const FluxReference& ref : *in.references) {
      const std::vector<float> more = patchify(ref.latent, C, ref.height, ref.width);
      tokens.insert(tokens.end(), more.begin(), more.end());
    }
  }
  const std::vector<float> rope = ropeTable(config_.axes, kRopeTheta, gridPositions(positionGrids(in.contextTokens, rows, columns, in.references)));
  const std::vector<float> time = config_.chroma ? chromaRows(sigma) : timeEmbedding(sigma);
  const std::vector<float> guidance = timeEmbedding(in.guidance);
  std::vector<float> out = runner_.run([&](GraphBuild& g) { return build(g, tokens, rows * columns, rope, time, guidance, in); });
  return unpatchify(out, C, height, width, PatchOrder::ChannelFirst);
}

}  // namespace sdnode
