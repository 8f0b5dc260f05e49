// The input image of image-to-image and inpainting: chosen as a file (or taken from the gallery),
// shown in the editor, with the mask canvas and its tools over it in inpainting mode.

import { byId } from './dom.js';
import { MaskEditor } from './mask-editor.js';

export class InputImage {
  readonly mask: MaskEditor;
  readonly #picture = byId('source-image', HTMLImageElement);
  readonly #editor = byId('editor', HTMLElement);
  readonly #canvas = byId('mask-canvas', HTMLCanvasElement);
  readonly #info = byId('image-info', HTMLElement);
  #blob: Blob | undefined;
  #objectUrl: string | undefined;
  #size: { width: number; height: number } | undefined;

  constructor(onError: (message: string) => void, useSize: (width: number, height: number) => void) {
    this.mask = new MaskEditor(this.#canvas, byId('brush-cursor', HTMLElement));
    const file = byId('input-image', HTMLInputElement);
    file.addEventListener('change', () => {
      const chosen = file.files?.[0];
      if (chosen) this.set(chosen).catch((error: unknown) => onError(error instanceof Error ? error.message : String(error)));
    });
    const brushSize = byId('brush-size', HTMLInputElement);
    const brushSizeValue = byId('brush-size-value', HTMLOutputElement);
    const showBrushSize = (): void => {
      this.mask.brushSize = Number(brushSize.value);
      brushSizeValue.value = `${brushSize.value} px`;
    };
    brushSize.addEventListener('input', showBrushSize);
    showBrushSize();
    for (const radio of document.querySelectorAll<HTMLInputElement>('input[name="brush"]')) {
      radio.addEventListener('change', () => { this.mask.erasing = radio.checked && radio.value === 'erase'; });
    }
    byId('clear-mask', HTMLButtonElement).addEventListener('click', () => this.mask.clear());
    byId('fill-mask', HTMLButtonElement).addEventListener('click', () => this.mask.fill());
    byId('use-image-size', HTMLButtonElement).addEventListener('click', () => {
      if (this.#size) useSize(this.#size.width, this.#size.height);
      else onError('Choose an input image first');
    });
  }

  /** The image to upload, as chosen. */
  get blob(): Blob | undefined {
    return this.#blob;
  }

  /** Shows `blob` as the input image, with an empty mask of its size. */
  async set(blob: Blob): Promise<void> {
    const objectUrl = URL.createObjectURL(blob);
    this.#picture.src = objectUrl;
    try {
      await this.#picture.decode();
    } catch {
      URL.revokeObjectURL(objectUrl);
      throw new Error('This file is not an image the browser can read: choose a PNG, JPEG or WebP file');
    }
    if (this.#objectUrl !== undefined) URL.revokeObjectURL(this.#objectUrl);
    this.#objectUrl = objectUrl;
    this.#blob = blob;
    const { naturalWidth: width, naturalHeight: height } = this.#picture;
    this.#size = { width, height };
    this.mask.reset(width, height);
    this.#editor.hidden = false;
    this.#info.textContent = `${width} × ${height} px; it is scaled and cropped to cover the size below.`;
  }

  /** The mask canvas takes pointer input only while inpainting. */
  showMask(shown: boolean): void {
    this.#canvas.hidden = !shown;
  }
}
