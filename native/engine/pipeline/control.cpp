// ControlNet units in a generation: their networks (kept between calls that use them), their
// control images' guided hints, and the residuals they add to each UNet pass.
#include <cmath>

#include "model_impl.h"

namespace sdnode {

namespace {

// A1111's soft injection: residual i of n steers with 0.825^(n-1-i) of the unit's weight.
constexpr double kSoftInjectionBase = 0.825;

std::string familyName(const std::string& family) {
  if (family == "sd1") return "SD 1.x";
  if (family == "sd2") return "SD 2.x";
  if (family == "sdxl") return "SDXL";
  if (family == "sdxl-refiner") return "the SDXL refiner";
  return family;
}

}  // namespace

void checkControlUnits(const Request& r) { checkControlUnits(r.controlNets, r.width, r.height, r.hires ? &*r.hires : nullptr, "controlNets"); }

void checkControlUnits(const std::vector<ControlUnit>& units, int width, int height, const HiresFix* hires, const std::string& name) {
  const size_t bytes = static_cast<size_t>(width) * height * 3;
  for (size_t i = 0; i < units.size(); i++) {
    const ControlUnit& u = units[i];
    const std::string field = name + "[" + std::to_string(i) + "]";
    auto fail = [&](const std::string& what) { throw Error(ErrorCode::InvalidArgument, field + "." + what); };
    if (u.path.empty()) fail("path must name a ControlNet file");
    if (u.image.size() != bytes) {
      fail("image must hold width*height*3 = " + std::to_string(bytes) + " RGB bytes, got " + std::to_string(u.image.size()));
    }
    if (!u.hiresImage.empty()) {
      const size_t hiresBytes = hires ? static_cast<size_t>(hires->width) * hires->height * 3 : 0;
      if (u.hiresImage.size() != hiresBytes) {
        fail("hiresImage must hold the hires fix's width*height*3 = " + std::to_string(hiresBytes) + " RGB bytes (none without hires), got " +
             std::to_string(u.hiresImage.size()));
      }
    }
    if (!std::isfinite(u.strength) || u.strength < -10 || u.strength > 10) fail("strength must be between -10 and 10");
    if (!std::isfinite(u.guidanceStart) || !std::isfinite(u.guidanceEnd) || u.guidanceStart < 0 || u.guidanceEnd > 1 ||
        u.guidanceStart > u.guidanceEnd) {
      fail("guidanceStart and guidanceEnd must satisfy 0 <= guidanceStart <= guidanceEnd <= 1");
    }
    if (u.mode != "balanced" && u.mode != "prompt" && u.mode != "control") {
      fail("mode must be balanced, prompt or control, got '" + u.mode + "'");
    }
  }
}

std::vector<ControlRun> DiffusionModel::prepareControls(const std::vector<ControlUnit>& units, int width, int height) {
  std::vector<std::unique_ptr<ControlNet>> kept;
  std::vector<ControlRun> runs;
  for (const ControlUnit& unit : units) {
    ControlNet* net = nullptr;
    for (auto* pool : {&kept, &controlNets_}) {
      for (auto& candidate : *pool) {
        if (candidate && candidate->path() == unit.path) net = candidate.get();
      }
    }
    if (net == nullptr) {
      kept.push_back(std::make_unique<ControlNet>(unit.path, *backend_, file_, unet_->config(), vae_->config().latentChannels,
                                                  familyName(info_.family)));
      net = kept.back().get();
    } else {
      // Move a network kept from an earlier call into this call's set, once.
      for (auto& candidate : controlNets_) {
        if (candidate.get() == net) kept.push_back(std::move(candidate));
      }
    }
    ControlRun run;
    run.net = net;
    run.unit = &unit;
    run.hint = net->guidedHint(unit.image, width, height);
    net->releaseBuffers();
    runs.push_back(std::move(run));
  }
  // Networks this call does not use are freed; a call without units keeps them for the next.
  if (!units.empty()) controlNets_ = std::move(kept);
  return runs;
}

std::vector<ControlRun> DiffusionModel::hiresControls(const std::vector<ControlRun>& first, const Request& r) {
  std::vector<ControlRun> runs;
  if (!r.hires) return runs;
  for (const ControlRun& run : first) {
    if (run.unit->hiresImage.empty()) continue;
    ControlRun hires;
    hires.net = run.net;
    hires.unit = run.unit;
    hires.hint = run.net->guidedHint(run.unit->hiresImage, r.hires->width, r.hires->height);
    run.net->releaseBuffers();
    runs.push_back(std::move(hires));
  }
  return runs;
}

UnetControl DiffusionModel::controlResiduals(const std::vector<ControlRun>* units, double stepFraction, bool uncondPass,
                                             const std::vector<float>& latent, int64_t width, int64_t height, float t,
                                             const std::vector<float>& context, int64_t contextTokens, const std::vector<float>& added) {
  UnetControl sum;
  if (!units) return sum;
  for (const ControlRun& run : *units) {
    const ControlUnit& unit = *run.unit;
    if (stepFraction < unit.guidanceStart || stepFraction > unit.guidanceEnd) continue;
    if (uncondPass && unit.mode == "control") continue;
    UnetControl residuals = run.net->forward(latent, width, height, t, run.hint, context, contextTokens, added);
    if (sum.empty()) {
      sum.resize(residuals.size());
      for (size_t i = 0; i < residuals.size(); i++) sum[i].assign(residuals[i].size(), 0.0f);
    }
    const size_t n = residuals.size();
    for (size_t i = 0; i < n; i++) {
      const float scale = unit.mode == "balanced" ? unit.strength
                                                  : static_cast<float>(unit.strength * std::pow(kSoftInjectionBase, static_cast<double>(n - 1 - i)));
      std::vector<float>& target = sum[i];
      const std::vector<float>& residual = residuals[i];
      for (size_t j = 0; j < residual.size(); j++) target[j] += scale * residual[j];
    }
  }
  return sum;
}

}  // namespace sdnode
