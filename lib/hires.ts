// The hires fix's names and sizes as AUTOMATIC1111 defines them: its upscaler names and the engine
// mode each stands for, and how hr_scale / hr_resize_x / hr_resize_y become the second pass's size.

/** AUTOMATIC1111's names of the hires upscalers sdnode has, as its API and `parameters` text spell them. */
export const hiresUpscalerNames = [
  'Latent', 'Latent (antialiased)', 'Latent (bicubic)', 'Latent (bicubic antialiased)', 'Latent (nearest)',
  'Latent (nearest-exact)', 'Lanczos',
] as const;

export type HiresUpscaler = (typeof hiresUpscalerNames)[number];

/** The engine's name of each upscaler (NativeHires.upscaler). */
export const engineUpscalers: Readonly<Record<HiresUpscaler, string>> = {
  Latent: 'latent-bilinear',
  'Latent (antialiased)': 'latent-bilinear-antialiased',
  'Latent (bicubic)': 'latent-bicubic',
  'Latent (bicubic antialiased)': 'latent-bicubic-antialiased',
  'Latent (nearest)': 'latent-nearest',
  'Latent (nearest-exact)': 'latent-nearest-exact',
  Lanczos: 'lanczos',
};

export interface HiresSize {
  /** Final size in pixels. */
  width: number;
  height: number;
  /** Size the first pass is resized to; its centre is then cropped to width × height. */
  upscaleWidth: number;
  upscaleHeight: number;
}

const floorTo8 = (pixels: number) => Math.floor(pixels / 8) * 8;

/**
 * The second pass's size for a first pass of baseWidth × baseHeight, as A1111's
 * calculate_target_resolution: by scale; by one side with the other keeping the aspect ratio; or by
 * both, upscaled to cover them and centre-cropped. Sizes are floored to a multiple of 8, as A1111's
 * latent (8 pixels a cell) floors them.
 */
export function hiresSize(
  baseWidth: number, baseHeight: number, asked: { scale: number } | { width?: number; height?: number },
): HiresSize {
  if ('scale' in asked) {
    const width = floorTo8(baseWidth * asked.scale);
    const height = floorTo8(baseHeight * asked.scale);
    return { width, height, upscaleWidth: width, upscaleHeight: height };
  }
  const { width, height } = asked;
  // Upscale by the width when the target is relatively wider than the image, else by the height.
  const byWidth = height === undefined || (width !== undefined && baseWidth / baseHeight < width / height);
  const upscaleWidth = byWidth ? width! : floorTo8(Math.floor((height! * baseWidth) / baseHeight));
  const upscaleHeight = byWidth ? floorTo8(Math.floor((width! * baseHeight) / baseWidth)) : height!;
  return { width: width ?? upscaleWidth, height: height ?? upscaleHeight, upscaleWidth, upscaleHeight };
}
