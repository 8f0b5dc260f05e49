#include "step_cache.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace sdnode {

namespace {

constexpr int kTimesteps = 1000;
// ucache's relative scale mixes the output's size with its recent change times this gain.
constexpr float kChangeGain = 1.6f;

float meanAbsDifference(const std::vector<float>& a, const std::vector<float>& b) {
  double sum = 0.0;
  for (size_t i = 0; i < a.size(); i++) sum += std::fabs(a[i] - b[i]);
  return a.empty() ? 0.0f : static_cast<float>(sum / static_cast<double>(a.size()));
}

float meanAbs(const std::vector<float>& a) {
  double sum = 0.0;
  for (float v : a) sum += std::fabs(v);
  return a.empty() ? 0.0f : static_cast<float>(sum / static_cast<double>(a.size()));
}

}  // namespace

void checkCacheOptions(const CacheOptions& o, bool flow) {
  if (o.mode.empty()) return;
  if (o.mode != "easycache" && o.mode != "ucache") {
    throw std::invalid_argument("cache.mode must be 'easycache' (FLUX.1, Chroma, SD3) or 'ucache' (SD 1.x, 2.x, SDXL), got '" + o.mode + "'");
  }
  if (o.mode == "easycache" && !flow) {
    throw std::invalid_argument("cache.mode 'easycache' is for flow transformers (FLUX.1, Chroma, SD3); this UNet model takes 'ucache'");
  }
  if (o.mode == "ucache" && flow) {
    throw std::invalid_argument("cache.mode 'ucache' is for UNet models (SD 1.x, 2.x, SDXL); this flow transformer takes 'easycache'");
  }
  if (!(o.threshold < 0.0f || (std::isfinite(o.threshold) && o.threshold <= 1000.0f))) {
    throw std::invalid_argument("cache.threshold must be between 0 and 1000");
  }
  if (!(o.start >= 0.0f && o.start < 1.0f && o.end > 0.0f && o.end <= 1.0f && o.start < o.end)) {
    throw std::invalid_argument("cache.start and cache.end must satisfy 0 <= start < end <= 1");
  }
  if (!(o.decay >= 0.0f && o.decay <= 1.0f)) throw std::invalid_argument("cache.decay must be between 0 and 1");
}

StepCache StepCache::forUnet(const CacheOptions& options, const std::vector<float>& sigmas) {
  StepCache cache;
  if (options.mode != "ucache" || sigmas.size() < 2) return cache;
  cache.mode_ = Mode::UCache;
  cache.options_ = options;
  cache.threshold_ = options.threshold < 0.0f ? 1.0f : options.threshold;
  const size_t steps = sigmas.size() - 1;
  cache.expectedSteps_ = static_cast<int>(steps);
  const size_t first = std::min(static_cast<size_t>(options.start * static_cast<float>(steps)), steps - 1);
  const size_t last = std::min(static_cast<size_t>(options.end * static_cast<float>(steps)), steps - 1);
  cache.fromSigma_ = std::max(sigmas[first], sigmas[last]);
  cache.toSigma_ = std::min(sigmas[first], sigmas[last]);
  return cache;
}

StepCache StepCache::forFlow(const CacheOptions& options, const FlowSchedule& schedule) {
  StepCache cache;
  if (options.mode != "easycache") return cache;
  cache.mode_ = Mode::EasyCache;
  cache.options_ = options;
  cache.threshold_ = options.threshold < 0.0f ? 0.2f : options.threshold;
  const auto sigmaAt = [&](float fraction) {
    if (fraction <= 0.0f) return std::numeric_limits<float>::max();
    if (fraction >= 1.0f) return 0.0f;
    return schedule.tToSigma((1.0f - fraction) * static_cast<float>(kTimesteps - 1));
  };
  cache.fromSigma_ = sigmaAt(options.start);
  cache.toSigma_ = sigmaAt(options.end);
  return cache;
}

void StepCache::beginStep(int stepIndex, float sigma) {
  stepIndex_ = stepIndex;
  skipping_ = false;
  measuredInputChange_ = false;
  active_ = sigma <= fromSigma_ && sigma > toSigma_;
}

