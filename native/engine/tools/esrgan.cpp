// ESRGAN-family upscalers. RRDBNet: conv_first, a trunk of RRDB blocks (three residual dense
// blocks of five 3x3 convolutions each, growth channels concatenated, leaky ReLU 0.2, residuals
// scaled by 0.2), conv_body added back, one nearest x2 upsampling + conv per conv_upN, conv_hr,
// conv_last. Real-ESRGAN's x2plus (x1) feeds it the input pixel-unshuffled by 2 (4), so the first
// convolution takes 12 (48) channels. SRVGGNetCompact: body.0 conv, then PReLU / conv pairs, the last
// conv's 3*s*s channels pixel-shuffled and added to the nearest-upsampled input.
#include <algorithm>
#include <cmath>

#include "backend.h"
#include "checkpoint.h"
#include "clip.h"
#include "nn.h"
#include "sdnode.h"
#include "system_info.h"
#include "upscale_tiles.h"

namespace sdnode {

namespace {

bool isUpscalerWeight(const CheckpointTensor& t) { return isWeightType(t.type) && t.elements() > 0; }

constexpr float kLeakySlope = 0.2f;
constexpr float kResidualScale = 0.2f;

// Where each layer's weights live, in the naming the file uses.
struct RrdbNames {
  std::string convFirst, convBody, convHr, convLast;
  std::vector<std::string> convUp;
  bool old = false;
  std::string rdbConv(int block, int rdb, int conv) const {
    const std::string b = std::to_string(block), r = std::to_string(rdb), c = std::to_string(conv);
    return old ? "model.1.sub." + b + ".RDB" + r + ".conv" + c + ".0" : "body." + b + ".rdb" + r + ".conv" + c;
  }
};

struct Architecture {
  std::string kind;  // rrdbnet | srvggnet
  RrdbNames names;
  int64_t inChannels = 3, features = 64, growth = 32, outChannels = 3;
  int64_t unshuffle = 1;  // rrdbnet: pixel-unshuffle factor of the input
  int64_t shuffle = 1;    // srvggnet: pixel-shuffle factor of the output
  int blocks = 0;
  int64_t scale() const { return kind == "rrdbnet" ? (int64_t{1} << names.convUp.size()) / unshuffle : shuffle; }
};

int64_t squareRootOf(int64_t n, const std::string& what, const std::string& path) {
  const int64_t r = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(n))));
  if (r < 1 || r * r != n) throw Error(ErrorCode::ModelFormat, path + ": " + what + " " + std::to_string(n) + " is not 3 x a square");
  return r;
}

// Old ESRGAN files are one nn.Sequential: model.0 conv_first, model.1 the trunk (RRDBs, then
// conv_body as its last entry), then per upsampling [Upsample, conv, LeakyReLU], conv_hr, LeakyReLU,
// conv_last: the convolutions after model.1 are the up convs, then conv_hr and conv_last.
RrdbNames oldNames(const Checkpoint& file, int blocks) {
  std::vector<int> after;
  for (const auto& [name, t] : file.tensors) {
    if (name.rfind("model.", 0) != 0 || name.size() < 14 || name.compare(name.size() - 7, 7, ".weight") != 0) continue;
    const std::string index = name.substr(6, name.size() - 13);
    if (index.find_first_not_of("0123456789") != std::string::npos) continue;
    if (const int i = std::stoi(index); i > 1) after.push_back(i);
  }
  std::sort(after.begin(), after.end());
  if (after.size() < 2) throw Error(ErrorCode::ModelFormat, file.path + ": an old-layout ESRGAN needs model.N convolutions after the trunk");
  RrdbNames n;
  n.old = true;
  n.convFirst = "model.0";
  n.convBody = "model.1.sub." + std::to_string(blocks);
  for (size_t i = 0; i + 2 < after.size(); i++) n.convUp.push_back("model." + std::to_string(after[i]));
  n.convHr = "model." + std::to_string(after[after.size() - 2]);
  n.convLast = "model." + std::to_string(after.back());
  return n;
}

