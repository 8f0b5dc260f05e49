#include "flow_schedule.h"

#include <cmath>
#include <stdexcept>

#include "timestep_spacing.h"

namespace sdnode {

namespace {

constexpr int kTimesteps = 1000;

float fluxTimeShift(float mu, float u) { return std::exp(mu) / (std::exp(mu) + (1.0f / u - 1.0f)); }

}  // namespace

float FlowSchedule::tToSigma(float t) const {
  const float u = (t + 1.0f) / kTimesteps;
  if (kind == FlowShiftKind::Flux) return fluxTimeShift(shift, u);
  if (shift == 1.0f) return u;
  return shift * u / (1.0f + (shift - 1.0f) * u);
}

float fluxMu(int64_t latentCells) {
  const float baseShift = 0.5f, maxShift = 1.15f, baseCells = 256.0f, maxCells = 4096.0f;
  const float m = (maxShift - baseShift) / (maxCells - baseCells);
  return static_cast<float>(latentCells) * m + (baseShift - m * baseCells);
}

std::vector<float> makeFlowSigmas(const FlowSchedule& schedule, const std::string& scheduler, int steps, int64_t latentCells) {
  if (steps < 1) throw std::invalid_argument("steps must be at least 1");
  const float tMax = kTimesteps - 1;
  std::vector<float> sigmas;
  if (scheduler == "flux") {
    const float mu = fluxMu(latentCells);
    for (int i = 0; i < steps; i++) sigmas.push_back(fluxTimeShift(mu, 1.0f - static_cast<float>(i) / static_cast<float>(steps)));
  } else if (scheduler == "discrete") {
    const float step = steps > 1 ? tMax / static_cast<float>(steps - 1) : 0.0f;
    for (int i = 0; i < steps; i++) sigmas.push_back(schedule.tToSigma(tMax - step * static_cast<float>(i)));
  } else if (scheduler == "simple") {
    const float factor = static_cast<float>(kTimesteps) / static_cast<float>(steps);
    for (int i = 0; i < steps; i++) {
      const int t = std::max(0, kTimesteps - 1 - static_cast<int>(static_cast<float>(i) * factor));
      sigmas.push_back(schedule.tToSigma(static_cast<float>(t)));
    }
  } else if (scheduler == "sgm_uniform") {
    for (int i = 0; i < steps; i++) sigmas.push_back(schedule.tToSigma(tMax - tMax * static_cast<float>(i) / static_cast<float>(steps)));
  } else if (scheduler == "karras" || scheduler == "exponential") {
    const float sigmaMin = std::max(schedule.tToSigma(0), 1e-6f), sigmaMax = schedule.tToSigma(tMax);
    const float span = steps > 1 ? static_cast<float>(steps - 1) : 1.0f;
    for (int i = 0; i < steps; i++) {
      const float f = static_cast<float>(i) / span;
      if (scheduler == "karras") {
        const float rho = 7.0f, lo = std::pow(sigmaMin, 1.0f / rho), hi = std::pow(sigmaMax, 1.0f / rho);
        sigmas.push_back(std::pow(hi + f * (lo - hi), rho));
      } else {
        sigmas.push_back(std::exp(std::log(sigmaMax) - f * (std::log(sigmaMax) - std::log(sigmaMin))));
      }
    }
  } else if (scheduler == "beta" || scheduler == "smoothstep") {
    for (float t : scheduler == "beta" ? betaTimesteps(steps) : smoothstepTimesteps(steps)) sigmas.push_back(schedule.tToSigma(t));
  } else {
    throw std::invalid_argument("scheduler '" + scheduler + "' is not one of the flow models' schedulers (flux, discrete, simple, "
                                "sgm_uniform, karras, exponential, beta, smoothstep)");
  }
  sigmas.push_back(0.0f);
  return sigmas;
}

const std::vector<std::string>& flowSchedulerNames() {
  static const std::vector<std::string> names = {"flux", "discrete", "simple", "sgm_uniform", "karras", "exponential", "beta", "smoothstep"};
  return names;
}

}  // namespace sdnode