float StepCache::ucacheThreshold() const {
  const int total = expectedSteps_ > 0 ? expectedSteps_ : std::max(20, passesRun_ * 2);
  const float progress = std::clamp(static_cast<float>(passesRun_) / static_cast<float>(total), 0.0f, 1.0f);
  const float scale = progress < 0.2f ? 0.5f : progress > 0.8f ? 1.5f : 1.0f;
  const float threshold = threshold_ * scale;
  return options_.relative ? threshold : threshold * previousOutputSize_;
}

bool StepCache::reuse(int slot, const std::vector<float>& input, float sigma, int step, std::vector<float>& output) {
  if (!enabled() || step <= 0) return false;
  if (step - 1 != stepIndex_) beginStep(step - 1, sigma);
  if (!active_) return false;
  const auto difference = differences_.find(slot);
  const bool known = difference != differences_.end() && difference->second.size() == input.size();
  const auto foresee = [&] {
    output.resize(input.size());
    for (size_t i = 0; i < input.size(); i++) output[i] = input[i] + difference->second[i];
    return true;
  };
  if (skipping_) return known && foresee();
  if (slot != 0 || previousInput_.empty() || previousOutput_.empty() || !known || previousInput_.size() != input.size()) return false;

  inputChange_ = meanAbsDifference(input, previousInput_);
  measuredInputChange_ = true;
  if (!(previousOutputSize_ > 0.0f && hasChangeRate_ && inputChange_ > 0.0f)) return false;
  const float foreseenChange = changeRate_ * inputChange_;
  bool skip;
  if (mode_ == Mode::EasyCache) {
    summed_ += foreseenChange / previousOutputSize_;
    skip = summed_ < threshold_;
    if (!skip) summed_ = 0.0f;
  } else {
    float rate = foreseenChange;
    if (options_.relative) {
      const float size = std::max(previousOutputSize_, 1e-6f);
      const float recent = hasOutputChangeMean_ ? std::max(outputChangeMean_ * std::max(1.0f, kChangeGain), 1e-6f) : size;
      rate /= std::sqrt(size * recent);
    }
    // Each skip in a row makes the estimate less sure.
    rate *= 1.0f + 0.5f * static_cast<float>(skippedInARow_);
    summed_ = summed_ * options_.decay + rate;
    skip = summed_ < ucacheThreshold();
    if (skip) skippedInARow_++;
    else if (options_.reset) summed_ = 0.0f;
  }
  if (!skip) return false;
  skipping_ = true;
  skippedSteps_++;
  return foresee();
}

void StepCache::remember(int slot, const std::vector<float>& input, const std::vector<float>& output, int step) {
  if (!enabled() || step <= 0 || !active_) return;
  std::vector<float>& difference = differences_[slot];
  difference.resize(output.size());
  for (size_t i = 0; i < output.size() && i < input.size(); i++) difference[i] = output[i] - input[i];
  if (output.size() != input.size()) difference.clear();
  if (slot != 0) return;

  if (mode_ == Mode::UCache) {
    passesRun_++;
    skippedInARow_ = 0;
  }
  previousInput_ = input;
  const float outputChange = previousOutput_.size() == output.size() ? meanAbsDifference(output, previousOutput_) : 0.0f;
  if (mode_ == Mode::UCache && std::isfinite(outputChange) && outputChange > 0.0f) {
    outputChangeMean_ = hasOutputChangeMean_ ? 0.8f * outputChangeMean_ + 0.2f * outputChange : outputChange;
    hasOutputChangeMean_ = true;
  }
  previousOutput_ = output;
  previousOutputSize_ = meanAbs(output);
  if (measuredInputChange_ && inputChange_ > 0.0f && outputChange > 0.0f) {
    const float rate = outputChange / inputChange_;
    if (std::isfinite(rate)) {
      changeRate_ = rate;
      hasChangeRate_ = true;
    }
  }
  if (mode_ == Mode::EasyCache) summed_ = 0.0f;
  measuredInputChange_ = false;
}

}  // namespace sdnode
