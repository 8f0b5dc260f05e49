#include "taesd.h"

#include <cctype>

#include "nn.h"
#include "pixels.h"
#include "sdnode.h"

namespace sdnode {

namespace {

const std::string kDiffusersPrefix = "decoder.layers.";
// No real decoder comes near this many layers (TAESD has 19); it bounds the walk over a hostile file.
constexpr int kMaxLayers = 256;

bool startsWith(const std::string& text, const std::string& prefix) { return text.compare(0, prefix.size(), prefix) == 0; }

// The layer index a tensor name starts with after `prefix`, or -1.
int layerIndex(const std::string& name, const std::string& prefix) {
  if (!startsWith(name, prefix)) return -1;
  size_t i = prefix.size();
  int index = 0;
  const size_t start = i;
  while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])) && i - start < 4) index = index * 10 + (name[i++] - '0');
  return i > start && i < name.size() && name[i] == '.' ? index : -1;
}

std::string decoderPrefix(const Checkpoint& file) {
  if (file.tensors.count(kDiffusersPrefix + "0.weight")) return kDiffusersPrefix;
  if (file.tensors.count("1.weight")) return "";
  throw Error(ErrorCode::ModelFormat, file.path + ": not a TAESD decoder (expected tensor '" + kDiffusersPrefix +
                                          "0.weight' as diffusers' AutoencoderTiny names it, or '1.weight' as taesd_decoder.safetensors does)");
}

const std::vector<int64_t>& shapeOf(const Checkpoint& file, const std::string& name) {
  auto it = file.tensors.find(name);
  if (it == file.tensors.end()) throw Error(ErrorCode::ModelFormat, file.path + ": missing tensor '" + name + "'");
  if (it->second.shape.size() != 4) {
    throw Error(ErrorCode::ModelFormat, file.path + ": tensor '" + name + "' is not a convolution kernel [out, in, kh, kw]");
  }
  return it->second.shape;
}

// Only the decoder's tensors are loaded: a diffusers file also holds the encoder.
bool isDecoderWeight(const CheckpointTensor& t) {
  return isWeightType(t.type) && t.elements() > 0 && (layerIndex(t.name, kDiffusersPrefix) >= 0 || layerIndex(t.name, "") >= 0);
}

}  // namespace

int TaesdConfig::scale() const {
  int s = 1;
  for (const TaesdLayer& layer : decoder) s *= layer.kind == TaesdLayer::Kind::Upsample ? 2 : 1;
  return s;
}

TaesdConfig readTaesdConfig(const Checkpoint& file) {
  const std::string prefix = decoderPrefix(file);
  int last = -1;
  for (const auto& [name, tensor] : file.tensors) last = std::max(last, layerIndex(name, prefix));
  if (last >= kMaxLayers) throw Error(ErrorCode::ModelFormat, file.path + ": TAESD decoder layer " + std::to_string(last) + " is beyond any known layout");
  TaesdConfig c;
  bool seenConv = false;
  for (int i = 0; i <= last; i++) {
    const std::string p = prefix + std::to_string(i);
    TaesdLayer layer;
    layer.prefix = p;
    if (file.tensors.count(p + ".conv.0.weight")) {
      const auto& shape = shapeOf(file, p + ".conv.0.weight");
      layer.kind = TaesdLayer::Kind::Block;
      layer.out = shape[0];
      layer.in = shape[1];
      layer.skip = file.tensors.count(p + ".skip.weight") > 0;
    } else if (file.tensors.count(p + ".weight")) {
      const auto& shape = shapeOf(file, p + ".weight");
      layer.kind = TaesdLayer::Kind::Conv;
      layer.out = shape[0];
      layer.in = shape[1];
      layer.kernel = static_cast<int>(shape[2]);
      // TAESD's convolutions after an upsampling have no bias, every other one has.
      layer.bias = c.decoder.empty() || c.decoder.back().kind != TaesdLayer::Kind::Upsample;
      if (!seenConv) c.latentChannels = layer.in;
      seenConv = true;
    } else if (!seenConv) {
      continue;  // taesd_decoder.safetensors' layer 0: the clamp, applied below whatever the layout
    } else {
      // The one weightless layer right after the first convolution is its ReLU; the others upsample.
      const bool afterFirstConv = c.decoder.size() == 1;
      layer.kind = afterFirstConv ? TaesdLayer::Kind::Relu : TaesdLayer::Kind::Upsample;
      layer.prefix.clear();
    }
    c.decoder.push_back(layer);
  }
  if (c.decoder.empty() || c.decoder.back().kind != TaesdLayer::Kind::Conv || c.decoder.back().out != 3) {
    throw Error(ErrorCode::ModelFormat, file.path + ": the TAESD decoder must end in a convolution to 3 (RGB) channels");
  }
  return c;
}

