// What the sampler families (samplers*.cpp) share: the run context every sampler gets, the
// signature they have, and the few step formulas more than one family uses. Internal to the
// engine; callers use samplers.h.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "samplers.h"

namespace sdnode {

using Latent = std::vector<float>;

// What every sampler needs besides x and the sigmas: the model, the noise, the hooks.
class SamplerRun {
 public:
  SamplerRun(const Denoiser& denoise, Rng& rng, const NoiseSchedule& schedule,
             const SamplerHooks& hooks, int steps, bool flow)
      : denoise_(denoise), rng_(rng), schedule_(schedule), hooks_(hooks), steps_(steps), flow_(flow) {}

  const NoiseSchedule& schedule() const { return schedule_; }
  // Whether the model is a flow-matching one (x = (1 - sigma) x0 + sigma noise).
  bool flow() const { return flow_; }

  // The model's prediction for the current step.
  Latent denoise(const Latent& x, float sigma) { return call(x, sigma, step_); }
  // The first of a step's two model calls (heun, dpm2, dpm++2s_a), numbered as the reference
  // numbers it.
  Latent denoiseFirstOfTwo(const Latent& x, float sigma) { return call(x, sigma, -step_); }

  void addNoise(Latent& x, float scale) {
    const std::vector<float> noise = rng_.randn(x.size());
    for (size_t j = 0; j < x.size(); ++j) x[j] += noise[j] * scale;
  }

  void stepDone(int i) {
    step_ = i + 2;
    if (hooks_.onStep) hooks_.onStep(i + 1, steps_);
  }

 private:
  const Denoiser& denoise_;
  Rng& rng_;
  const NoiseSchedule& schedule_;
  const SamplerHooks& hooks_;
  int steps_;
  bool flow_;
  int step_ = 1;  // 1-based: the step the next model call belongs to

  Latent call(const Latent& x, float sigma, int step) {
    if (hooks_.aborted && hooks_.aborted()) throw Aborted();
    Latent denoised = denoise_(x, sigma, step);
    if (denoised.size() != x.size()) {
      throw std::runtime_error("sampler: the denoiser returned " +
                               std::to_string(denoised.size()) + " values for a latent of " +
                               std::to_string(x.size()));
    }
    return denoised;
  }
};

using SamplerFn = Latent (*)(SamplerRun&, Latent, const std::vector<float>&);

// The ODE's slope dx/dsigma = (x - denoised) / sigma, which for an eps model is its predicted
// noise.
Latent slope(const Latent& x, const Latent& denoised, float sigma);

// DDIM-family samplers (ddim, plms) end where the latent-diffusion code ends them: at the first
// training level (alphas_cumprod[0], diffusers' set_alpha_to_one = false) rather than at sigma 0.
// For them a final sigma of 0 stands for that level ...
float ddimStepTarget(const NoiseSchedule& schedule, float sigmaNext);
// ... and the latent that arrives there (in k-diffusion scale, latent + sigma * noise) leaves in
// DDIM scale, sqrt(alphas_cumprod) times that, as the reference engine decodes it.
void leaveInDdimScale(Latent& x, const NoiseSchedule& schedule);

// samplers_multistep.cpp
Latent sampleLms(SamplerRun& run, Latent x, const std::vector<float>& sigmas);
Latent sampleIpndm(SamplerRun& run, Latent x, const std::vector<float>& sigmas);
Latent sampleIpndmVariable(SamplerRun& run, Latent x, const std::vector<float>& sigmas);
Latent samplePlms(SamplerRun& run, Latent x, const std::vector<float>& sigmas);

}  // namespace sdnode
