// AUTOMATIC1111's hires fix: what the second pass runs on and how its schedule is cut.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "resample.h"
#include "schedule.h"
#include "sdnode.h"

namespace sdnode {

struct HiresPlan {
  int64_t width = 0;  // latent cells of the second pass
  int64_t height = 0;
  int64_t upscaleWidth = 0;  // latent cells the first pass is resized to, before the centre crop
  int64_t upscaleHeight = 0;
  bool inImageSpace = false;  // lanczos, esrgan: decode, resize the image, encode again
  std::string esrganPath;     // esrgan: the upscaler run on the decoded image before the resize
  std::function<bool()> aborted;  // polled between the upscaler's tiles
  ResampleFilter filter = ResampleFilter::Bilinear;
  std::vector<float> sigmas;  // the second pass's part of its schedule
};

// Throws std::invalid_argument for an unknown upscaler.
HiresPlan planHires(const HiresFix& hires, int vaeScale, int requestSteps, const std::string& scheduler,
                    const NoiseSchedule& schedule);

// Whether `name` is one of HiresFix::upscaler's values.
bool isHiresUpscaler(const std::string& name);

// The centre of planes [count, height, width] cut to cropWidth x cropHeight, as A1111 truncates the
// upscaled latent (the odd cell goes to the right and bottom).
std::vector<float> cropCentre(const std::vector<float>& planes, int64_t count, int64_t width, int64_t height,
                              int64_t cropWidth, int64_t cropHeight);

}  // namespace sdnode
