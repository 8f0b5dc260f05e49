#include "nn.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "backend.h"
#include "conv3x3.h"
#include "ggml-cpu.h"
#include "sdnode.h"

namespace sdnode {

namespace {

// Widths come from the checkpoint's shapes, layer by layer; a file whose layers do not connect
// must fail here, by name, before ggml asserts on the mismatch.
void requireWidth(const ggml_tensor* x, int dim, int64_t expected, const std::string& prefix) {
  if (x->ne[dim] != expected) {
    throw Error(ErrorCode::ModelFormat, "layer '" + prefix + "' takes " + std::to_string(expected) + " channels but its input has " +
                                            std::to_string(x->ne[dim]) + " (the checkpoint's layers do not connect)");
  }
}

// x: [W, H, C, N] -> [W + 2p, H + 2p, C, N], padded on every side with the rows and columns of the
// opposite side: torch's padding_mode='circular', which AUTOMATIC1111's tiling sets on every Conv2d.
// Views and concats rather than ggml's circular pad, which the Metal backend lacks.
ggml_tensor* padCircular(ggml_context* ctx, ggml_tensor* x, int p) {
  auto columns = [&](ggml_tensor* t, int64_t first, int64_t count) {
    return ggml_view_4d(ctx, t, count, t->ne[1], t->ne[2], t->ne[3], t->nb[1], t->nb[2], t->nb[3], first * t->nb[0]);
  };
  auto rows = [&](ggml_tensor* t, int64_t first, int64_t count) {
    return ggml_view_4d(ctx, t, t->ne[0], count, t->ne[2], t->ne[3], t->nb[1], t->nb[2], t->nb[3], first * t->nb[1]);
  };
  x = ggml_concat(ctx, ggml_concat(ctx, columns(x, x->ne[0] - p, p), x, 0), columns(x, 0, p), 0);
  return ggml_concat(ctx, ggml_concat(ctx, rows(x, x->ne[1] - p, p), x, 1), rows(x, 0, p), 1);
}

ggml_tensor* plainAttention(ggml_context* ctx, ggml_tensor* q, ggml_tensor* k, ggml_tensor* v, int heads, bool causal,
                            GraphBuild* graph, ggml_tensor* bias, float scale);

// Rows of activations from which a linear layer computes with an f32 copy of its weight.
constexpr int64_t kRowsForF32 = 256;

}  // namespace

ggml_tensor* linear(Net& n, ggml_tensor* x, const std::string& prefix, int64_t in, int64_t out, bool bias) {
  requireWidth(x, 0, in, prefix);
  ggml_tensor* w = n.w.get(prefix + ".weight", {out, in});
  // On the CPU, ggml's tiled GEMM reaches more GFLOP/s on f32 weights than on quantized ones (whose
  // kernels also quantize the activations first); where the layer has enough rows, dequantizing the
  // weight once per graph pays for itself, and q8_0 models then step as fast as f16 ones
  // (bench/roofline.mjs, bench/results/2026-12-01-speed-conv.md). f16 weights gain nothing from it.
  if (n.graph != nullptr && n.graph->onCpu() && ggml_is_quantized(w->type) && x->ne[1] * x->ne[2] * x->ne[3] >= kRowsForF32) {
    w = ggml_cast(n.ctx, w, GGML_TYPE_F32);
  }
  ggml_tensor* y = ggml_mul_mat(n.ctx, w, x);
  if (bias) y = ggml_add(n.ctx, y, n.w.get(prefix + ".bias", {out}));
  return y;
}

ggml_tensor* conv2d(Net& n, ggml_tensor* x, const std::string& prefix, int64_t in, int64_t out, int kernel, int stride,
                    int padding, bool bias) {
  requireWidth(x, 2, in, prefix);
  ggml_tensor* w = n.w.get(prefix + ".weight", {out, in, kernel, kernel});
  if (kernel == 3 && stride == 1 && padding == 1 && n.graph != nullptr && n.graph->onCpu() && conv3x3CpuFits(x, w)) {
    return conv3x3Cpu(*n.graph, x, w, bias ? n.w.get(prefix + ".bias", {out}) : nullptr, n.circular);
  }
  ggml_tensor* y;
  if (kernel == 1 && stride == 1 && padding == 0) {
    // A 1x1 convolution is a matmul over channels; skipping im2col saves a copy of the activations.
    ggml_tensor* tokens = imageToTokens(n.ctx, x);
    y = ggml_mul_mat(n.ctx, ggml_reshape_2d(n.ctx, w, in, out), tokens);
    y = tokensToImage(n.ctx, y, x->ne[0], x->ne[1]);
  } else if (n.circular && padding > 0) {
    y = ggml_conv_2d_direct(n.ctx, w, padCircular(n.ctx, x, padding), stride, stride, 0, 0, 1, 1);
  } else {
    y = ggml_conv_2d_direct(n.ctx, w, x, stride, stride, padding, padding, 1, 1);
  }
  if (!bias) return y;
  ggml_tensor* b = n.w.get(prefix + ".bias", {out});
  return ggml_add(n.ctx, y, ggml_reshape_4d(n.ctx, b, 1, 1, out, 1));
}

ggml_tensor* groupNorm(Net& n, ggml_tensor* x, const std::string& prefix, int64_t channels, float eps) {
  requireWidth(x, 2, channels, prefix);
  ggml_tensor* y = ggml_group_norm(n.ctx, x, 32, eps);
  ggml_tensor* w = n.w.get(prefix + ".weight", {channels});
  ggml_tensor* b = n.w.get(prefix + ".bias", {channels});
  y = ggml_mul(n.ctx, y, ggml_reshape_4d(n.ctx, w, 1, 1, channels, 1));
  return ggml_add(n.ctx, y, ggml_reshape_4d(n.ctx, b, 1, 1, channels, 1));
}

ggml_tensor* layerNorm(Net& n, ggml_tensor* x, const std::string& prefix, int64_t channels, float eps) {
  requireWidth(x, 0, channels, prefix);
  ggml_tensor* y = ggml_norm(n.ctx, x, eps);
  y = ggml_mul(n.ctx, y, n.w.get(prefix + ".weight", {channels}));
  return ggml_add(n.ctx, y, n.w.get(prefix + ".bias", {channels}));
}

ggml_tensor* attention(Net& n, ggml_tensor* q, ggml_tensor* k, ggml_tensor* v, int heads, bool causal, bool exact) {
  ggml_context* ctx = n.ctx;
  const int64_t channels = q->ne[0];
  const int64_t headDim = channels / heads;
  const int64_t tq = q->ne[1];
  const int64_t tk = k->ne[1];
  const int64_t batch = q->ne[2];
  const float scale = 1.0f / std::sqrt(static_cast<float>(headDim));
  // SDNODE_FLASH_ATTENTION=0 takes the plain path everywhere (bench/gpu.sh compares both).
  static const bool flash = [] {
    const char* setting = std::getenv("SDNODE_FLASH_ATTENTION");
    return setting == nullptr || std::string(setting) != "0";
  }();
  if (!causal && !exact && flash) {
    // The fused kernel never materialises the [Tk, Tq] score matrix (512 MB per UNet attention at
    // 512x512), which is most of the memory and time of the plain path at large sizes.
    // [C, T, N] -> [d, T, heads, N] views; K and V in f16 as the kernel wants them.
    // The CPU kernel's fast path (tiles of queries and keys through SIMD GEMMs) needs a head width
    // that is a multiple of the SIMD width; otherwise it falls back to one query at a time, 2.5x
    // slower for a whole SD 1.x step on AVX-512 builds, whose 16 floats do not divide SD 1.x's 40-wide
    // heads. Zero columns change no dot product (the scale stays that of the true width), and the
    // padded output columns are dropped.
    const int64_t simd = ggml_cpu_has_avx512() ? 16 : 8;
    const int64_t padded = (headDim + simd - 1) / simd * simd;
    auto heads4 = [&](ggml_tensor* x, int64_t t) {
      x = ggml_reshape_4d(ctx, x, headDim, heads, t, batch);
      if (padded != headDim) x = ggml_pad(ctx, x, int(padded - headDim), 0, 0, 0);
      return ggml_permute(ctx, x, 0, 2, 1, 3);
    };
    ggml_tensor* out = ggml_flash_attn_ext(ctx, heads4(q, tq), ggml_cast(ctx, heads4(k, tk), GGML_TYPE_F16),
                                           ggml_cast(ctx, heads4(v, tk), GGML_TYPE_F16), nullptr, scale, 0.0f, 0.0f);
    // A GPU backend without a kernel for this head width (CUDA: 160 and the VAE's 512; Metal: 160)
    // takes the plain path below, all on the GPU; the unused node is never computed.
    if (n.graph == nullptr || n.graph->supports(out)) {
      if (padded != headDim) {  // out: [padded, heads, Tq, N]
        out = ggml_cont(ctx, ggml_view_4d(ctx, out, headDim, heads, tq, batch, out->nb[1], out->nb[2], out->nb[3], 0));
      }
      return ggml_reshape_3d(ctx, out, channels, tq, batch);  // out: [d, heads, Tq, N]
    }
  }
  return plainAttention(ctx, q, k, v, heads, causal, n.graph, nullptr, scale);
}

ggml_tensor* attentionWithBias(Net& n, ggml_tensor* q, ggml_tensor* k, ggml_tensor* v, int heads, ggml_tensor* bias, float scale) {
  return plainAttention(n.ctx, q, k, v, heads, false, n.graph, bias, scale);
}

ggml_tensor* repeatKvHeads(ggml_context* ctx, ggml_tensor* x, int64_t d, int64_t kvHeads, int64_t heads) {
  if (kvHeads == heads) return x;
  const int64_t T = x->ne[1];
  ggml_tensor* grouped = ggml_reshape_4d(ctx, ggml_cont(ctx, x), d, 1, kvHeads, T);
  grouped = ggml_repeat_4d(ctx, grouped, d, heads / kvHeads, kvHeads, T);
  return ggml_reshape_2d(ctx, grouped, d * heads, T);
}

ggml_tensor* rmsNorm(Net& n, ggml_tensor* x, const std::string& weightName, int64_t channels, float eps) {
  requireWidth(x, 0, channels, weightName);
  return ggml_mul(n.ctx, ggml_rms_norm(n.ctx, x, eps), n.w.get(weightName, {channels}));
}

namespace {

ggml_tensor* plainAttention(ggml_context* ctx, ggml_tensor* q, ggml_tensor* k, ggml_tensor* v, int heads, bool causal,
                            GraphBuild* graph, ggml_tensor* bias, float scale) {
  const int64_t channels = q->ne[0];
  const int64_t headDim = channels / heads;
  const int64_t tq = q->ne[1];
  const int64_t tk = k->ne[1];
  const int64_t batch = q->ne[2];
  // [C, T, N] -> [d, T, heads*N]
  auto splitHeads = [&](ggml_tensor* x, int64_t t) {
    x = ggml_reshape_4d(ctx, x, headDim, heads, t, batch);
    x = ggml_permute(ctx, x, 0, 2, 1, 3);  // [d, T, heads, N]
    return ggml_reshape_3d(ctx, ggml_cont(ctx, x), headDim, t, heads * batch);
  };
  ggml_tensor* qh = splitHeads(q, tq);
  ggml_tensor* kh = splitHeads(k, tk);
  // v as [Tk, d, heads*N] so that one matmul weights the values
  ggml_tensor* vh = ggml_reshape_4d(ctx, v, headDim, heads, tk, batch);
  vh = ggml_cont(ctx, ggml_permute(ctx, vh, 1, 2, 0, 3));  // [Tk, d, heads, N]
  vh = ggml_reshape_3d(ctx, vh, tk, headDim, heads * batch);

  ggml_tensor* scores = ggml_mul_mat(ctx, kh, qh);  // [Tk, Tq, heads*N]
  if (bias != nullptr) {
    scores = ggml_soft_max(ctx, ggml_add(ctx, ggml_scale(ctx, scores, scale), bias));
  } else if (causal && graph != nullptr) {
    // A mask input rather than ggml's diag_mask_inf, which the Metal backend lacks.
    std::vector<float>& mask = *graph->keep(std::vector<float>(tk * tq, 0.0f));
    for (int64_t i = 0; i < tq; i++) std::fill(mask.begin() + i * tk + std::min(i + 1, tk), mask.begin() + (i + 1) * tk, -INFINITY);
    scores = ggml_soft_max_ext(ctx, scores, graph->input(GGML_TYPE_F32, {tk, tq}, mask.data()), scale, 0.0f);
  } else if (causal) {  // a graph built only to check shapes
    scores = ggml_scale(ctx, scores, scale);
    scores = ggml_diag_mask_inf(ctx, scores, 0);
    scores = ggml_soft_max(ctx, scores);
  } else {
    scores = ggml_soft_max_ext(ctx, scores, nullptr, scale, 0.0f);
  }
  ggml_tensor* out = ggml_mul_mat(ctx, vh, scores);  // [d, Tq, heads*N]
  out = ggml_reshape_4d(ctx, out, headDim, tq, heads, batch);
  out = ggml_cont(ctx, ggml_permute(ctx, out, 0, 2, 1, 3));  // [d, heads, Tq, N]
  return ggml_reshape_3d(ctx, out, channels, tq, batch);
}

}  // namespace

ggml_tensor* imageToTokens(ggml_context* ctx, ggml_tensor* x) {
  const int64_t w = x->ne[0], h = x->ne[1], c = x->ne[2], n = x->ne[3];
  ggml_tensor* t = ggml_cont(ctx, ggml_permute(ctx, x, 1, 2, 0, 3));  // [C, W, H, N]
  return ggml_reshape_3d(ctx, t, c, w * h, n);
}

ggml_tensor* tokensToImage(ggml_context* ctx, ggml_tensor* x, int64_t width, int64_t height) {
  const int64_t c = x->ne[0], n = x->ne[2];
  ggml_tensor* t = ggml_reshape_4d(ctx, x, c, width, height, n);
  return ggml_cont(ctx, ggml_permute(ctx, t, 2, 0, 1, 3));  // [W, H, C, N]
}

}  // namespace sdnode
