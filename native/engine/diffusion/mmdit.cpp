#include "mmdit.h"

#include <cmath>

#include "clip.h"
#include "dit.h"
#include "nn.h"
#include "sdnode.h"

namespace sdnode {

namespace {

constexpr int64_t kHeadWidth = 64;

struct Attended {
  ggml_tensor* q;
  ggml_tensor* k;
  ggml_tensor* v;
};

// q, k, v of `<prefix>` (packed qkv with bias; SD3.5's RMS q/k norms per head): each [hidden, T].
Attended projections(Net& n, ggml_tensor* x, const std::string& prefix, const MmditConfig& c) {
  const int64_t H = c.hidden, T = x->ne[1];
  ggml_tensor* qkv = linear(n, x, prefix + ".qkv", H, 3 * H);
  auto part = [&](int i) { return ggml_cont(n.ctx, valuesOf(n.ctx, qkv, i * H, H)); };
  auto normed = [&](ggml_tensor* t, const char* norm) {
    if (!c.qkNorm) return t;
    t = rmsNorm(n, ggml_reshape_3d(n.ctx, t, kHeadWidth, c.heads, T), prefix + "." + norm + ".weight", kHeadWidth);
    return ggml_reshape_2d(n.ctx, t, H, T);
  };
  return {normed(part(0), "ln_q"), normed(part(1), "ln_k"), part(2)};
}

ggml_tensor* mlp(Net& n, ggml_tensor* x, const std::string& prefix, const MmditConfig& c) {
  return linear(n, ggml_gelu(n.ctx, linear(n, x, prefix + ".fc1", c.hidden, c.mlp)), prefix + ".fc2", c.mlp, c.hidden);
}

// One stream's half of a joint block after attention: gated attention output, then the gated MLP.
ggml_tensor* afterAttention(Net& n, ggml_tensor* x, ggml_tensor* attended, ggml_tensor* m, const std::string& p, const MmditConfig& c) {
  const int64_t H = c.hidden;
  x = ggml_add(n.ctx, x, ggml_mul(n.ctx, linear(n, attended, p + ".attn.proj", H, H), pieceOf(n.ctx, m, H, 2)));
  ggml_tensor* h = mlp(n, modulate(n.ctx, x, pieceOf(n.ctx, m, H, 3), pieceOf(n.ctx, m, H, 4)), p + ".mlp", c);
  return ggml_add(n.ctx, x, ggml_mul(n.ctx, h, pieceOf(n.ctx, m, H, 5)));
}

}  // namespace

MmditConfig readMmditConfig(const Weights& w) {
  MmditConfig c;
  const std::vector<int64_t>& patch = w.shape("x_embedder.proj.weight");
  if (patch.size() != 4 || patch[2] != kDitPatch || patch[3] != kDitPatch) {
    throw Error(ErrorCode::ModelUnsupported, "x_embedder.proj.weight must be a 2x2 patch embedding [hidden, channels, 2, 2]");
  }
  c.hidden = patch[0];
  c.latentChannels = patch[1];
  c.depth = countIndexed(w, "joint_blocks.", ".x_block.attn.qkv.weight");
  if (c.depth < 1) throw Error(ErrorCode::ModelFormat, "the MMDiT has no joint blocks (joint_blocks.0.*)");
  c.heads = c.depth;
  if (c.heads * kHeadWidth != c.hidden) {
    throw Error(ErrorCode::ModelUnsupported, "joint_blocks: " + std::to_string(c.depth) + " blocks imply " + std::to_string(c.depth) +
                                                 " heads of 64, which do not make the width " + std::to_string(c.hidden));
  }
  c.contextDim = w.shape("context_embedder.weight").at(1);
  c.pooledDim = w.shape("y_embedder.mlp.0.weight").at(1);
  c.mlp = w.shape("joint_blocks.0.x_block.mlp.fc1.weight").at(0);
  const std::vector<int64_t>& pos = w.shape("pos_embed");
  const int64_t positions = pos.size() >= 2 ? pos[pos.size() - 2] : 0;
  c.posEmbedSide = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(positions))));
  if (c.posEmbedSide * c.posEmbedSide != positions) throw Error(ErrorCode::ModelFormat, "pos_embed must hold a square number of positions");
  c.qkNorm = w.has("joint_blocks.0.x_block.attn.ln_q.weight");
  c.selfAttentionBlocks = countIndexed(w, "joint_blocks.", ".x_block.attn2.qkv.weight");
  return c;
}

