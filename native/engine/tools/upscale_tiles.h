// Image upscaling tile by tile: the network sees square tiles of the input that overlap their
// neighbours; their outputs are blended with smootherstep weights over the shared band, so the
// compute buffers are those of one tile and the accumulator holds one row of tiles, whatever the
// image's size.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace sdnode {

// planes: [3, h, w] in [0, 1] -> [3, h*scale, w*scale]
using TileNetwork = std::function<std::vector<float>(const std::vector<float>& planes, int64_t w, int64_t h)>;

struct TileLayout {
  int64_t scale = 4;
  // Tiles start and end on multiples of this (the pixel-unshuffle factor of x2plus-style models);
  // the image is padded to it by repeating its last row and column, and the output cropped back.
  int64_t multiple = 1;
  int64_t tile = 128;
  int64_t overlap = 16;
};

// rgb: interleaved bytes, rows top first -> interleaved bytes at `scale` times the size; values
// clamped to [0, 1] and rounded to bytes. `onTile(done, total)` after each tile; `aborted` is
// polled before each tile.
std::vector<uint8_t> upscaleInTiles(const std::vector<uint8_t>& rgb, int64_t width, int64_t height, const TileLayout& layout,
                                    const TileNetwork& network, const std::function<void(int, int)>& onTile,
                                    const std::function<bool()>& aborted);

}  // namespace sdnode