Architecture readArchitecture(const Weights& w, const Checkpoint& file) {
  Architecture a;
  const std::string& path = file.path;
  if (w.has("conv_first.weight") || w.has("model.0.weight")) {
    a.kind = "rrdbnet";
    const bool old = !w.has("conv_first.weight");
    a.blocks = old ? countIndexed(w, "model.1.sub.", ".RDB1.conv1.0.weight") : countIndexed(w, "body.", ".rdb1.conv1.weight");
    if (a.blocks == 0) throw Error(ErrorCode::ModelFormat, path + ": the RRDBNet has no RRDB blocks (" + (old ? "model.1.sub.0.RDB1" : "body.0.rdb1") + ")");
    if (old) {
      a.names = oldNames(file, a.blocks);
    } else {
      a.names = {"conv_first", "conv_body", "conv_hr", "conv_last", {}, false};
      for (int u = 1; w.has("conv_up" + std::to_string(u) + ".weight"); u++) a.names.convUp.push_back("conv_up" + std::to_string(u));
    }
    const auto& first = w.shape(a.names.convFirst + ".weight");
    if (first.size() != 4) throw Error(ErrorCode::ModelFormat, path + ": " + a.names.convFirst + ".weight must be a 4-d convolution");
    a.features = first[0];
    a.inChannels = first[1];
    a.unshuffle = a.inChannels % 3 == 0 ? squareRootOf(a.inChannels / 3, "input channels / 3:", path) : 0;
    if (a.unshuffle == 0) throw Error(ErrorCode::ModelUnsupported, path + ": an RRDBNet taking " + std::to_string(a.inChannels) + " input channels is not an RGB upscaler");
    a.growth = w.shape(a.names.rdbConv(0, 1, 1) + ".weight").at(0);
    a.outChannels = w.shape(a.names.convLast + ".weight").at(0);
    if ((int64_t{1} << a.names.convUp.size()) % a.unshuffle != 0) {
      throw Error(ErrorCode::ModelUnsupported, path + ": " + std::to_string(a.names.convUp.size()) + " upsamplings after a pixel-unshuffle by " +
                                                   std::to_string(a.unshuffle) + " make no whole scale");
    }
  } else if (w.has("body.0.weight") && w.has("body.1.weight") && w.shape("body.1.weight").size() == 1) {
    a.kind = "srvggnet";
    int last = 0;
    while (w.has("body." + std::to_string(last + 2) + ".weight")) last += 2;
    a.blocks = last / 2 - 1;
    const auto& first = w.shape("body.0.weight");
    a.features = first.at(0);
    a.inChannels = first.at(1);
    a.outChannels = w.shape("body." + std::to_string(last) + ".weight").at(0);
    if (a.outChannels % 3 != 0) throw Error(ErrorCode::ModelUnsupported, path + ": an SRVGGNet with " + std::to_string(a.outChannels) + " output channels is not an RGB upscaler");
    a.shuffle = squareRootOf(a.outChannels / 3, "output channels / 3:", path);
  } else {
    throw Error(ErrorCode::ModelUnsupported, path + ": not an ESRGAN-family upscaler (expected conv_first.weight and body.N.rdbK "
                                                    "(RRDBNet), model.0.weight and model.1.sub.N (old ESRGAN) or body.N (SRVGGNetCompact))");
  }
  if (a.inChannels != 3 * a.unshuffle * a.unshuffle || (a.kind == "rrdbnet" && a.outChannels != 3)) {
    throw Error(ErrorCode::ModelUnsupported, path + ": an upscaler from " + std::to_string(a.inChannels) + " to " + std::to_string(a.outChannels) +
                                                 " channels is not an RGB upscaler");
  }
  if (a.kind == "srvggnet" && a.blocks < 0) throw Error(ErrorCode::ModelFormat, path + ": the SRVGGNet has no body convolutions");
  return a;
}

ggml_tensor* leaky(ggml_context* ctx, ggml_tensor* x) { return ggml_leaky_relu(ctx, x, kLeakySlope, false); }