MmditTransformer::MmditTransformer(const MmditConfig& config, Weights& weights, Backend& backend)
    : config_(config), weights_(weights), runner_(backend) {}

ggml_tensor* MmditTransformer::build(GraphBuild& g, const std::vector<float>& tokens, int64_t rows, int64_t columns,
                                     const std::vector<float>& time, const MmditInputs& in) {
  Net n{g.ctx(), weights_, false, &g};
  ggml_context* ctx = g.ctx();
  const MmditConfig& c = config_;
  const int64_t H = c.hidden, Ti = rows * columns, Tc = in.contextTokens;
  const int64_t patchWidth = c.latentChannels * kDitPatch * kDitPatch;
  if (rows > c.posEmbedSide || columns > c.posEmbedSide) {
    throw Error(ErrorCode::InvalidArgument, "this MMDiT's positions cover at most " + std::to_string(c.posEmbedSide * 2 * 8) + " pixels a side");
  }

  // x: [H, Ti], the 2x2 convolution as a matrix over each patch's (channel, row, column) values.
  ggml_tensor* proj = ggml_reshape_2d(ctx, weights_.get("x_embedder.proj.weight", {H, c.latentChannels, kDitPatch, kDitPatch}), patchWidth, H);
  ggml_tensor* x = ggml_mul_mat(ctx, proj, g.input(GGML_TYPE_F32, {patchWidth, Ti}, tokens.data()));
  x = ggml_add(ctx, x, weights_.get("x_embedder.proj.bias", {H}));
  // The image's positions: the centre rows x columns of the pos_embed grid.
  ggml_tensor* grid = ggml_reshape_3d(ctx, weights_.get("pos_embed", {1, c.posEmbedSide * c.posEmbedSide, H}), H, c.posEmbedSide, c.posEmbedSide);
  const int64_t top = (c.posEmbedSide - rows) / 2, left = (c.posEmbedSide - columns) / 2;
  ggml_tensor* pos = ggml_view_3d(ctx, grid, H, columns, rows, grid->nb[1], grid->nb[2], static_cast<size_t>(top) * grid->nb[2] + left * grid->nb[1]);
  // (pos_embed keeps its stored type, f16 in most files; ggml adds f32 to f32.)
  x = ggml_add(ctx, x, ggml_reshape_2d(ctx, ggml_cast(ctx, ggml_cont(ctx, pos), GGML_TYPE_F32), H, Ti));

  auto embedder = [&](ggml_tensor* v, const std::string& prefix, int64_t width) {
    return linear(n, ggml_silu(ctx, linear(n, v, prefix + ".mlp.0", width, H)), prefix + ".mlp.2", H, H);
  };
  ggml_tensor* vec = ggml_add(ctx, embedder(g.input(GGML_TYPE_F32, {static_cast<int64_t>(time.size())}, time.data()), "t_embedder",
                                            static_cast<int64_t>(time.size())),
                              embedder(g.input(GGML_TYPE_F32, {c.pooledDim}, in.pooled->data()), "y_embedder", c.pooledDim));
  ggml_tensor* context = linear(n, g.input(GGML_TYPE_F32, {c.contextDim, Tc}, in.context->data()), "context_embedder", c.contextDim, H);
  ggml_tensor* silu = ggml_silu(ctx, vec);

  for (int b = 0; b < c.depth; b++) {
    if (skipped(in.skipBlocks, b)) continue;
    const std::string p = "joint_blocks." + std::to_string(b) + ".";
    const std::string cp = p + "context_block", xp = p + "x_block";
    // The last block's context half only feeds this block's attention (SD3's "pre-only" block).
    const bool preOnly = b == c.depth - 1;
    const bool dual = b < c.selfAttentionBlocks;
    ggml_tensor* cm = linear(n, silu, cp + ".adaLN_modulation.1", H, (preOnly ? 2 : 6) * H);
    ggml_tensor* xm = linear(n, silu, xp + ".adaLN_modulation.1", H, (dual ? 9 : 6) * H);
    const Attended ca = projections(n, modulate(ctx, context, pieceOf(ctx, cm, H, 0), pieceOf(ctx, cm, H, 1)), cp + ".attn", c);
    ggml_tensor* xNormed = ggml_norm(ctx, x, 1e-6f);
    auto modulated = [&](int shift, int scale) {
      return ggml_add(ctx, ggml_add(ctx, xNormed, ggml_mul(ctx, xNormed, pieceOf(ctx, xm, H, scale))), pieceOf(ctx, xm, H, shift));
    };
    const Attended xa = projections(n, modulated(0, 1), xp + ".attn", c);
    // Joint attention over context then image tokens.
    ggml_tensor* attn = attention(n, ggml_concat(ctx, ca.q, xa.q, 1), ggml_concat(ctx, ca.k, xa.k, 1), ggml_concat(ctx, ca.v, xa.v, 1),
                                  static_cast<int>(c.heads), false);
    ggml_tensor* xAttn = ggml_cont(ctx, tokensOf(ctx, attn, Tc, Ti));
    if (!preOnly) context = afterAttention(n, context, ggml_cont(ctx, tokensOf(ctx, attn, 0, Tc)), cm, cp, c);
    if (dual) {
      // SD3.5's second attention: the image tokens alone, with their own modulation (pieces 6-8).
      const Attended xa2 = projections(n, modulated(6, 7), xp + ".attn2", c);
      ggml_tensor* self = attention(n, xa2.q, xa2.k, xa2.v, static_cast<int>(c.heads), false);
      x = ggml_add(ctx, x, ggml_mul(ctx, linear(n, xAttn, xp + ".attn.proj", H, H), pieceOf(ctx, xm, H, 2)));
      x = ggml_add(ctx, x, ggml_mul(ctx, linear(n, self, xp + ".attn2.proj", H, H), pieceOf(ctx, xm, H, 8)));
      ggml_tensor* h = mlp(n, modulate(ctx, x, pieceOf(ctx, xm, H, 3), pieceOf(ctx, xm, H, 4)), xp + ".mlp", c);
      x = ggml_add(ctx, x, ggml_mul(ctx, h, pieceOf(ctx, xm, H, 5)));
    } else {
      x = afterAttention(n, x, xAttn, xm, xp, c);
    }
  }
  ggml_tensor* m = linear(n, silu, "final_layer.adaLN_modulation.1", H, 2 * H);
  return linear(n, modulate(ctx, x, pieceOf(ctx, m, H, 0), pieceOf(ctx, m, H, 1)), "final_layer.linear", H, patchWidth);
}

