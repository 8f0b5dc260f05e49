#include "schedule.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "timestep_spacing.h"

namespace sdnode {

namespace {

std::string joinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

// Evenly spaced from `from` to `to` inclusive; a single point is `from`, as torch.linspace.
double linspaceAt(double from, double to, int count, int i) {
  if (count == 1) return from;
  return from + (to - from) * static_cast<double>(i) / static_cast<double>(count - 1);
}

// stable-diffusion.cpp's DiscreteSchedule: timesteps evenly spaced from 999 down to 0, the
// stride in float as there so the timesteps land on the same values.
std::vector<float> discreteSigmas(const NoiseSchedule& schedule, int steps) {
  std::vector<float> sigmas;
  sigmas.reserve(steps + 1);
  const float tMax = static_cast<float>(NoiseSchedule::kTimesteps - 1);
  if (steps == 1) {
    sigmas.push_back(schedule.tToSigma(tMax));
  } else {
    const float stride = tMax / static_cast<float>(steps - 1);
    for (int i = 0; i < steps; ++i) sigmas.push_back(schedule.tToSigma(tMax - stride * static_cast<float>(i)));
  }
  sigmas.push_back(0.0f);
  return sigmas;
}

// Karras et al. 2022, eq. (5): evenly spaced in sigma^(1/rho).
std::vector<float> karrasSigmas(const NoiseSchedule& schedule, int steps) {
  constexpr double kRho = 7.0;
  const double minInvRho = std::pow(static_cast<double>(schedule.sigmaMin()), 1.0 / kRho);
  const double maxInvRho = std::pow(static_cast<double>(schedule.sigmaMax()), 1.0 / kRho);
  std::vector<float> sigmas;
  sigmas.reserve(steps + 1);
  for (int i = 0; i < steps; ++i) {
    const double ramp = linspaceAt(0.0, 1.0, steps, i);
    sigmas.push_back(static_cast<float>(std::pow(maxInvRho + ramp * (minInvRho - maxInvRho), kRho)));
  }
  sigmas.push_back(0.0f);
  return sigmas;
}

std::vector<float> exponentialSigmas(const NoiseSchedule& schedule, int steps) {
  const double logMax = std::log(static_cast<double>(schedule.sigmaMax()));
  const double logMin = std::log(static_cast<double>(schedule.sigmaMin()));
  std::vector<float> sigmas;
  sigmas.reserve(steps + 1);
  for (int i = 0; i < steps; ++i) {
    sigmas.push_back(static_cast<float>(std::exp(linspaceAt(logMax, logMin, steps, i))));
  }
  sigmas.push_back(0.0f);
  return sigmas;
}

// The timesteps LCM models were distilled on: the 50-step grid 999, 979, …, 19, subsampled
// evenly (stable-diffusion.cpp's LCM schedule, its default for the lcm sampler).
std::vector<float> lcmSigmas(const NoiseSchedule& schedule, int steps) {
  constexpr int kOriginalSteps = 50;
  constexpr int kStride = NoiseSchedule::kTimesteps / kOriginalSteps;
  std::vector<float> sigmas;
  sigmas.reserve(steps + 1);
  for (int i = 0; i < steps; ++i) {
    const int index = static_cast<int>((static_cast<int64_t>(i) * kOriginalSteps) / steps);
    sigmas.push_back(schedule.tToSigma(static_cast<float>((kOriginalSteps - index) * kStride - 1)));
  }
  sigmas.push_back(0.0f);
  return sigmas;
}

// DDIM's "trailing" timestep spacing (Lin et al. 2023, table 2): every (1000 / steps)-th training
// timestep counted down from 999, so the first step starts at the top level. stable-diffusion.cpp
// calls it its simple schedule and makes it the default of ddim_trailing; the stride is in float as
// there so the timesteps truncate to the same integers.
std::vector<float> simpleSigmas(const NoiseSchedule& schedule, int steps) {
  const float stride = static_cast<float>(NoiseSchedule::kTimesteps) / static_cast<float>(steps);
  std::vector<float> sigmas;
  sigmas.reserve(steps + 1);
  for (int i = 0; i < steps; ++i) {
    const int t = NoiseSchedule::kTimesteps - 1 - static_cast<int>(static_cast<float>(i) * stride);
    sigmas.push_back(schedule.sigmaAt(std::max(t, 0)));
  }
  sigmas.push_back(0.0f);
  return sigmas;
}

}  // namespace

NoiseSchedule::NoiseSchedule() : sigmas_(kTimesteps), logSigmas_(kTimesteps) {
  // Double precision as in the LDM training code (torch.float64 betas); stored as float.
  const double sqrtStart = std::sqrt(0.00085);
  const double sqrtEnd = std::sqrt(0.012);
  double alphasCumprod = 1.0;
  for (int t = 0; t < kTimesteps; ++t) {
    const double sqrtBeta = linspaceAt(sqrtStart, sqrtEnd, kTimesteps, t);
    alphasCumprod *= 1.0 - sqrtBeta * sqrtBeta;
    const double sigma = std::sqrt((1.0 - alphasCumprod) / alphasCumprod);
    sigmas_[t] = static_cast<float>(sigma);
    logSigmas_[t] = static_cast<float>(std::log(sigma));
  }
}

float NoiseSchedule::sigmaToT(float sigma) const {
  if (std::isnan(sigma)) throw std::invalid_argument("sigmaToT: sigma is NaN");
  if (sigma <= sigmas_.front()) return 0.0f;
  if (sigma >= sigmas_.back()) return static_cast<float>(kTimesteps - 1);
  const float logSigma = std::log(sigma);
  // The last training log-sigma at or below ours; the table is strictly increasing.
  const auto above = std::upper_bound(logSigmas_.begin(), logSigmas_.end(), logSigma);
  const int low = std::min(static_cast<int>(above - logSigmas_.begin()) - 1, kTimesteps - 2);
  const float lowLog = logSigmas_[low];
  const float highLog = logSigmas_[low + 1];
  const float w = std::clamp((lowLog - logSigma) / (lowLog - highLog), 0.0f, 1.0f);
  return (1.0f - w) * static_cast<float>(low) + w * static_cast<float>(low + 1);
}

float NoiseSchedule::tToSigma(float t) const {
  if (!std::isfinite(t)) throw std::invalid_argument("tToSigma: t is not a finite number");
  t = std::clamp(t, 0.0f, static_cast<float>(kTimesteps - 1));
  const int low = static_cast<int>(std::floor(t));
  const int high = static_cast<int>(std::ceil(t));
  if (low == high) return sigmas_[low];
  const float w = t - static_cast<float>(low);
  return std::exp((1.0f - w) * logSigmas_[low] + w * logSigmas_[high]);
}

float NoiseSchedule::sigmaAt(int t) const {
  if (t < 0 || t >= kTimesteps) {
    throw std::invalid_argument("sigmaAt: timestep " + std::to_string(t) +
                                " is outside 0.." + std::to_string(kTimesteps - 1));
  }
  return sigmas_[t];
}

const std::vector<std::string>& schedulerNames() {
  static const std::vector<std::string> names = {"discrete", "karras", "exponential", "lcm", "simple", "beta", "smoothstep"};
  return names;
}

std::vector<float> makeSigmas(const NoiseSchedule& schedule, const std::string& scheduler,
                              int steps) {
  if (steps < 1) {
    throw std::invalid_argument("steps must be at least 1, got " + std::to_string(steps));
  }
  if (scheduler == "discrete") return discreteSigmas(schedule, steps);
  if (scheduler == "karras") return karrasSigmas(schedule, steps);
  if (scheduler == "exponential") return exponentialSigmas(schedule, steps);
  if (scheduler == "lcm") return lcmSigmas(schedule, steps);
  if (scheduler == "simple") return simpleSigmas(schedule, steps);
  if (scheduler == "beta" || scheduler == "smoothstep") {
    std::vector<float> sigmas;
    for (float t : scheduler == "beta" ? betaTimesteps(steps) : smoothstepTimesteps(steps)) sigmas.push_back(schedule.tToSigma(t));
    sigmas.push_back(0.0f);
    return sigmas;
  }
  throw std::invalid_argument("scheduler: unknown name '" + scheduler +
                              "' (expected one of: " + joinNames(schedulerNames()) + ")");
}

}  // namespace sdnode
