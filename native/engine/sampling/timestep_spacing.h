// Timestep spacings that both the UNet and the flow-model schedules map through their own
// t -> sigma: they pick which of the 1000 training timesteps a run of `steps` visits.
#pragma once

#include <vector>

namespace sdnode {

// "beta" (Lee et al., "Beta Sampling is All You Need"): timesteps at the quantiles of a
// Beta(0.6, 0.6) distribution, denser at both ends, rounded to whole timesteps; a timestep that
// rounds onto the previous one is dropped, so a long run may visit fewer than `steps`.
std::vector<float> betaTimesteps(int steps);

// "smoothstep": the evenly spaced fractions u = 1 - i / steps through 3u^2 - 2u^3, rounded to whole
// timesteps (close to beta, in closed form).
std::vector<float> smoothstepTimesteps(int steps);

// The regularised incomplete beta function I_x(a, b) (the Beta distribution's CDF), for x in [0, 1].
double betaCdf(double x, double a, double b);

}  // namespace sdnode
