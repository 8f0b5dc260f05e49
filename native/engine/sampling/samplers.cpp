// Formulas follow k-diffusion (Crowson) with eta = 1 for the ancestral samplers, s_noise = 1
// and s_churn = 0, in float as the reference tools compute them.
#include "samplers.h"

#include "sampler_run.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace sdnode {

namespace {

// One Euler step of the probability-flow ODE dx/dsigma = (x - denoised) / sigma.
void eulerStep(Latent& x, const Latent& denoised, float sigma, float sigmaTo) {
  const float dt = sigmaTo - sigma;
  for (size_t j = 0; j < x.size(); ++j) {
    const float d = (x[j] - denoised[j]) / sigma;
    x[j] += d * dt;
  }
}

// Splits a step from sigmaFrom to sigmaTo into a deterministic step down to sigmaDown and fresh
// noise of sigmaUp, so the total variance lands on sigmaTo (k-diffusion get_ancestral_step).
struct AncestralStep {
  float sigmaDown;
  float sigmaUp;
};

AncestralStep ancestralStep(float sigmaFrom, float sigmaTo) {
  const float up = std::min(
      sigmaTo, std::sqrt(sigmaTo * sigmaTo * (sigmaFrom * sigmaFrom - sigmaTo * sigmaTo) /
                         (sigmaFrom * sigmaFrom)));
  return {std::sqrt(sigmaTo * sigmaTo - up * up), up};
}

// The same split for flow matching (eta 1), where x = (1 - sigma) x0 + sigma noise: step down to
// sigmaDown = sigmaTo^2 / sigmaFrom, scale the mix so its signal part is (1 - sigmaTo) again
// (signalScale), and add the noise that brings its noise part back up to sigmaTo.
struct FlowAncestralStep {
  float sigmaDown;
  float sigmaUp;
  float signalScale;
};

FlowAncestralStep flowAncestralStep(float sigmaFrom, float sigmaTo) {
  if (sigmaFrom <= 0 || sigmaTo <= 0) return {sigmaTo, 0.0f, 1.0f};
  const float sigmaDown = std::clamp(sigmaTo * (sigmaTo / sigmaFrom), 0.0f, sigmaTo);
  if (1.0f - sigmaDown <= 0) return {sigmaTo, 0.0f, 1.0f};
  const float signalScale = (1.0f - sigmaTo) / (1.0f - sigmaDown);
  const float kept = std::clamp(sigmaDown / sigmaTo * signalScale, -1.0f, 1.0f);
  return {sigmaDown, sigmaTo * std::sqrt(std::max(1.0f - kept * kept, 0.0f)), signalScale};
}

// Adds an ancestral step's fresh noise; flow models first scale the signal back (see above).
void renoise(SamplerRun& run, Latent& x, float sigmaUp, float signalScale) {
  if (signalScale != 1.0f) {
    for (float& v : x) v *= signalScale;
  }
  run.addNoise(x, sigmaUp);
}

Latent sampleEulerAncestral(SamplerRun& run, Latent x, const std::vector<float>& sigmas) {
  const int steps = static_cast<int>(sigmas.size()) - 1;
  for (int i = 0; i < steps; ++i) {
    const Latent denoised = run.denoise(x, sigmas[i]);
    if (!run.flow()) {
      const AncestralStep a = ancestralStep(sigmas[i], sigmas[i + 1]);
      eulerStep(x, denoised, sigmas[i], a.sigmaDown);
      if (sigmas[i + 1] > 0) run.addNoise(x, a.sigmaUp);
    } else if (sigmas[i + 1] == 0) {
      x = denoised;
    } else {
      const FlowAncestralStep a = flowAncestralStep(sigmas[i], sigmas[i + 1]);
      const float keep = a.sigmaDown / sigmas[i];
      for (size_t j = 0; j < x.size(); ++j) x[j] = keep * x[j] + (1.0f - keep) * denoised[j];
      if (a.sigmaUp > 0) renoise(run, x, a.sigmaUp, a.signalScale);
    }
    run.stepDone(i);
  }
  return x;
}

Latent sampleEuler(SamplerRun& run, Latent x, const std::vector<float>& sigmas) {
  const int steps = static_cast<int>(sigmas.size()) - 1;
  for (int i = 0; i < steps; ++i) {
    eulerStep(x, run.denoise(x, sigmas[i]), sigmas[i], sigmas[i + 1]);
    run.stepDone(i);
  }
  return x;
}

// Heun's method: Euler predictor, trapezoidal corrector; the step to sigma 0 stays Euler
// because the derivative is undefined there.
Latent sampleHeun(SamplerRun& run, Latent x, const std::vector<float>& sigmas) {
  const int steps = static_cast<int>(sigmas.size()) - 1;
  Latent d(x.size());
  Latent xPredicted(x.size());
  for (int i = 0; i < steps; ++i) {
    const float sigma = sigmas[i];
    const float sigmaNext = sigmas[i + 1];
    const Latent denoised = run.denoiseFirstOfTwo(x, sigma);
    if (sigmaNext == 0) {
      eulerStep(x, denoised, sigma, sigmaNext);
    } else {
      const float dt = sigmaNext - sigma;
      for (size_t j = 0; j < x.size(); ++j) {
        d[j] = (x[j] - denoised[j]) / sigma;
        xPredicted[j] = x[j] + d[j] * dt;
      }
      const Latent denoisedNext = run.denoise(xPredicted, sigmaNext);
      for (size_t j = 0; j < x.size(); ++j) {
        const float dNext = (xPredicted[j] - denoisedNext[j]) / sigmaNext;
        x[j] += (d[j] + dNext) / 2.0f * dt;
      }
    }
    run.stepDone(i);
  }
  return x;
}

// DPM-Solver-2: the derivative at the log-space midpoint sigma drives the whole step.
Latent sampleDpm2(SamplerRun& run, Latent x, const std::vector<float>& sigmas) {
  const int steps = static_cast<int>(sigmas.size()) - 1;
  Latent xMid(x.size());
  for (int i = 0; i < steps; ++i) {
    const float sigma = sigmas[i];
    const float sigmaNext = sigmas[i + 1];
    const Latent denoised = run.denoiseFirstOfTwo(x, sigma);
    if (sigmaNext == 0) {
      eulerStep(x, denoised, sigma, sigmaNext);
    } else {
      const float sigmaMid = std::exp(0.5f * (std::log(sigma) + std::log(sigmaNext)));
      const float dtMid = sigmaMid - sigma;
      for (size_t j = 0; j < x.size(); ++j) {
        xMid[j] = x[j] + (x[j] - denoised[j]) / sigma * dtMid;
      }
      const Latent denoisedMid = run.denoise(xMid, sigmaMid);
      const float dt = sigmaNext - sigma;
      for (size_t j = 0; j < x.size(); ++j) {
        x[j] += (xMid[j] - denoisedMid[j]) / sigmaMid * dt;
      }
    }
    run.stepDone(i);
  }
  return x;
}

// DPM-Solver++(2S) in t = -log(sigma), stepping to the ancestral sigmaDown, then adding noise.
Latent sampleDpmpp2sAncestralFlow(SamplerRun& run, Latent x, const std::vector<float>& sigmas);

Latent sampleDpmpp2sAncestral(SamplerRun& run, Latent x, const std::vector<float>& sigmas) {
  if (run.flow()) return sampleDpmpp2sAncestralFlow(run, std::move(x), sigmas);
  const int steps = static_cast<int>(sigmas.size()) - 1;
  Latent xMid(x.size());
  for (int i = 0; i < steps; ++i) {
    const float sigma = sigmas[i];
    const Latent denoised = run.denoiseFirstOfTwo(x, sigma);
    const AncestralStep a = ancestralStep(sigma, sigmas[i + 1]);
    if (a.sigmaDown == 0) {
      eulerStep(x, denoised, sigma, a.sigmaDown);
    } else {
      const float h = std::log(sigma) - std::log(a.sigmaDown);  // t_next - t
      const float midScale = std::exp(-0.5f * h);                // sigma_mid / sigma
      const float sigmaMid = sigma * midScale;
      const float midWeight = -std::expm1(-0.5f * h);
      for (size_t j = 0; j < x.size(); ++j) {
        xMid[j] = midScale * x[j] + midWeight * denoised[j];
      }
      const Latent denoisedMid = run.denoise(xMid, sigmaMid);
      const float scale = a.sigmaDown / sigma;
      const float weight = -std::expm1(-h);
      for (size_t j = 0; j < x.size(); ++j) x[j] = scale * x[j] + weight * denoisedMid[j];
    }
    if (sigmas[i + 1] > 0) run.addNoise(x, a.sigmaUp);
    run.stepDone(i);
  }
  return x;
}

// The flow form: the midpoint is halfway in lambda = log((1 - sigma) / sigma) between sigma and
// the ancestral sigmaDown. At sigma 1 (lambda -inf, a step's start from pure noise) the midpoint
// is sigma itself, so the step's first prediction serves twice.
Latent sampleDpmpp2sAncestralFlow(SamplerRun& run, Latent x, const std::vector<float>& sigmas) {
  const int steps = static_cast<int>(sigmas.size()) - 1;
  Latent xMid(x.size());
  for (int i = 0; i < steps; ++i) {
    const float sigma = sigmas[i];
    const float sigmaTo = sigmas[i + 1];
    const bool fromNoise = 1.0f - sigma < 1e-6f;
    const Latent denoised = fromNoise ? run.denoise(x, sigma) : run.denoiseFirstOfTwo(x, sigma);
    if (sigmaTo == 0) {
      x = denoised;
    } else {
      const FlowAncestralStep a = flowAncestralStep(sigma, sigmaTo);
      Latent midPrediction;
      if (fromNoise) {
        midPrediction = denoised;
      } else {
        const float expS = std::sqrt((1.0f - sigma) / sigma * ((1.0f - a.sigmaDown) / a.sigmaDown));
        const float sigmaMid = 1.0f / (expS + 1.0f);
        const float keep = sigmaMid / sigma;
        for (size_t j = 0; j < x.size(); ++j) xMid[j] = keep * x[j] + (1.0f - keep) * denoised[j];
        midPrediction = run.denoise(xMid, sigmaMid);
      }
      const float keep = a.sigmaDown / sigma;
      for (size_t j = 0; j < x.size(); ++j) x[j] = keep * x[j] + (1.0f - keep) * midPrediction[j];
      renoise(run, x, a.sigmaUp, a.signalScale);
    }
    run.stepDone(i);
  }
  return x;
}

// DPM-Solver++(2M): a second-order multistep correction from the previous step's denoised.
Latent sampleDpmpp2m(SamplerRun& run, Latent x, const std::vector<float>& sigmas) {
  const int steps = static_cast<int>(sigmas.size()) - 1;
  Latent previous;
  for (int i = 0; i < steps; ++i) {
    const float sigma = sigmas[i];
    const float sigmaNext = sigmas[i + 1];
    Latent denoised = run.denoise(x, sigma);
    if (sigmaNext == 0) {
      // The exponential integrator lands exactly on the prediction at sigma 0.
      x = denoised;
    } else {
      const float h = std::log(sigma) - std::log(sigmaNext);
      const float scale = sigmaNext / sigma;
      const float weight = -std::expm1(-h);
      if (previous.empty()) {
        for (size_t j = 0; j < x.size(); ++j) x[j] = scale * x[j] + weight * denoised[j];
      } else {
        const float hLast = std::log(sigmas[i - 1]) - std::log(sigma);
        const float r = hLast / h;
        const float current = 1.0f + 1.0f / (2.0f * r);
        const float old = 1.0f / (2.0f * r);
        for (size_t j = 0; j < x.size(); ++j) {
          x[j] = scale * x[j] + weight * (current * denoised[j] - old * previous[j]);
        }
      }
    }
    previous = std::move(denoised);
    run.stepDone(i);
  }
  return x;
}

// Latent consistency models jump straight to the prediction, then re-noise to the next level.
// Flow models mix rather than add, so the prediction is scaled to (1 - sigma) first.
Latent sampleLcm(SamplerRun& run, Latent x, const std::vector<float>& sigmas) {
  const int steps = static_cast<int>(sigmas.size()) - 1;
  for (int i = 0; i < steps; ++i) {
    x = run.denoise(x, sigmas[i]);
    if (sigmas[i + 1] > 0) renoise(run, x, sigmas[i + 1], run.flow() ? 1.0f - sigmas[i + 1] : 1.0f);
    run.stepDone(i);
  }
  return x;
}

// RES multistep (Zhang and Chen's refined exponential solver, second order), as the reference runs
// it with eta 0: deterministic; each step after the first corrects the exponential-integrator
// step with the previous prediction, weighted by the phi functions of the log-sigma step.
Latent sampleResMultistep(SamplerRun& run, Latent x, const std::vector<float>& sigmas) {
  auto phi1 = [](float t) { return std::fabs(t) < 1e-6f ? 1.0f + t * 0.5f + t * t / 6.0f : std::expm1(t) / t; };
  auto phi2 = [&](float t) { return std::fabs(t) < 1e-6f ? 0.5f + t / 6.0f + t * t / 24.0f : (phi1(t) - 1.0f) / t; };
  const int steps = static_cast<int>(sigmas.size()) - 1;
  Latent previous;
  for (int i = 0; i < steps; ++i) {
    const float sigma = sigmas[i];
    const float sigmaNext = sigmas[i + 1];
    Latent denoised = run.denoise(x, sigma);
    if (sigmaNext == 0 || previous.empty()) {
      eulerStep(x, denoised, sigma, sigmaNext);
    } else {
      const float t = -std::log(sigma);
      const float h = -std::log(sigmaNext) - t;
      // The previous step's span over this one's, as the reference measures it.
      const float c2 = (-std::log(sigmas[i - 1]) - t) / h;
      float b1 = phi1(-h) - phi2(-h) / c2;
      float b2 = phi2(-h) / c2;
      if (!std::isfinite(b1)) b1 = 0.0f;
      if (!std::isfinite(b2)) b2 = 0.0f;
      const float scale = std::exp(-h);
      for (size_t j = 0; j < x.size(); ++j) x[j] = scale * x[j] + h * (b1 * denoised[j] + b2 * previous[j]);
    }
    previous = std::move(denoised);
    run.stepDone(i);
  }
  return x;
}

// DDIM with eta = 0 on the given sigmas. With alphas_cumprod = 1 / (1 + sigma^2) at each level
// and x in k-diffusion scale (x_ddim / sqrt(alphas_cumprod)), the update
// sqrt(a_prev) * x0 + sqrt(1 - a_prev) * eps becomes x0 + sigma_next * eps.
Latent sampleDdim(SamplerRun& run, Latent x, const std::vector<float>& sigmas) {
  const int steps = static_cast<int>(sigmas.size()) - 1;
  for (int i = 0; i < steps; ++i) {
    const float sigma = sigmas[i];
    const float sigmaNext = ddimStepTarget(run.schedule(), sigmas[i + 1]);
    const Latent denoised = run.denoise(x, sigma);
    for (size_t j = 0; j < x.size(); ++j) {
      const float eps = (x[j] - denoised[j]) / sigma;
      x[j] = denoised[j] + sigmaNext * eps;
    }
    run.stepDone(i);
  }
  if (sigmas.back() == 0) leaveInDdimScale(x, run.schedule());
  return x;
}

struct SamplerEntry {
  const char* name;
  SamplerFn run;
};

const std::vector<SamplerEntry>& samplerTable() {
  static const std::vector<SamplerEntry> table = {
      {"euler_a", sampleEulerAncestral},
      {"euler", sampleEuler},
      {"heun", sampleHeun},
      {"dpm2", sampleDpm2},
      {"dpm++2s_a", sampleDpmpp2sAncestral},
      {"dpm++2m", sampleDpmpp2m},
      {"lcm", sampleLcm},
      {"ddim", sampleDdim},
      {"lms", sampleLms},
      {"ipndm", sampleIpndm},
      {"ipndm_v", sampleIpndmVariable},
      {"plms", samplePlms},
      // DDIM "trailing" and TCD as stable-diffusion.cpp runs them by default, with eta (TCD's
      // gamma) 0. Then TCD's strategic step back to an earlier level and re-noising to the next
      // one vanishes, and both are the DDIM step with eta 0, which in k-diffusion scale is
      // denoised + sigma_next * eps: the Euler step. Unlike `ddim` they end at sigma 0 on the
      // prediction. What sets them apart is their default schedule (lib/samplers.ts): simple
      // (trailing timesteps) and lcm; the reference engine's images for them equal its euler's on
      // those schedules (bit for bit for ddim_trailing).
      {"ddim_trailing", sampleEuler},
      {"tcd", sampleEuler},
      {"res_multistep", sampleResMultistep},
  };
  return table;
}

void checkSigmas(const std::vector<float>& sigmas) {
  if (sigmas.size() < 2) {
    throw std::invalid_argument("sigmas: need at least 2 values (steps + 1), got " +
                                std::to_string(sigmas.size()));
  }
  for (size_t i = 0; i < sigmas.size(); ++i) {
    const bool last = i + 1 == sigmas.size();
    if (!std::isfinite(sigmas[i]) || sigmas[i] < 0 || (!last && sigmas[i] == 0)) {
      throw std::invalid_argument("sigmas[" + std::to_string(i) + "] = " +
                                  std::to_string(sigmas[i]) +
                                  ": all but the last must be positive, the last >= 0");
    }
    if (i > 0 && sigmas[i] > sigmas[i - 1]) {
      throw std::invalid_argument("sigmas[" + std::to_string(i) + "] = " +
                                  std::to_string(sigmas[i]) + " is above sigmas[" +
                                  std::to_string(i - 1) + "]: sigmas must not increase");
    }
  }
}

}  // namespace

