#include "timestep_spacing.h"

#include <cmath>

namespace sdnode {

namespace {

constexpr int kTimesteps = 1000;
constexpr double kBetaShape = 0.6;

// The continued fraction of I_x(a, b), evaluated with the modified Lentz method; converges fast
// for x < (a + 1) / (a + b + 2).
double incompleteBetaFraction(double x, double a, double b) {
  constexpr double kTiny = 1e-300, kTolerance = 1e-15;
  auto guard = [](double v) { return std::fabs(v) < kTiny ? kTiny : v; };
  double c = 1.0, d = 1.0 / guard(1.0 - (a + b) * x / (a + 1.0));
  double f = d;
  for (int m = 1; m <= 300; m++) {
    const double even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
    d = 1.0 / guard(1.0 + even * d);
    c = guard(1.0 + even / c);
    f *= c * d;
    const double odd = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
    d = 1.0 / guard(1.0 + odd * d);
    c = guard(1.0 + odd / c);
    const double delta = c * d;
    f *= delta;
    if (std::fabs(delta - 1.0) < kTolerance) break;
  }
  const double logFront = a * std::log(x) + b * std::log1p(-x) - (std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b));
  return std::exp(logFront) * f / a;
}

// The Beta(a, b) quantile of u, by bisection on the CDF (monotone, so this cannot diverge).
double betaQuantile(double u, double a, double b) {
  double lo = 0.0, hi = 1.0;
  for (int i = 0; i < 100; i++) {
    const double mid = 0.5 * (lo + hi);
    (betaCdf(mid, a, b) < u ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

}  // namespace

double betaCdf(double x, double a, double b) {
  if (x <= 0.0) return 0.0;
  if (x >= 1.0) return 1.0;
  if (x < (a + 1.0) / (a + b + 2.0)) return incompleteBetaFraction(x, a, b);
  return 1.0 - incompleteBetaFraction(1.0 - x, b, a);
}

std::vector<float> betaTimesteps(int steps) {
  const int tMax = kTimesteps - 1;
  if (steps == 1) return {static_cast<float>(tMax)};
  std::vector<float> out;
  long last = -1;
  for (int i = 0; i < steps; i++) {
    const double u = 1.0 - static_cast<double>(i) / steps;
    const long t = std::lround(betaQuantile(u, kBetaShape, kBetaShape) * tMax);
    if (t == last) continue;
    out.push_back(static_cast<float>(t));
    last = t;
  }
  return out;
}

std::vector<float> smoothstepTimesteps(int steps) {
  const int tMax = kTimesteps - 1;
  if (steps == 1) return {static_cast<float>(tMax)};
  std::vector<float> out;
  for (int i = 0; i < steps; i++) {
    const float u = 1.0f - static_cast<float>(i) / static_cast<float>(steps);
    out.push_back(std::round(u * u * (3.0f - 2.0f * u) * static_cast<float>(tMax)));
  }
  return out;
}

}  // namespace sdnode