void MmditTransformer::validate() {
  const int64_t textTokens = 1;
  std::vector<float> latent(static_cast<size_t>(config_.latentChannels * 4), 0.0f);
  std::vector<float> context(static_cast<size_t>(config_.contextDim * textTokens), 0.0f);
  std::vector<float> pooled(static_cast<size_t>(config_.pooledDim), 0.0f);
  MmditInputs in{&context, textTokens, &pooled};
  GraphBuild g;
  build(g, patchify(latent, config_.latentChannels, 2, 2), 1, 1, timestepEmbedding(1000.0f), in);
}

std::vector<float> MmditTransformer::forward(const std::vector<float>& latent, int64_t width, int64_t height, float sigma,
                                             const MmditInputs& in) {
  if (width % kDitPatch != 0 || height % kDitPatch != 0) throw Error(ErrorCode::InvalidArgument, "MMDiT latents must have an even width and height");
  const int64_t C = config_.latentChannels;
  if (in.context == nullptr || in.pooled == nullptr || static_cast<int64_t>(in.context->size()) != in.contextTokens * config_.contextDim ||
      static_cast<int64_t>(in.pooled->size()) != config_.pooledDim) {
    throw Error(ErrorCode::Internal, "MMDiT conditioning has the wrong size");
  }
  const std::vector<float> tokens = patchify(latent, C, height, width);
  // SD3 embeds the timestep t = 1000 sigma.
  const std::vector<float> time = timestepEmbedding(sigma * 1000.0f);
  std::vector<float> out = runner_.run([&](GraphBuild& g) { return build(g, tokens, height / kDitPatch, width / kDitPatch, time, in); });
  return unpatchify(out, C, height, width, PatchOrder::ChannelLast);
}

}  // namespace sdnode