Latent slope(const Latent& x, const Latent& denoised, float sigma) {
  Latent d(x.size());
  for (size_t j = 0; j < x.size(); ++j) d[j] = (x[j] - denoised[j]) / sigma;
  return d;
}

float ddimStepTarget(const NoiseSchedule& schedule, float sigmaNext) {
  return sigmaNext > 0 ? sigmaNext : schedule.sigmaAt(0);
}

void leaveInDdimScale(Latent& x, const NoiseSchedule& schedule) {
  const double sigma = schedule.sigmaAt(0);
  const float scale = static_cast<float>(1.0 / std::sqrt(1.0 + sigma * sigma));
  for (float& value : x) value *= scale;
}

const std::vector<std::string>& samplerNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const SamplerEntry& entry : samplerTable()) out.emplace_back(entry.name);
    return out;
  }();
  return names;
}

const std::vector<std::string>& flowSamplerNames() {
  static const std::vector<std::string> names = {"euler",   "euler_a", "heun",        "dpm2",          "dpm++2s_a",
                                                 "dpm++2m", "lcm",     "ipndm",       "ipndm_v",       "res_multistep"};
  return names;
}

std::vector<float> sample(const std::string& sampler, const Denoiser& denoise,
                          std::vector<float> x, const std::vector<float>& sigmas, Rng& rng,
                          const NoiseSchedule& schedule, const SamplerHooks& hooks, bool flow) {
  SamplerFn fn = nullptr;
  std::string known;
  for (const SamplerEntry& entry : samplerTable()) {
    if (sampler == entry.name) fn = entry.run;
    known += known.empty() ? entry.name : std::string(", ") + entry.name;
  }
  if (!fn) {
    throw std::invalid_argument("sampler: unknown name '" + sampler + "' (expected one of: " +
                                known + ")");
  }
  if (!denoise) throw std::invalid_argument("sample: denoise is empty");
  if (x.empty()) throw std::invalid_argument("sample: x is empty");
  checkSigmas(sigmas);
  if (flow && std::find(flowSamplerNames().begin(), flowSamplerNames().end(), sampler) == flowSamplerNames().end()) {
    throw std::invalid_argument("sampler '" + sampler + "' has no flow-matching form");
  }
  SamplerRun run(denoise, rng, schedule, hooks, static_cast<int>(sigmas.size()) - 1, flow);
  return fn(run, std::move(x), sigmas);
}

}  // namespace sdnode
