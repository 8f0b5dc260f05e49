#include "dit.h"

#include <algorithm>

#include <cmath>

namespace sdnode {

std::vector<float> timestepEmbedding(float t, int width) {
  const int half = width / 2;
  std::vector<float> e(static_cast<size_t>(width));
  for (int i = 0; i < half; i++) {
    const float freq = std::exp(-std::log(10000.0f) * static_cast<float>(i) / static_cast<float>(half));
    e[i] = std::cos(t * freq);
    e[i + half] = std::sin(t * freq);
  }
  return e;
}

namespace {

// Calls visit(latentIndex, tokenIndex) for every value, tokens' values in `order`.
template <typename Visit>
void forEachPatchValue(int64_t C, int64_t h, int64_t w, PatchOrder order, Visit visit) {
  const int64_t ph = h / kDitPatch, pw = w / kDitPatch, features = C * kDitPatch * kDitPatch;
  for (int64_t y = 0; y < ph; y++) {
    for (int64_t x = 0; x < pw; x++) {
      const int64_t token = (y * pw + x) * features;
      for (int64_t c = 0; c < C; c++) {
        for (int64_t dy = 0; dy < kDitPatch; dy++) {
          for (int64_t dx = 0; dx < kDitPatch; dx++) {
            const int64_t value = order == PatchOrder::ChannelFirst ? (c * kDitPatch + dy) * kDitPatch + dx : (dy * kDitPatch + dx) * C + c;
            visit((c * h + y * kDitPatch + dy) * w + x * kDitPatch + dx, token + value);
          }
        }
      }
    }
  }
}

}  // namespace

std::vector<float> patchify(const std::vector<float>& latent, int64_t C, int64_t h, int64_t w, PatchOrder order) {
  std::vector<float> tokens(latent.size());
  forEachPatchValue(C, h, w, order, [&](int64_t at, int64_t to) { tokens[to] = latent[at]; });
  return tokens;
}

std::vector<float> unpatchify(const std::vector<float>& tokens, int64_t C, int64_t h, int64_t w, PatchOrder order) {
  std::vector<float> latent(tokens.size());
  forEachPatchValue(C, h, w, order, [&](int64_t at, int64_t from) { latent[at] = tokens[from]; });
  return latent;
}

ggml_tensor* modulate(ggml_context* ctx, ggml_tensor* x, ggml_tensor* shift, ggml_tensor* scale) {
  x = ggml_norm(ctx, x, 1e-6f);
  return ggml_add(ctx, ggml_add(ctx, x, ggml_mul(ctx, x, scale)), shift);
}

ggml_tensor* valuesOf(ggml_context* ctx, ggml_tensor* x, int64_t from, int64_t count) {
  return ggml_view_2d(ctx, x, count, x->ne[1], x->nb[1], static_cast<size_t>(from) * ggml_element_size(x));
}

ggml_tensor* tokensOf(ggml_context* ctx, ggml_tensor* x, int64_t from, int64_t count) {
  return ggml_view_2d(ctx, x, x->ne[0], count, x->nb[1], static_cast<size_t>(from) * x->nb[1]);
}

ggml_tensor* pieceOf(ggml_context* ctx, ggml_tensor* m, int64_t width, int i) {
  return ggml_view_1d(ctx, m, width, static_cast<size_t>(i * width) * ggml_element_size(m));
}

std::vector<float> ropeTable(const std::vector<int>& axes, float theta, const std::vector<RopePosition>& positions) {
  int64_t pairs = 0;
  for (int a : axes) pairs += a / 2;
  const int64_t T = static_cast<int64_t>(positions.size());
  std::vector<float> table(static_cast<size_t>(2 * pairs * T));
  for (int64_t t = 0; t < T; t++) {
    int64_t pair = 0;
    for (size_t a = 0; a < axes.size(); a++) {
      const int half = axes[a] / 2;
      for (int j = 0; j < half; j++, pair++) {
        const float omega = 1.0f / std::pow(theta, static_cast<float>(2 * j) / static_cast<float>(axes[a]));
        const float angle = positions[static_cast<size_t>(t)][a] * omega;
        table[static_cast<size_t>(t * pairs + pair)] = std::cos(angle);
        table[static_cast<size_t>((T + t) * pairs + pair)] = std::sin(angle);
      }
    }
  }
  return table;
}

Rope ropeOf(ggml_context* ctx, ggml_tensor* table, int64_t from, int64_t count) {
  const int64_t pairs = table->ne[0], T = count < 0 ? table->ne[1] : count;
  auto part = [&](int i) {
    ggml_tensor* half = ggml_view_2d(ctx, table, pairs, T, table->nb[1], i * table->nb[2] + static_cast<size_t>(from) * table->nb[1]);
    return ggml_reshape_4d(ctx, half, 1, pairs, 1, T);
  };
  return {part(0), part(1)};
}

ggml_tensor* rotate(ggml_context* ctx, ggml_tensor* x, const Rope& rope) {
  const int64_t d = x->ne[0], heads = x->ne[1], T = x->ne[2];
  x = ggml_reshape_4d(ctx, x, 2, d / 2, heads, T);
  auto half = [&](int i) { return ggml_view_4d(ctx, x, 1, x->ne[1], x->ne[2], x->ne[3], x->nb[1], x->nb[2], x->nb[3], i * x->nb[0]); };
  ggml_tensor* a = half(0);
  ggml_tensor* b = half(1);
  ggml_tensor* first = ggml_sub(ctx, ggml_mul(ctx, a, rope.cos), ggml_mul(ctx, b, rope.sin));
  ggml_tensor* second = ggml_add(ctx, ggml_mul(ctx, a, rope.sin), ggml_mul(ctx, b, rope.cos));
  return ggml_reshape_2d(ctx, ggml_concat(ctx, first, second, 0), d * heads, T);
}

bool skipped(const std::vector<int32_t>* blocks, int index) {
  return blocks != nullptr && std::find(blocks->begin(), blocks->end(), index) != blocks->end();
}

}  // namespace sdnode