Taesd::Taesd(const std::string& path, Backend& backend, int threads)
    : file_(openCheckpoint(path)), config_(readTaesdConfig(file_)), runner_(backend) {
  weights_ = std::make_unique<Weights>(file_, GGML_TYPE_COUNT, threads, backend.handle(), isDecoderWeight);
  // A graph over one latent cell asks for every tensor with its expected shape: a file whose layers
  // are missing or do not connect fails here, naming the tensor.
  GraphBuild g;
  std::vector<float> latent(config_.latentChannels);
  buildDecoder(g, latent.data(), 1, 1, false);
}

ggml_tensor* Taesd::buildDecoder(GraphBuild& g, const float* latent, int64_t width, int64_t height, bool circular) {
  Net n{g.ctx(), *weights_, circular, &g};
  // x: [W, H, C, N]
  ggml_tensor* x = g.input(GGML_TYPE_F32, {width, height, config_.latentChannels, 1}, latent);
  // The clamp: tanh(x / 3) * 3 keeps wild latents in the range TAESD was trained on.
  x = ggml_scale(n.ctx, ggml_tanh(n.ctx, ggml_scale(n.ctx, x, 1.0f / 3.0f)), 3.0f);
  for (const TaesdLayer& layer : config_.decoder) {
    switch (layer.kind) {
      case TaesdLayer::Kind::Conv:
        x = conv2d(n, x, layer.prefix, layer.in, layer.out, layer.kernel, 1, layer.kernel / 2, layer.bias);
        break;
      case TaesdLayer::Kind::Block: {
        const std::string& p = layer.prefix;
        ggml_tensor* h = ggml_relu(n.ctx, conv2d(n, x, p + ".conv.0", layer.in, layer.out, 3, 1, 1));
        h = ggml_relu(n.ctx, conv2d(n, h, p + ".conv.2", layer.out, layer.out, 3, 1, 1));
        h = conv2d(n, h, p + ".conv.4", layer.out, layer.out, 3, 1, 1);
        ggml_tensor* skip = layer.skip || layer.in != layer.out ? conv2d(n, x, p + ".skip", layer.in, layer.out, 1, 1, 0, false) : x;
        x = ggml_relu(n.ctx, ggml_add(n.ctx, h, skip));
        break;
      }
      case TaesdLayer::Kind::Relu:
        x = ggml_relu(n.ctx, x);
        break;
      case TaesdLayer::Kind::Upsample:
        x = ggml_upscale(n.ctx, x, 2, GGML_SCALE_MODE_NEAREST);
        break;
    }
  }
  return x;  // [W * scale, H * scale, 3, 1], pixels in [0, 1]
}

std::vector<uint8_t> Taesd::decodeToRgb(const std::vector<float>& latent, int64_t width, int64_t height, bool circular) {
  const size_t cells = static_cast<size_t>(width) * static_cast<size_t>(height);
  if (width <= 0 || height <= 0 || latent.size() != cells * static_cast<size_t>(config_.latentChannels)) {
    throw Error(ErrorCode::Internal, "TAESD: a latent of " + std::to_string(width) + "x" + std::to_string(height) + " holds " +
                                         std::to_string(cells * config_.latentChannels) + " values, got " + std::to_string(latent.size()));
  }
  const std::vector<float> planes =
      runner_.run([&](GraphBuild& g) { return buildDecoder(g, latent.data(), width, height, circular); });
  const size_t plane = planes.size() / 3;
  std::vector<uint8_t> rgb(plane * 3);
  for (size_t p = 0; p < plane; p++) {
    for (size_t c = 0; c < 3; c++) rgb[p * 3 + c] = unitToByte(planes[c * plane + p]);
  }
  return rgb;
}

}  // namespace sdnode
