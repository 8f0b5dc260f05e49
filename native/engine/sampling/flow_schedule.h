// Noise levels of flow-matching models (FLUX.1, SD3): x = (1 - sigma) * x0 + sigma * noise, sigma
// in [0, 1]. Each training timestep t in [0, 999] maps to sigma through the family's time shift.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sdnode {

enum class FlowShiftKind {
  Snr,   // SD3: sigma = shift * u / (1 + (shift - 1) * u)
  Flux,  // FLUX.1: sigma = e^shift / (e^shift + 1/u - 1), shift as mu
};

struct FlowSchedule {
  FlowShiftKind kind = FlowShiftKind::Snr;
  float shift = 3.0f;
  // The sigma of training timestep t (u = (t + 1) / 1000).
  float tToSigma(float t) const;
};

// steps + 1 decreasing sigmas ending in 0. Schedulers: "flux" (FLUX.1's own: evenly spaced u from
// 1, shifted by mu from the latent's size in cells, latentCells), "discrete", "simple",
// "sgm_uniform", "karras", "exponential", "beta", "smoothstep" (over the schedule's timesteps;
// beta may give fewer than `steps`, see timestep_spacing.h). Throws
// std::invalid_argument for an unknown scheduler or steps < 1.
std::vector<float> makeFlowSigmas(const FlowSchedule& schedule, const std::string& scheduler, int steps, int64_t latentCells);

// FLUX.1's mu for an image of `latentCells` latent cells: 0.5 at 256, 1.15 at 4096, linear between.
float fluxMu(int64_t latentCells);

const std::vector<std::string>& flowSchedulerNames();

}  // namespace sdnode
