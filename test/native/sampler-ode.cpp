// Runs the engine's samplers on ODEs with known solutions and prints, per ODE, sampler, grid and
// step count, the largest error of the result (one JSON object per line).
// test/samplers-ode.test.ts compiles it against native/engine and checks how the error shrinks
// as the steps double. Usage: sampler-ode sampler[,sampler…]
//
// The samplers integrate dx/dsigma = (x - D(x, sigma)) / sigma from the top sigma down, so an ODE
// is given by its denoiser D and its exact solution.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "rng.h"
#include "samplers.h"
#include "schedule.h"

namespace {

struct Ode {
  const char* name;
  // The exact x(sigma) of component j, which starts at x(top).
  std::function<double(size_t j, double sigma)> exact;
  sdnode::Denoiser denoise;
};

constexpr size_t kComponents = 3;

// One Gaussian per component, N(mu, s^2): the exact denoiser is linear,
// D = mu + s^2 / (s^2 + sigma^2) * (x - mu), and x(sigma) = mu + n * sqrt(s^2 + sigma^2). Like
// real images under the SD schedule it is almost a straight line at the top and bends near s.
Ode gaussianOde() {
  struct Component {
    double mu, s, n;
  };
  static const Component c[kComponents] = {{0.3, 0.6, 1.1}, {-0.5, 1.0, -0.7}, {1.2, 0.8, 0.4}};
  return {"gaussian",
          [](size_t j, double sigma) { return c[j].mu + c[j].n * std::sqrt(c[j].s * c[j].s + sigma * sigma); },
          [](const std::vector<float>& x, float sigma, int) {
            std::vector<float> out(x.size());
            for (size_t j = 0; j < x.size(); ++j) {
              const double shrink = c[j].s * c[j].s / (c[j].s * c[j].s + static_cast<double>(sigma) * sigma);
              out[j] = static_cast<float>(c[j].mu + shrink * (x[j] - c[j].mu));
            }
            return out;
          }};
}

// dx/dsigma = lambda(sigma) * x with lambda = -5 u^4 / top and u = (top - sigma) / top, so
// x = x(top) * exp(u^5). lambda and its first three derivatives vanish at the top, so the
// low-order start of a multistep method costs no more than its full-order steps and the error
// shows the order of the full-order steps.
Ode flatStartOde(double top) {
  static const double start[kComponents] = {1.0, -0.6, 0.3};
  return {"flat-start",
          [top](size_t j, double sigma) { return start[j] * std::exp(std::pow((top - sigma) / top, 5)); },
          [top](const std::vector<float>& x, float sigma, int) {
            const double u = (top - sigma) / top;
            const double lambda = -5 * std::pow(u, 4) / top;
            std::vector<float> out(x.size());
            for (size_t j = 0; j < x.size(); ++j) out[j] = static_cast<float>(x[j] - sigma * lambda * x[j]);
            return out;
          }};
}

// steps + 1 sigmas from top down to bottom, evenly spaced in sigma^(1/rho) (rho 1: evenly in
// sigma; rho 7: as the karras schedule), the last replaced by 0 (which DDIM-family samplers read
// as the first training level, the bottom they get here).
std::vector<float> grid(double top, double bottom, double rho, int steps) {
  std::vector<float> sigmas;
  const double a = std::pow(top, 1 / rho), b = std::pow(bottom, 1 / rho);
  for (int i = 0; i <= steps; ++i) sigmas.push_back(static_cast<float>(std::pow(a + (b - a) * i / steps, rho)));
  sigmas.back() = 0;
  return sigmas;
}

bool endsInDdimScale(const std::string& sampler) { return sampler == "ddim" || sampler == "plms"; }

double runError(const Ode& ode, const std::string& sampler, const std::vector<float>& sigmas) {
  const sdnode::NoiseSchedule schedule;
  sdnode::PhiloxRng rng(1);
  std::vector<float> x;
  for (size_t j = 0; j < kComponents; ++j) x.push_back(static_cast<float>(ode.exact(j, sigmas[0])));
  const std::vector<float> out = sdnode::sample(sampler, ode.denoise, x, sigmas, rng, schedule, {});
  // DDIM-family samplers stop at the first training level and return the latent in DDIM scale.
  const double last = schedule.sigmaAt(0);
  double worst = 0;
  for (size_t j = 0; j < out.size(); ++j) {
    const double exact = endsInDdimScale(sampler) ? ode.exact(j, last) / std::sqrt(1 + last * last) : ode.exact(j, 0);
    worst = std::fmax(worst, std::fabs(out[j] - exact));
  }
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: sampler-ode sampler[,sampler...]\n");
    return 2;
  }
  const sdnode::NoiseSchedule schedule;
  const double top = schedule.sigmaMax();
  const Ode odes[] = {gaussianOde(), flatStartOde(top)};
  struct Grid {
    const char* name;
    double rho;
  };
  const Grid grids[] = {{"even", 1}, {"karras", 7}};
  std::stringstream list(argv[1]);
  std::string sampler;
  while (std::getline(list, sampler, ',')) {
    const double bottom = endsInDdimScale(sampler) ? schedule.sigmaAt(0) : 0;
    for (const Ode& ode : odes) {
      for (const Grid& g : grids) {
        for (int steps = 8; steps <= 128; steps *= 2) {
          const double error = runError(ode, sampler, grid(top, bottom, g.rho, steps));
          std::printf("{\"ode\":\"%s\",\"sampler\":\"%s\",\"grid\":\"%s\",\"steps\":%d,\"error\":%.9g}\n", ode.name,
                      sampler.c_str(), g.name, steps, error);
        }
      }
    }
  }
  return 0;
}
