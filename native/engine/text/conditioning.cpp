#include "conditioning.h"

#include <cmath>

#include "model_impl.h"

namespace sdnode {

namespace {

// LDM's timestep embedding of one value: cos of value * 10000^(-i/half) for the first half, sin for
// the second.
void appendSinusoid(std::vector<float>& out, double value, int64_t width) {
  const int64_t half = width / 2;
  const size_t start = out.size();
  out.resize(start + static_cast<size_t>(width), 0.0f);
  for (int64_t i = 0; i < half; i++) {
    const float frequency = std::exp(-std::log(10000.0f) * static_cast<float>(i) / static_cast<float>(half));
    const float arg = static_cast<float>(value) * frequency;
    out[start + i] = std::cos(arg);
    out[start + half + i] = std::sin(arg);
  }
}

}  // namespace

std::vector<float> sizeConditioning(const std::vector<float>& pooled, const Request& r, int width, int height,
                                    int64_t embedWidth, std::optional<float> aestheticScore) {
  const bool ownOriginal = r.originalWidth > 0 && r.originalHeight > 0;
  const bool ownTarget = r.targetWidth > 0 && r.targetHeight > 0;
  std::vector<double> values = {static_cast<double>(ownOriginal ? r.originalHeight : height),
                                static_cast<double>(ownOriginal ? r.originalWidth : width), static_cast<double>(r.cropTop),
                                static_cast<double>(r.cropLeft)};
  if (aestheticScore) {
    values.push_back(*aestheticScore);
  } else {
    values.push_back(ownTarget ? r.targetHeight : height);
    values.push_back(ownTarget ? r.targetWidth : width);
  }
  std::vector<float> out = pooled;
  for (double value : values) appendSinusoid(out, value, embedWidth);
  return out;
}

EncodedPrompt DiffusionModel::encodePrompt(const Conditioning& prompt, int clipSkip) {
  EncodedPrompt out;
  out.tokens = static_cast<int64_t>(prompt.tokens.size());
  // The SDXL refiner's only encoder (bigG) gives the pooled vector too.
  ClipOutput first = clip_->encode(prompt.tokens, clipSkip, refiner_, prompt.embeddings);
  if (!clip2_) {
    applyEmphasis(first.hidden, prompt.weights, clip_->config().width);
    out.hidden = std::move(first.hidden);
    out.pooled = std::move(first.pooled);
    return out;
  }
  // SDXL: both encoders read the same ids; their hidden states are concatenated per token, and the
  // emphasis weighs the concatenation as one.
  ClipOutput second = clip2_->encode(prompt.tokens, clipSkip, true, prompt.embeddings2);
  const int64_t w1 = clip_->config().width, w2 = clip2_->config().width, tokens = out.tokens;
  out.hidden.resize(static_cast<size_t>(tokens * (w1 + w2)));
  for (int64_t t = 0; t < tokens; t++) {
    std::copy_n(first.hidden.begin() + t * w1, w1, out.hidden.begin() + t * (w1 + w2));
    std::copy_n(second.hidden.begin() + t * w2, w2, out.hidden.begin() + t * (w1 + w2) + w1);
  }
  applyEmphasis(out.hidden, prompt.weights, w1 + w2);
  out.pooled = std::move(second.pooled);
  return out;
}

std::pair<std::vector<float>, std::vector<float>> DiffusionModel::addedConditioning(const TextConditions& text, const Request& r,
                                                                                    int64_t w, int64_t h) const {
  std::pair<std::vector<float>, std::vector<float>> added;
  const int64_t adm = unet_->config().admChannels;
  if (adm == 0) return added;
  const int64_t embedWidth = (adm - static_cast<int64_t>(text.condPooled.size())) / (refiner_ ? 5 : 6);
  const int width = static_cast<int>(w) * info_.vaeScale, height = static_cast<int>(h) * info_.vaeScale;
  auto score = [&](float value) { return refiner_ ? std::optional<float>(value) : std::nullopt; };
  added.first = sizeConditioning(text.condPooled, r, width, height, embedWidth, score(r.aestheticScore));
  if (!text.uncond.empty()) {
    added.second = sizeConditioning(text.uncondPooled, r, width, height, embedWidth, score(r.negativeAestheticScore));
  }
  return added;
}

}  // namespace sdnode