class EsrganUpscaler : public Upscaler {
 public:
  explicit EsrganUpscaler(const UpscalerParams& params) : file_(openCheckpoint(params.path)) {
    const int threads = params.threads > 0 ? params.threads : physicalCores();
    backend_ = std::make_unique<Backend>(params.backend, threads);
    weights_ = std::make_unique<Weights>(file_, GGML_TYPE_COUNT, threads, backend_->handle(), isUpscalerWeight);
    arch_ = readArchitecture(*weights_, file_);
    runner_ = std::make_unique<GraphRunner>(*backend_);
    // Every weight is checked against the architecture now, not at the first image.
    GraphBuild g;
    build(g, nullptr, 2 * arch_.unshuffle, 2 * arch_.unshuffle);
    info_.architecture = arch_.kind;
    info_.scale = static_cast<int>(arch_.scale());
    info_.blocks = arch_.blocks;
    info_.features = static_cast<int>(arch_.features);
    info_.weightBytes = weights_->bytes();
    info_.backend = backend_->name();
    if (info_.scale < 1) throw Error(ErrorCode::ModelUnsupported, file_.path + ": the upscaler's scale is below 1");
  }

  const UpscalerInfo& info() const override { return info_; }

  std::vector<uint8_t> upscale(const std::vector<uint8_t>& rgb, int width, int height, const UpscaleOptions& options) override {
    if (width < 1 || height < 1 || rgb.size() != static_cast<size_t>(width) * height * 3) {
      throw Error(ErrorCode::InvalidArgument, "upscale takes width x height x 3 bytes of RGB");
    }
    if (options.tile < 8 || options.overlap < 0 || options.overlap >= options.tile) {
      throw Error(ErrorCode::InvalidArgument, "the upscale tile must be at least 8 pixels and the overlap below it");
    }
    struct AbortScope {
      Backend& backend;
      ~AbortScope() { backend.setAbortCheck(nullptr); }
    } scope{*backend_};
    if (options.aborted) backend_->setAbortCheck(options.aborted);
    TileLayout layout;
    layout.scale = arch_.scale();
    layout.multiple = arch_.unshuffle;
    layout.tile = options.tile;
    layout.overlap = options.overlap;
    return upscaleInTiles(rgb, width, height, layout, [&](const std::vector<float>& planes, int64_t w, int64_t h) { return network(planes, w, h); },
                          options.onTile, options.aborted);
  }

 private:
  Checkpoint file_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Weights> weights_;
  std::unique_ptr<GraphRunner> runner_;
  Architecture arch_;
  UpscalerInfo info_;

  // planes: [3, h, w] -> [3, h*scale, w*scale]
  std::vector<float> network(const std::vector<float>& planes, int64_t w, int64_t h) {
    const int64_t r = arch_.unshuffle;
    std::vector<float> input = r == 1 ? planes : pixelUnshuffle(planes, w, h, r);
    std::vector<float> out = runner_->run([&](GraphBuild& g) { return build(g, input.data(), w / r, h / r); });
    if (arch_.kind == "rrdbnet") return out;
    return addNearest(pixelShuffle(out, w, h, arch_.shuffle), planes, w, h, arch_.shuffle);
  }

  // [C, h, w] -> [C*r*r, h/r, w/r]: channel c*r*r + i*r + j holds pixel (y*r + i, x*r + j) of c.
  static std::vector<float> pixelUnshuffle(const std::vector<float>& in, int64_t w, int64_t h, int64_t r) {
    const int64_t C = static_cast<int64_t>(in.size()) / (w * h), ow = w / r, oh = h / r;
    std::vector<float> out(in.size());
    for (int64_t c = 0; c < C; c++)
      for (int64_t i = 0; i < r; i++)
        for (int64_t j = 0; j < r; j++)
          for (int64_t y = 0; y < oh; y++)
            for (int64_t x = 0; x < ow; x++) out[(((c * r + i) * r + j) * oh + y) * ow + x] = in[(c * h + y * r + i) * w + x * r + j];
    return out;
  }

