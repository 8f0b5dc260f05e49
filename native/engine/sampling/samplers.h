// k-diffusion samplers over a latent held as a flat float vector.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "rng.h"
#include "schedule.h"
#include "sdnode.h"

namespace sdnode {

// The model's denoised prediction for x at noise level sigma (same size as x). x is in
// k-diffusion scale: latent + sigma * noise (flow models: (1 - sigma) * latent + sigma * noise).
// `step` is the 1-based step the call belongs to, negated for the first model call of a step
// that makes two (heun, dpm2, dpm++2s_a), as the reference engine numbers them; skip-layer
// guidance reads it.
using Denoiser = std::function<std::vector<float>(const std::vector<float>& x, float sigma, int step)>;

struct SamplerHooks {
  std::function<void(int step, int steps)> onStep;  // after each step; step is 1-based
  std::function<bool()> aborted;                    // polled before every model call
};

// Thrown by sample() when hooks.aborted() answers true; carries ErrorCode::Aborted.
struct Aborted : Error {
  Aborted() : Error(ErrorCode::Aborted, "generation aborted") {}
};

// Runs `sampler` down `sigmas` (steps + 1 values, positive then a final value >= 0) starting
// from x, which already holds the noise (or noised latent) at sigmas[0]. Ancestral samplers
// draw rng.randn(x.size()) once per step that adds noise, in step order. Throws
// std::invalid_argument for an unknown sampler or malformed sigmas, std::runtime_error when the
// denoiser returns the wrong size, and Aborted. `flow` runs the flow-matching forms of the samplers
// that add noise (euler_a, dpm++2s_a, lcm, res_multistep): there the latent is a mix, not a sum,
// of signal and noise, so re-noising also scales the signal down.
std::vector<float> sample(const std::string& sampler, const Denoiser& denoise,
                          std::vector<float> x, const std::vector<float>& sigmas, Rng& rng,
                          const NoiseSchedule& schedule, const SamplerHooks& hooks,
                          bool flow = false);

// euler_a, euler, heun, dpm2, dpm++2s_a, dpm++2m, lcm, ddim, lms, ipndm, ipndm_v, plms,
// ddim_trailing, tcd, res_multistep
const std::vector<std::string>& samplerNames();

// The samplers that run flow-matching models: those that need nothing but the sigmas, and those
// with a flow form (see `flow` above).
const std::vector<std::string>& flowSamplerNames();

}  // namespace sdnode
