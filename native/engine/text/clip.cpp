#include "clip.h"

#include <map>

#include "metadata.h"
#include "nn.h"
#include "sdnode.h"

namespace sdnode {

namespace {

const int32_t kEndToken = 49407;

// Split projections: OpenAI's layout, or OpenCLIP's as stable-diffusion.cpp splits them.
const ClipLayerNames kOpenAiLayer = {"layer_norm1", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                     "self_attn.out_proj", "layer_norm2", "mlp.fc1", "mlp.fc2", ""};
const ClipLayerNames kOpenClipLayer = {"ln_1", "attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.out_proj",
                                       "ln_2", "mlp.c_fc", "mlp.c_proj", "attn.in_proj"};

}  // namespace

int countIndexed(const Weights& w, const std::string& before, const std::string& after) {
  int n = 0;
  while (w.has(before + std::to_string(n) + after)) n++;
  return n;
}

ggml_tensor* clipLayer(Net& n, ggml_tensor* x, const std::string& p, const ClipLayerNames& names,
                       const ClipLayerShape& shape) {
  ggml_context* ctx = n.ctx;
  const int64_t W = shape.width, T = x->ne[1], N = x->ne[2];
  ggml_tensor* h = layerNorm(n, x, p + names.norm1, W);
  ggml_tensor *qs, *ks, *vs;
  if (!names.packedQkv.empty() && n.w.has(p + names.packedQkv + "_weight")) {
    ggml_tensor* qkv = ggml_mul_mat(ctx, n.w.get(p + names.packedQkv + "_weight", {3 * W, W}), h);  // packed q, k, v
    qkv = ggml_add(ctx, qkv, n.w.get(p + names.packedQkv + "_bias", {3 * W}));
    auto part = [&](int i) {
      return ggml_cont(ctx, ggml_view_3d(ctx, qkv, W, T, N, qkv->nb[1], qkv->nb[2], i * W * ggml_element_size(qkv)));
    };
    qs = part(0), ks = part(1), vs = part(2);
  } else {
    qs = linear(n, h, p + names.q, W, W);
    ks = linear(n, h, p + names.k, W, W);
    vs = linear(n, h, p + names.v, W, W);
  }
  h = attention(n, qs, ks, vs, shape.heads, shape.causal, shape.exactAttention);
  x = ggml_add(ctx, x, linear(n, h, p + names.out, W, W));
  h = layerNorm(n, x, p + names.norm2, W);
  h = linear(n, h, p + names.fc1, W, shape.mlp);
  h = shape.quickGelu ? ggml_mul(ctx, h, ggml_sigmoid(ctx, ggml_scale(ctx, h, 1.702f))) : ggml_gelu(ctx, h);
  return ggml_add(ctx, x, linear(n, h, p + names.fc2, shape.mlp, W));
}

ClipConfig readClipConfig(const Weights& w, const std::map<std::string, std::string>& metadata, const std::string& component) {
  ClipConfig c;
  const std::string openAi = component + "transformer.text_model.";
  const std::string openClip = component + "model.";
  if (w.has(openAi + "embeddings.token_embedding.weight")) {
    c.prefix = openAi;
    const auto& emb = w.shape(openAi + "embeddings.token_embedding.weight");
    c.vocab = emb.at(0);
    c.width = emb.at(1);
    c.positions = w.shape(openAi + "embeddings.position_embedding.weight").at(0);
    c.layers = countIndexed(w, openAi + "encoder.layers.", ".mlp.fc1.weight");
    if (c.layers > 0) c.mlp = w.shape(openAi + "encoder.layers.0.mlp.fc1.weight").at(0);
    // Hugging Face's CLIPTextModelWithProjection keeps the projection beside text_model.
    const std::string hfProjection = component + "transformer.text_projection.weight";
    if (w.has(hfProjection)) {
      c.projection = w.shape(hfProjection).front();
      c.projectionName = hfProjection;
    }
  } else if (w.has(openClip + "token_embedding.weight")) {
    c.openClip = true;
    c.prefix = openClip;
    const auto& emb = w.shape(openClip + "token_embedding.weight");
    c.vocab = emb.at(0);
    c.width = emb.at(1);
    c.positions = w.shape(openClip + "positional_embedding").at(0);
    c.layers = countIndexed(w, openClip + "transformer.resblocks.", ".mlp.c_fc.weight");
    if (c.layers > 0) c.mlp = w.shape(openClip + "transformer.resblocks.0.mlp.c_fc.weight").at(0);
    if (w.has(openClip + "text_projection")) {
      c.projection = w.shape(openClip + "text_projection").front();
      c.projectionName = openClip + "text_projection";
    }
    c.defaultClipSkip = 2;
    c.quickGelu = false;
  } else {
    throw Error(ErrorCode::ModelUnsupported, "no text encoder found (expected " + openAi + "* or " + openClip + "*)");
  }
  if (c.layers == 0) throw Error(ErrorCode::ModelFormat, "the text encoder " + c.prefix + "* has no layers");
  if (c.positions < 77) throw Error(ErrorCode::ModelFormat, "the text encoder " + c.prefix + "* has fewer than 77 positions");
  c.heads = metadataPositiveInt(metadata, "sdnode.clip_num_heads", static_cast<int>(c.width / 64));
  if (c.heads <= 0 || c.width % c.heads != 0) {
    throw Error(ErrorCode::ModelFormat, "text encoder width " + std::to_string(c.width) + " does not split into " +
                                            std::to_string(c.heads) + " attention heads");
  }
  return c;
}

ClipTextEncoder::ClipTextEncoder(const ClipConfig& config, Weights& weights, Backend& backend)
    : config_(config), weights_(weights), runner_(backend) {}

// Output: the hidden states after `hiddenLayers` layers (and the final norm when `finalNorm`),
// flattened [W * T * rows], followed by the pooled vector [projection] when `poolRow` (the first
// row's end-token position) is given.
ggml_tensor* ClipTextEncoder::build(GraphBuild& g, const int32_t* tokens, int64_t rows, int hiddenLayers, bool finalNorm,
                                    const int32_t* poolRow, const std::vector<float>& extra) {
  Net n{g.ctx(), weights_, false, &g};
  ggml_context* ctx = g.ctx();
  const int64_t W = config_.width, T = 77;
  const bool open = config_.openClip;
  const std::string& p = config_.prefix;
  struct ExtraLookup {
    std::vector<int32_t> vocabIds, extraIds;
    std::vector<float> fromVocab, fromExtra;
  };
  ExtraLookup* lookup = nullptr;
  if (!extra.empty()) {
    // Each position takes its vocabulary row or its extra row: both are looked up (id 0 standing in
    // for the other) and the one not wanted is multiplied by 0, which leaves the other exact.
    const int64_t n = T * rows;
    lookup = g.keep(ExtraLookup{std::vector<int32_t>(tokens, tokens + n), std::vector<int32_t>(static_cast<size_t>(n), 0),
                                std::vector<float>(static_cast<size_t>(n), 1.0f), std::vector<float>(static_cast<size_t>(n), 0.0f)});
    for (int64_t i = 0; i < n; i++) {
      if (tokens[i] < config_.vocab) continue;
      lookup->extraIds[i] = static_cast<int32_t>(tokens[i] - config_.vocab);
      lookup->vocabIds[i] = 0;
      lookup->fromVocab[i] = 0.0f;
      lookup->fromExtra[i] = 1.0f;
    }
    tokens = lookup->vocabIds.data();
  }
  ggml_tensor* ids = g.input(GGML_TYPE_I32, {T * rows}, tokens);
  ggml_tensor* tokenEmb = n.w.get(p + (open ? "token_embedding.weight" : "embeddings.token_embedding.weight"), {config_.vocab, W});
  ggml_tensor* posEmb =
      n.w.get(p + (open ? "positional_embedding" : "embeddings.position_embedding.weight"), {config_.positions, W});
  const std::string finalNormName = p + (open ? "ln_final" : "final_layer_norm");
  // x: [W, T, rows]
  ggml_tensor* embedded = ggml_get_rows(ctx, tokenEmb, ids);  // [W, T * rows]
  if (lookup) {
    ggml_tensor* table = g.input(GGML_TYPE_F32, {W, static_cast<int64_t>(extra.size()) / W}, extra.data());
    ggml_tensor* own = ggml_get_rows(ctx, table, g.input(GGML_TYPE_I32, {T * rows}, lookup->extraIds.data()));
    embedded = ggml_add(ctx, ggml_mul(ctx, embedded, g.input(GGML_TYPE_F32, {1, T * rows}, lookup->fromVocab.data())),
                        ggml_mul(ctx, own, g.input(GGML_TYPE_F32, {1, T * rows}, lookup->fromExtra.data())));
  }
  ggml_tensor* x = ggml_reshape_3d(ctx, embedded, W, T, rows);
  x = ggml_add(ctx, x, ggml_view_2d(ctx, posEmb, W, T, posEmb->nb[1], 0));
  ggml_tensor* hidden = nullptr;
  const int layers = poolRow ? config_.layers : hiddenLayers;
  const ClipLayerNames names = open ? kOpenClipLayer : kOpenAiLayer;
  ClipLayerShape shape;
  shape.width = W;
  shape.mlp = config_.mlp;
  shape.heads = config_.heads;
  shape.causal = true;
  shape.quickGelu = config_.quickGelu;
  for (int l = 0; l < layers; l++) {
    const std::string q = p + (open ? "transformer.resblocks." : "encoder.layers.") + std::to_string(l) + ".";
    x = clipLayer(n, x, q, names, shape);
    if (l + 1 == hiddenLayers) hidden = finalNorm ? layerNorm(n, x, finalNormName, W) : x;
  }
  hidden = ggml_reshape_1d(ctx, ggml_cont(ctx, hidden), W * T * rows);
  if (!poolRow) return hidden;
  ggml_tensor* last = ggml_reshape_2d(ctx, layerNorm(n, x, finalNormName, W), W, T * rows);
  ggml_tensor* row = ggml_get_rows(ctx, last, g.input(GGML_TYPE_I32, {1}, poolRow));  // [W, 1]
  // Without a projection (CLIP-L as FLUX.1 uses it) the pooled vector is the end token's state.
  if (config_.projection <= 0) return ggml_concat(ctx, hidden, ggml_reshape_1d(ctx, row, W), 0);
  // OpenCLIP stores text_projection [W, projection] and computes x·P; the reference engine
  // (stable-diffusion.cpp) uses the stored matrix as a linear layer's weight, x·Pᵀ, and so do we:
  // r10-sdxl-128 is 24.9 dB from the reference with x·P and 51.7 dB with x·Pᵀ. (Square in SDXL.)
  ggml_tensor* projection = n.w.get(config_.projectionName, {config_.projection, W});
  ggml_tensor* pooled = ggml_mul_mat(ctx, projection, row);  // [projection, 1]
  return ggml_concat(ctx, hidden, ggml_reshape_1d(ctx, pooled, config_.projection), 0);
}

void ClipTextEncoder::validate() {
  GraphBuild g;
  std::vector<int32_t> tokens(77, 0);
  const int32_t row = 76;
  // Every weight, the last layer and final norm included, so a bad one fails at load time.
  build(g, tokens.data(), 1, config_.layers, true, &row);
}

ClipOutput ClipTextEncoder::encode(const std::vector<int32_t>& given, int clipSkip, bool pooled, const std::vector<float>& extra) {
  const int64_t T = 77;
  if (given.empty() || given.size() % T != 0) throw Error(ErrorCode::InvalidArgument, "conditioning must be rows of 77 tokens");
  if (extra.size() % static_cast<size_t>(config_.width) != 0) {
    throw Error(ErrorCode::InvalidArgument, "embedding vectors must be rows of the text encoder's width " + std::to_string(config_.width));
  }
  const int64_t extraRows = static_cast<int64_t>(extra.size()) / config_.width;
  for (int32_t id : given) {
    if (id < 0 || id >= config_.vocab + extraRows) {
      throw Error(ErrorCode::InvalidArgument, "token id " + std::to_string(id) + " is outside the vocabulary (0-" +
                                                  std::to_string(config_.vocab - 1) + ")" +
                                                  (extraRows ? " and the " + std::to_string(extraRows) + " embedding vectors" : ""));
    }
  }
  const int skip = clipSkip > 0 ? clipSkip : config_.defaultClipSkip;
  if (skip > config_.layers) {
    throw Error(ErrorCode::InvalidArgument, "clipSkip " + std::to_string(skip) + " exceeds the text encoder's " +
                                                std::to_string(config_.layers) + " layers");
  }
  const int64_t rows = static_cast<int64_t>(given.size()) / T;
  std::vector<int32_t> tokens = given;
  int32_t poolRow = static_cast<int32_t>(T - 1);
  for (int64_t r = 0; r < rows; r++) {
    int32_t* row = tokens.data() + r * T;
    int64_t end = 1;
    while (end < T && row[end] != kEndToken) end++;
    if (r == 0 && end < T) poolRow = static_cast<int32_t>(end);
    if (config_.padAfterEnd >= 0) {
      for (int64_t t = end + 1; t < T; t++) row[t] = config_.padAfterEnd;
    }
  }
  const int hiddenLayers = config_.layers - (skip - 1);
  std::vector<float> out =
      runner_.run([&](GraphBuild& g) { return build(g, tokens.data(), rows, hiddenLayers, config_.finalNormOnHidden, pooled ? &poolRow : nullptr, extra);
  });
  ClipOutput result;
  const size_t hiddenSize = static_cast<size_t>(config_.width * T * rows);
  result.pooled.assign(out.begin() + static_cast<std::ptrdiff_t>(hiddenSize), out.end());
  out.resize(hiddenSize);
  result.hidden = std::move(out);
  return result;
}

void applyEmphasis(std::vector<float>& hidden, const std::vector<float>& weights, int64_t width) {
  const int64_t T = 77;
  if (weights.size() * static_cast<size_t>(width) != hidden.size()) {
    throw Error(ErrorCode::InvalidArgument, "conditioning must have one weight per token");
  }
  const int64_t rows = static_cast<int64_t>(weights.size()) / T;
  for (int64_t r = 0; r < rows; r++) {
    float* row = hidden.data() + r * T * width;
    const float* weight = weights.data() + r * T;
    bool plain = true;
    for (int64_t t = 0; t < T; t++) plain = plain && weight[t] == 1.0f;
    if (plain) continue;
    double before = 0, after = 0;
    for (int64_t i = 0; i < T * width; i++) before += row[i];
    for (int64_t t = 0; t < T; t++) {
      for (int64_t c = 0; c < width; c++) row[t * width + c] *= weight[t];
    }
    for (int64_t i = 0; i < T * width; i++) after += row[i];
    if (after != 0) {
      const float ratio = static_cast<float>(before / after);
      for (int64_t i = 0; i < T * width; i++) row[i] *= ratio;
    }
  }
}

}  // namespace sdnode
