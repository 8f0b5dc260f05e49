// The SD 1.x / 2.x / XL training noise schedule and the sigma sequences samplers walk down.
#pragma once

#include <string>
#include <vector>

namespace sdnode {

// The 1000 training noise levels: betas are "scaled linear" (squares of a linspace between
// sqrt(0.00085) and sqrt(0.012)), alphas_cumprod their running product of (1 - beta), and
// sigma_t = sqrt((1 - alphas_cumprod_t) / alphas_cumprod_t).
class NoiseSchedule {
 public:
  static constexpr int kTimesteps = 1000;

  NoiseSchedule();
  float sigmaMin() const { return sigmas_.front(); }
  float sigmaMax() const { return sigmas_.back(); }
  // Continuous timestep in [0, 999] for a sigma, linear in log-sigma between the two training
  // sigmas around it (k-diffusion's sigma_to_t); sigmas outside the table clamp to its ends.
  float sigmaToT(float sigma) const;
  // Inverse of sigmaToT; t is clamped to [0, 999].
  float tToSigma(float t) const;
  // The training sigma at integer timestep t in [0, 999].
  float sigmaAt(int t) const;

 private:
  std::vector<float> sigmas_;     // increasing with t
  std::vector<float> logSigmas_;
};

// steps + 1 decreasing sigmas ending in 0. Schedulers: "discrete" (timesteps evenly spaced
// from 999 to 0), "karras" (rho = 7), "exponential" (evenly spaced in log sigma), "lcm" (the LCM
// distillation grid), "simple" (DDIM's trailing spacing: every (1000 / steps)-th timestep from 999),
// "beta" and "smoothstep" (timestep_spacing.h; beta may give fewer than `steps`).
// Throws std::invalid_argument for an unknown scheduler or steps < 1.
std::vector<float> makeSigmas(const NoiseSchedule& schedule, const std::string& scheduler,
                              int steps);

const std::vector<std::string>& schedulerNames();

}  // namespace sdnode
