#include "llm.h"

#include <algorithm>

#include "clip.h"
#include "nn.h"
#include "sdnode.h"

namespace sdnode {

namespace {

constexpr float kNormEps = 1e-6f;
constexpr float kRopeBase = 1000000.0f;
constexpr int kRopeContext = 40960;  // Qwen3's max_position_embeddings; no scaling is applied below it

}  // namespace

LlmConfig readLlmConfig(const Weights& w, const std::string& source) {
  auto bad = [&](const std::string& what) { throw Error(ErrorCode::ModelFormat, source + " is not a Qwen3 text model this reads: " + what); };
  if (!w.has("embed_tokens.weight")) bad("embed_tokens.weight is missing");
  LlmConfig c;
  const std::vector<int64_t>& table = w.shape("embed_tokens.weight");
  if (table.size() != 2) bad("embed_tokens.weight must be 2-D");
  c.vocab = table[0];
  c.width = table[1];
  c.layers = countIndexed(w, "layers.", ".self_attn.q_proj.weight");
  if (c.layers < 1) bad("it has no layers (layers.0.self_attn.q_proj.weight)");
  const std::string a = "layers.0.self_attn.";
  if (!w.has(a + "q_norm.weight")) bad(a + "q_norm.weight is missing (Qwen3 norms each head's q and k)");
  c.headWidth = w.shape(a + "q_norm.weight").at(0);
  const int64_t q = w.shape(a + "q_proj.weight").at(0), k = w.shape(a + "k_proj.weight").at(0);
  if (c.headWidth < 2 || c.headWidth % 2 != 0 || q % c.headWidth != 0 || k % c.headWidth != 0) {
    bad(a + "q_proj / k_proj widths (" + std::to_string(q) + ", " + std::to_string(k) + ") are not whole heads of " +
        std::to_string(c.headWidth));
  }
  c.heads = q / c.headWidth;
  c.kvHeads = k / c.headWidth;
  if (c.kvHeads < 1 || c.heads % c.kvHeads != 0) bad("its " + std::to_string(c.heads) + " query heads are not a multiple of its key heads");
  c.ff = w.shape("layers.0.mlp.gate_proj.weight").at(0);
  return c;
}

LlmEncoder::LlmEncoder(const LlmConfig& config, Weights& weights, Backend& backend)
    : config_(config), weights_(weights), runner_(backend) {}

ggml_tensor* LlmEncoder::build(GraphBuild& g, const int32_t* tokens, const int32_t* positions, int64_t T) {
  Net n{g.ctx(), weights_, false, &g};
  ggml_context* ctx = g.ctx();
  const LlmConfig& c = config_;
  const int64_t W = c.width, d = c.headWidth, Q = c.heads * d, K = c.kvHeads * d;
  // x: [W, T]
  ggml_tensor* x = ggml_get_rows(ctx, weights_.get("embed_tokens.weight", {c.vocab, W}), g.input(GGML_TYPE_I32, {T}, tokens));
  ggml_tensor* pos = g.input(GGML_TYPE_I32, {T}, positions);
  // Layers past the tap do not change what is handed on: they are not run.
  const int run = std::min(c.layers, c.tapLayer);
  for (int l = 0; l < run; l++) {
    const std::string p = "layers." + std::to_string(l) + ".";
    const std::string a = p + "self_attn.";
    ggml_tensor* h = rmsNorm(n, x, p + "input_layernorm.weight", W, kNormEps);
    // q, k: [d, heads, T], normed per head, then turned by NeoX-style rotary positions.
    auto heads = [&](const char* proj, const char* norm, int64_t width, int64_t count) {
      ggml_tensor* t = ggml_reshape_3d(ctx, linear(n, h, a + proj, W, width, false), d, count, T);
      t = rmsNorm(n, t, a + norm + ".weight", d, kNormEps);
      t = ggml_rope_ext(ctx, t, pos, nullptr, static_cast<int>(d), GGML_ROPE_TYPE_NEOX, kRopeContext, kRopeBase, 1.0f, 0.0f, 1.0f, 32.0f, 1.0f);
      return ggml_reshape_2d(ctx, t, d * count, T);
    };
    ggml_tensor* q = heads("q_proj", "q_norm", Q, c.heads);
    ggml_tensor* k = repeatKvHeads(ctx, heads("k_proj", "k_norm", K, c.kvHeads), d, c.kvHeads, c.heads);
    ggml_tensor* v = repeatKvHeads(ctx, linear(n, h, a + "v_proj", W, K, false), d, c.kvHeads, c.heads);
    ggml_tensor* attn = attention(n, q, k, v, static_cast<int>(c.heads), true);
    x = ggml_add(ctx, x, linear(n, attn, a + "o_proj", Q, W, false));
    h = rmsNorm(n, x, p + "post_attention_layernorm.weight", W, kNormEps);
    const std::string m = p + "mlp.";
    h = ggml_mul(ctx, ggml_silu(ctx, linear(n, h, m + "gate_proj", W, c.ff, false)), linear(n, h, m + "up_proj", W, c.ff, false));
    x = ggml_add(ctx, x, linear(n, h, m + "down_proj", c.ff, W, false));
  }
  if (c.layers >= c.tapLayer) return x;
  return rmsNorm(n, x, "norm.weight", W, kNormEps);
}

void LlmEncoder::validate() {
  GraphBuild g;
  const std::vector<int32_t> tokens(2, 0), positions = {0, 1};
  build(g, tokens.data(), positions.data(), 2);
  // The layers past the tap are never run, but a file must still hold them whole: checked here.
  const LlmConfig& c = config_;
  const int64_t W = c.width, Q = c.heads * c.headWidth, K = c.kvHeads * c.headWidth;
  for (int l = c.tapLayer; l < c.layers; l++) {
    const std::string p = "layers." + std::to_string(l) + ".";
    weights_.get(p + "self_attn.q_proj.weight", {Q, W});
    weights_.get(p + "self_attn.k_proj.weight", {K, W});
    weights_.get(p + "self_attn.v_proj.weight", {K, W});
    weights_.get(p + "self_attn.o_proj.weight", {W, Q});
    weights_.get(p + "self_attn.q_norm.weight", {c.headWidth});
    weights_.get(p + "self_attn.k_norm.weight", {c.headWidth});
    weights_.get(p + "mlp.gate_proj.weight", {c.ff, W});
    weights_.get(p + "mlp.up_proj.weight", {c.ff, W});
    weights_.get(p + "mlp.down_proj.weight", {W, c.ff});
    weights_.get(p + "input_layernorm.weight", {W});
    weights_.get(p + "post_attention_layernorm.weight", {W});
  }
  if (c.layers >= c.tapLayer && weights_.has("norm.weight")) weights_.get("norm.weight", {W});
}

std::vector<float> LlmEncoder::encode(const std::vector<int32_t>& tokens) {
  if (tokens.empty()) throw Error(ErrorCode::InvalidArgument, "the Qwen3 text encoder needs at least one token");
  for (int32_t id : tokens) {
    if (id < 0 || id >= config_.vocab) {
      throw Error(ErrorCode::InvalidArgument, "Qwen3 token id " + std::to_string(id) + " is outside the vocabulary (0-" +
                                                  std::to_string(config_.vocab - 1) + ")");
    }
  }
  const int64_t T = static_cast<int64_t>(tokens.size());
  std::vector<int32_t> positions(tokens.size());
  for (size_t i = 0; i < positions.size(); i++) positions[i] = static_cast<int32_t>(i);
  return runner_.run([&](GraphBuild& g) { return build(g, tokens.data(), positions.data(), T); });
}

}  // namespace sdnode