  // [3*r*r, h, w] -> [3, h*r, w*r], the inverse of pixelUnshuffle.
  static std::vector<float> pixelShuffle(const std::vector<float>& in, int64_t w, int64_t h, int64_t r) {
    std::vector<float> out(in.size());
    const int64_t ow = w * r, oh = h * r;
    for (int64_t c = 0; c < 3; c++)
      for (int64_t i = 0; i < r; i++)
        for (int64_t j = 0; j < r; j++)
          for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++) out[(c * oh + y * r + i) * ow + x * r + j] = in[(((c * r + i) * r + j) * h + y) * w + x];
    return out;
  }

  static std::vector<float> addNearest(std::vector<float> out, const std::vector<float>& in, int64_t w, int64_t h, int64_t r) {
    const int64_t ow = w * r, oh = h * r;
    for (int64_t c = 0; c < 3; c++)
      for (int64_t y = 0; y < oh; y++)
        for (int64_t x = 0; x < ow; x++) out[(c * oh + y) * ow + x] += in[(c * h + y / r) * w + x / r];
    return out;
  }

  // x: [w, h, channels, 1] -> [w*2^ups, h*2^ups, 3, 1] (rrdbnet) or [w, h, 3*s*s, 1] (srvggnet)
  ggml_tensor* build(GraphBuild& g, const float* input, int64_t w, int64_t h) {
    Net n{g.ctx(), *weights_, false, &g};
    ggml_tensor* x = g.input(GGML_TYPE_F32, {w, h, arch_.inChannels, 1}, input);
    return arch_.kind == "rrdbnet" ? rrdbnet(n, x) : srvggnet(n, x);
  }

  ggml_tensor* rrdbnet(Net& n, ggml_tensor* x) {
    const Architecture& a = arch_;
    const RrdbNames& names = a.names;
    const int64_t F = a.features;
    ggml_tensor* feat = conv2d(n, x, names.convFirst, a.inChannels, F, 3, 1, 1);
    ggml_tensor* trunk = feat;
    for (int b = 0; b < a.blocks; b++) {
      ggml_tensor* block = trunk;
      for (int k = 1; k <= 3; k++) block = residualDenseBlock(n, block, b, k);
      trunk = ggml_add(n.ctx, ggml_scale(n.ctx, block, kResidualScale), trunk);
    }
    feat = ggml_add(n.ctx, feat, conv2d(n, trunk, names.convBody, F, F, 3, 1, 1));
    for (const std::string& up : names.convUp) {
      feat = leaky(n.ctx, conv2d(n, ggml_upscale(n.ctx, feat, 2, GGML_SCALE_MODE_NEAREST), up, F, F, 3, 1, 1));
    }
    feat = leaky(n.ctx, conv2d(n, feat, names.convHr, F, F, 3, 1, 1));
    return conv2d(n, feat, names.convLast, F, a.outChannels, 3, 1, 1);
  }

  // x: [w, h, F, 1]; five convolutions, each seeing the input and every earlier output.
  ggml_tensor* residualDenseBlock(Net& n, ggml_tensor* x, int block, int rdb) {
    const int64_t F = arch_.features, G = arch_.growth;
    ggml_tensor* dense = x;
    for (int c = 1; c <= 4; c++) {
      ggml_tensor* y = leaky(n.ctx, conv2d(n, dense, arch_.names.rdbConv(block, rdb, c), F + (c - 1) * G, G, 3, 1, 1));
      dense = ggml_concat(n.ctx, dense, y, 2);
    }
    ggml_tensor* last = conv2d(n, dense, arch_.names.rdbConv(block, rdb, 5), F + 4 * G, F, 3, 1, 1);
    return ggml_add(n.ctx, ggml_scale(n.ctx, last, kResidualScale), x);
  }

  ggml_tensor* srvggnet(Net& n, ggml_tensor* x) {
    const int64_t F = arch_.features;
    int64_t channels = arch_.inChannels;
    for (int i = 0; i <= arch_.blocks; i++) {
      const std::string conv = "body." + std::to_string(2 * i), prelu = "body." + std::to_string(2 * i + 1) + ".weight";
      x = conv2d(n, x, conv, channels, F, 3, 1, 1);
      channels = F;
      // PReLU: x for x > 0, slope[c] * x below.
      ggml_tensor* slope = ggml_reshape_4d(n.ctx, n.w.get(prelu, {F}), 1, 1, F, 1);
      ggml_tensor* positive = ggml_relu(n.ctx, x);
      x = ggml_add(n.ctx, positive, ggml_mul(n.ctx, ggml_sub(n.ctx, x, positive), slope));
    }
    return conv2d(n, x, "body." + std::to_string(2 * arch_.blocks + 2), F, arch_.outChannels, 3, 1, 1);
  }
};

}  // namespace

std::unique_ptr<Upscaler> Upscaler::load(const UpscalerParams& params) { return std::make_unique<EsrganUpscaler>(params); }

}  // namespace sdnode
