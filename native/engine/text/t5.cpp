#include "t5.h"

#include <cmath>

#include "clip.h"
#include "nn.h"
#include "sdnode.h"

namespace sdnode {

namespace {

constexpr int kBuckets = 32;
constexpr int kMaxDistance = 128;
constexpr int64_t kHeadWidth = 64;

}  // namespace

std::vector<int32_t> t5RelativeBuckets(int64_t length) {
  // Half the buckets for keys before the query, half for keys after; within each half, exact
  // distances up to 8, then logarithmically wider buckets up to 128 and beyond.
  const int half = kBuckets / 2, exact = half / 2;
  std::vector<int32_t> buckets(static_cast<size_t>(length * length));
  for (int64_t i = 0; i < length; i++) {
    for (int64_t j = 0; j < length; j++) {
      const int64_t relative = j - i;
      int bucket = relative > 0 ? half : 0;
      const int64_t distance = relative < 0 ? -relative : relative;
      if (distance < exact) {
        bucket += static_cast<int>(distance);
      } else {
        const float scaled = std::log(static_cast<float>(distance) / exact) / std::log(static_cast<float>(kMaxDistance) / exact);
        bucket += std::min(exact + static_cast<int>(scaled * (half - exact)), half - 1);
      }
      buckets[static_cast<size_t>(i * length + j)] = bucket;
    }
  }
  return buckets;
}

T5Config readT5Config(const Weights& w, const std::string& prefix) {
  T5Config c;
  c.prefix = prefix;
  const std::string shared = prefix + "shared.weight";
  if (!w.has(shared)) throw Error(ErrorCode::ModelFormat, "not a T5 encoder: " + shared + " is missing");
  const std::vector<int64_t>& table = w.shape(shared);
  if (table.size() != 2) throw Error(ErrorCode::ModelFormat, shared + " must be 2-D");
  c.vocab = table[0];
  c.width = table[1];
  const std::string block = prefix + "encoder.block.0.layer.";
  c.inner = w.shape(block + "0.SelfAttention.q.weight").at(0);
  c.ff = w.shape(block + "1.DenseReluDense.wi_0.weight").at(0);
  if (c.inner % kHeadWidth != 0) {
    throw Error(ErrorCode::ModelUnsupported, block + "0.SelfAttention.q.weight: attention width " + std::to_string(c.inner) +
                                                 " is not a whole number of 64-wide heads");
  }
  c.heads = static_cast<int>(c.inner / kHeadWidth);
  c.layers = countIndexed(w, prefix + "encoder.block.", ".layer.0.SelfAttention.q.weight");
  return c;
}

T5Encoder::T5Encoder(const T5Config& config, Weights& weights, Backend& backend)
    : config_(config), weights_(weights), runner_(backend) {}

ggml_tensor* T5Encoder::build(GraphBuild& g, const int32_t* tokens, int64_t count, const std::vector<int32_t>& buckets) {
  Net n{g.ctx(), weights_, false, &g};
  ggml_context* ctx = g.ctx();
  const std::string& p = config_.prefix;
  const int64_t W = config_.width, I = config_.inner, T = count;
  ggml_tensor* ids = g.input(GGML_TYPE_I32, {T}, tokens);
  // x: [W, T]
  ggml_tensor* x = ggml_get_rows(ctx, weights_.get(p + "shared.weight", {config_.vocab, W}), ids);
  // The position bias comes from the first block's table and is shared by every layer: [Tk, Tq, heads].
  ggml_tensor* table = weights_.get(p + "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", {kBuckets, config_.heads});
  ggml_tensor* bias = ggml_get_rows(ctx, table, g.input(GGML_TYPE_I32, {T * T}, buckets.data()));  // [heads, T*T]
  bias = ggml_cont(ctx, ggml_permute(ctx, ggml_reshape_3d(ctx, bias, config_.heads, T, T), 2, 0, 1, 3));
  for (int l = 0; l < config_.layers; l++) {
    const std::string b = p + "encoder.block." + std::to_string(l) + ".layer.";
    ggml_tensor* h = rmsNorm(n, x, b + "0.layer_norm.weight", W);
    const std::string a = b + "0.SelfAttention.";
    h = attentionWithBias(n, linear(n, h, a + "q", W, I, false), linear(n, h, a + "k", W, I, false), linear(n, h, a + "v", W, I, false),
                          config_.heads, bias, 1.0f);
    x = ggml_add(ctx, x, linear(n, h, a + "o", I, W, false));
    h = rmsNorm(n, x, b + "1.layer_norm.weight", W);
    const std::string f = b + "1.DenseReluDense.";
    // Gated GELU (tanh approximation, as T5 v1.1 was trained).
    h = ggml_mul(ctx, ggml_gelu(ctx, linear(n, h, f + "wi_0", W, config_.ff, false)), linear(n, h, f + "wi_1", W, config_.ff, false));
    x = ggml_add(ctx, x, linear(n, h, f + "wo", config_.ff, W, false));
  }
  return rmsNorm(n, x, p + "encoder.final_layer_norm.weight", W);
}

void T5Encoder::validate() {
  if (config_.layers < 1) throw Error(ErrorCode::ModelFormat, "the T5 encoder has no blocks (" + config_.prefix + "encoder.block.0.*)");
  GraphBuild g;
  std::vector<int32_t> tokens(4, 0);
  build(g, tokens.data(), 4, t5RelativeBuckets(4));
}

std::vector<float> T5Encoder::encode(const std::vector<int32_t>& tokens) {
  if (tokens.empty()) throw Error(ErrorCode::InvalidArgument, "the T5 encoder needs at least one token");
  for (int32_t id : tokens) {
    if (id < 0 || id >= config_.vocab) {
      throw Error(ErrorCode::InvalidArgument, "T5 token id " + std::to_string(id) + " is outside the vocabulary (0-" +
                                                  std::to_string(config_.vocab - 1) + ")");
    }
  }
  const int64_t T = static_cast<int64_t>(tokens.size());
  const std::vector<int32_t> buckets = t5RelativeBuckets(T);
  return runner_.run([&](GraphBuild& g) { return build(g, tokens.data(), T, buckets); });
}

}  // namespace sdnode
