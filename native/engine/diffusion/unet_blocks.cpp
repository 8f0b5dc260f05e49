#include "unet_blocks.h"

#include "sdnode.h"

namespace sdnode {

namespace {

int transformerDepth(const Weights& w, const std::string& prefix) {
  int depth = 0;
  while (w.has(prefix + ".transformer_blocks." + std::to_string(depth) + ".attn1.to_q.weight")) depth++;
  return depth;
}

// x: [W, H, in, N]; emb: [timeEmbedDim, N]
ggml_tensor* resBlock(Net& n, ggml_tensor* x, ggml_tensor* emb, const UnetBlock& b, int64_t embDim) {
  ggml_context* ctx = n.ctx;
  ggml_tensor* h = ggml_silu(ctx, groupNorm(n, x, b.prefix + ".in_layers.0", b.in));
  h = conv2d(n, h, b.prefix + ".in_layers.2", b.in, b.out, 3, 1, 1);
  ggml_tensor* e = linear(n, ggml_silu(ctx, emb), b.prefix + ".emb_layers.1", embDim, b.out);
  h = ggml_add(ctx, h, ggml_reshape_4d(ctx, e, 1, 1, b.out, e->ne[1]));
  h = ggml_silu(ctx, groupNorm(n, h, b.prefix + ".out_layers.0", b.out));
  h = conv2d(n, h, b.prefix + ".out_layers.3", b.out, b.out, 3, 1, 1);
  ggml_tensor* skip = b.in == b.out ? x : conv2d(n, x, b.prefix + ".skip_connection", b.in, b.out, 1);
  return ggml_add(ctx, skip, h);
}

// x: [C, T, N]; context: [D, S, N]
ggml_tensor* transformerBlock(Net& n, ggml_tensor* x, ggml_tensor* context, const std::string& p, int64_t c, int64_t d, int heads) {
  ggml_context* ctx = n.ctx;
  ggml_tensor* h = layerNorm(n, x, p + ".norm1", c);
  h = attention(n, linear(n, h, p + ".attn1.to_q", c, c, false), linear(n, h, p + ".attn1.to_k", c, c, false),
                linear(n, h, p + ".attn1.to_v", c, c, false), heads, false);
  x = ggml_add(ctx, x, linear(n, h, p + ".attn1.to_out.0", c, c));
  h = layerNorm(n, x, p + ".norm2", c);
  h = attention(n, linear(n, h, p + ".attn2.to_q", c, c, false), linear(n, context, p + ".attn2.to_k", d, c, false),
                linear(n, context, p + ".attn2.to_v", d, c, false), heads, false);
  x = ggml_add(ctx, x, linear(n, h, p + ".attn2.to_out.0", c, c));
  h = layerNorm(n, x, p + ".norm3", c);
  // GEGLU: the projection's first half is the value, the second half its GELU gate.
  const int64_t inner = 4 * c;
  h = linear(n, h, p + ".ff.net.0.proj", c, 2 * inner);
  ggml_tensor* value = ggml_view_3d(ctx, h, inner, h->ne[1], h->ne[2], h->nb[1], h->nb[2], 0);
  ggml_tensor* gate = ggml_view_3d(ctx, h, inner, h->ne[1], h->ne[2], h->nb[1], h->nb[2], inner * ggml_element_size(h));
  h = ggml_mul(ctx, ggml_cont(ctx, value), ggml_gelu(ctx, ggml_cont(ctx, gate)));
  return ggml_add(ctx, x, linear(n, h, p + ".ff.net.2", inner, c));
}

// x: [W, H, C, N]
ggml_tensor* spatialTransformer(Net& n, ggml_tensor* x, ggml_tensor* context, const UnetBlock& b, const UnetConfig& cfg) {
  ggml_context* ctx = n.ctx;
  const int64_t c = b.in, width = x->ne[0], height = x->ne[1];
  ggml_tensor* h = groupNorm(n, x, b.prefix + ".norm", c);
  if (cfg.linearProjection) {
    h = linear(n, imageToTokens(ctx, h), b.prefix + ".proj_in", c, c);
  } else {
    h = imageToTokens(ctx, conv2d(n, h, b.prefix + ".proj_in", c, c, 1));
  }
  for (int i = 0; i < b.depth; i++) {
    h = transformerBlock(n, h, context, b.prefix + ".transformer_blocks." + std::to_string(i), c, cfg.contextDim, cfg.headsFor(c));
  }
  if (cfg.linearProjection) {
    h = tokensToImage(ctx, linear(n, h, b.prefix + ".proj_out", c, c), width, height);
  } else {
    h = conv2d(n, tokensToImage(ctx, h, width, height), b.prefix + ".proj_out", c, c, 1);
  }
  return ggml_add(ctx, x, h);
}

}  // namespace

std::vector<UnetBlock> readUnetBlock(const Weights& w, const std::string& prefix, int64_t& channels) {
  std::vector<UnetBlock> layers;
  for (int sub = 0;; sub++) {
    const std::string p = prefix + std::to_string(sub);
    if (w.has(p + ".in_layers.2.weight")) {
      const auto& conv = w.shape(p + ".in_layers.2.weight");
      layers.push_back({UnetBlock::Kind::Res, p, conv.at(1), conv.at(0)});
      channels = conv.at(0);
    } else if (w.has(p + ".proj_in.weight")) {
      UnetBlock t{UnetBlock::Kind::Transformer, p, channels, channels};
      t.depth = transformerDepth(w, p);
      if (t.depth == 0) throw Error(ErrorCode::ModelFormat, "spatial transformer '" + p + "' has no transformer blocks");
      layers.push_back(t);
    } else if (w.has(p + ".op.weight")) {
      layers.push_back({UnetBlock::Kind::Down, p, channels, w.shape(p + ".op.weight").at(0)});
    } else if (w.has(p + ".conv.weight")) {
      layers.push_back({UnetBlock::Kind::Up, p, channels, w.shape(p + ".conv.weight").at(0)});
    } else {
      break;
    }
  }
  return layers;
}

void checkUnetHeads(const UnetConfig& c, const std::vector<UnetBlock>& layers) {
  for (const UnetBlock& b : layers) {
    if (b.kind != UnetBlock::Kind::Transformer) continue;
    const int heads = c.headsFor(b.in);
    if (heads <= 0 || b.in % heads != 0 || (c.headDim > 0 && b.in % c.headDim != 0)) {
      throw Error(ErrorCode::ModelFormat, "spatial transformer '" + b.prefix + "' is " + std::to_string(b.in) +
                                              " wide, which does not split into attention heads of the configured size");
    }
  }
}

void readUnetEncoder(const Weights& w, const std::string& prefix, UnetConfig& c) {
  const std::string stem = prefix + "input_blocks.0.0.weight";
  if (!w.has(stem)) throw Error(ErrorCode::ModelUnsupported, "no UNet found (expected " + stem + ")");
  const auto& convIn = w.shape(stem);
  if (convIn.size() != 4) throw Error(ErrorCode::ModelFormat, stem + " must be a 4-d convolution");
  c.modelChannels = convIn.at(0);
  c.inChannels = convIn.at(1);
  c.timeEmbedDim = w.shape(prefix + "time_embed.0.weight").at(0);
  int64_t channels = c.modelChannels;
  for (int i = 1; w.has(prefix + "input_blocks." + std::to_string(i) + ".0.in_layers.2.weight") ||
                  w.has(prefix + "input_blocks." + std::to_string(i) + ".0.op.weight");
       i++) {
    c.input.push_back(readUnetBlock(w, prefix + "input_blocks." + std::to_string(i) + ".", channels));
  }
  c.middle = readUnetBlock(w, prefix + "middle_block.", channels);
  if (c.input.empty() || c.middle.empty()) {
    throw Error(ErrorCode::ModelUnsupported, "UNet blocks under '" + prefix + "' do not form the LDM layout (" +
                                                 std::to_string(c.input.size()) + " input blocks, " +
                                                 (c.middle.empty() ? "no" : "a") + " middle block)");
  }
  for (const UnetBlock& b : c.middle) {
    if (b.kind == UnetBlock::Kind::Transformer) {
      c.contextDim = w.shape(b.prefix + ".transformer_blocks.0.attn2.to_k.weight").at(1);
      c.linearProjection = w.shape(b.prefix + ".proj_in.weight").size() == 2;
    }
  }
  if (w.has(prefix + "label_emb.0.0.weight")) c.admChannels = w.shape(prefix + "label_emb.0.0.weight").at(1);
}

ggml_tensor* unetEmbedding(Net& n, GraphBuild& g, const std::string& prefix, const UnetConfig& c, const float* timestep,
                           const float* added) {
  ggml_context* ctx = n.ctx;
  ggml_tensor* t = g.input(GGML_TYPE_F32, {1}, timestep);
  ggml_tensor* emb = ggml_timestep_embedding(ctx, t, static_cast<int>(c.modelChannels), 10000);
  emb = linear(n, emb, prefix + "time_embed.0", c.modelChannels, c.timeEmbedDim);
  emb = linear(n, ggml_silu(ctx, emb), prefix + "time_embed.2", c.timeEmbedDim, c.timeEmbedDim);
  if (c.admChannels > 0) {
    // SDXL: the pooled text and the size embeddings join the timestep embedding.
    ggml_tensor* y = g.input(GGML_TYPE_F32, {c.admChannels, 1}, added);
    y = linear(n, y, prefix + "label_emb.0.0", c.admChannels, c.timeEmbedDim);
    y = linear(n, ggml_silu(ctx, y), prefix + "label_emb.0.2", c.timeEmbedDim, c.timeEmbedDim);
    emb = ggml_add(ctx, emb, y);
  }
  return emb;
}

ggml_tensor* runUnetLayers(Net& n, ggml_tensor* x, const std::vector<UnetBlock>& layers, ggml_tensor* emb, ggml_tensor* context,
                           const UnetConfig& c, ggml_tensor* skipTarget) {
  for (const UnetBlock& b : layers) {
    switch (b.kind) {
      case UnetBlock::Kind::Res: x = resBlock(n, x, emb, b, c.timeEmbedDim); break;
      case UnetBlock::Kind::Transformer: x = spatialTransformer(n, x, context, b, c); break;
      case UnetBlock::Kind::Down: x = conv2d(n, x, b.prefix + ".op", b.in, b.out, 3, 2, 1); break;
      case UnetBlock::Kind::Up: {
        // Nearest-neighbour up to the next skip's size (not always 2x when the latent is odd-sized).
        const int64_t w2 = skipTarget ? skipTarget->ne[0] : x->ne[0] * 2;
        const int64_t h2 = skipTarget ? skipTarget->ne[1] : x->ne[1] * 2;
        x = ggml_interpolate(n.ctx, x, w2, h2, x->ne[2], x->ne[3], GGML_SCALE_MODE_NEAREST);
        x = conv2d(n, x, b.prefix + ".conv", b.in, b.out, 3, 1, 1);
        break;
      }
    }
  }
  return x;
}

}  // namespace sdnode
