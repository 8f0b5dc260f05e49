// The inpainting mask, painted over the input image. Strokes go onto a canvas of the image's own
// size in one see-through colour (so the image shows through); maskPng() turns them into what
// the API takes: an opaque PNG, white where painted (repaint), black elsewhere (keep).

const strokeColour = 'rgb(255, 64, 96)';

export class MaskEditor {
  readonly #canvas: HTMLCanvasElement;
  readonly #context: CanvasRenderingContext2D;
  readonly #cursor: HTMLElement;
  /** Brush diameter in CSS pixels, so the brush looks the same at any image resolution. */
  brushSize = 40;
  erasing = false;
  #last: { x: number; y: number } | undefined;

  constructor(canvas: HTMLCanvasElement, cursor: HTMLElement) {
    this.#canvas = canvas;
    this.#cursor = cursor;
    const context = canvas.getContext('2d');
    if (!context) throw new Error('This browser cannot draw on a canvas');
    this.#context = context;
    canvas.addEventListener('pointerdown', (event) => this.#start(event));
    canvas.addEventListener('pointermove', (event) => this.#move(event));
    for (const type of ['pointerup', 'pointercancel'] as const) canvas.addEventListener(type, () => { this.#last = undefined; });
    canvas.addEventListener('pointerleave', () => { cursor.hidden = true; });
  }

  /** A fresh, empty mask for an image of this size. */
  reset(width: number, height: number): void {
    this.#canvas.width = width;
    this.#canvas.height = height;
    this.clear();
  }

  clear(): void {
    this.#context.clearRect(0, 0, this.#canvas.width, this.#canvas.height);
  }

  /** Marks the whole image for repainting. */
  fill(): void {
    this.#context.globalCompositeOperation = 'source-over';
    this.#context.fillStyle = strokeColour;
    this.#context.fillRect(0, 0, this.#canvas.width, this.#canvas.height);
  }

  /** Whether nothing is painted (or everything painted was erased). */
  isEmpty(): boolean {
    const { data } = this.#context.getImageData(0, 0, this.#canvas.width, this.#canvas.height);
    for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) return false;
    return true;
  }

  async maskPng(): Promise<Blob> {
    const mask = document.createElement('canvas');
    mask.width = this.#canvas.width;
    mask.height = this.#canvas.height;
    const context = mask.getContext('2d');
    if (!context) throw new Error('This browser cannot draw on a canvas');
    context.drawImage(this.#canvas, 0, 0);
    // Painted pixels become white (soft brush edges stay partly transparent: grey once on black).
    context.globalCompositeOperation = 'source-in';
    context.fillStyle = '#fff';
    context.fillRect(0, 0, mask.width, mask.height);
    context.globalCompositeOperation = 'destination-over';
    context.fillStyle = '#000';
    context.fillRect(0, 0, mask.width, mask.height);
    return new Promise((resolve, reject) => {
      mask.toBlob((blob) => (blob ? resolve(blob) : reject(new Error('The mask could not be encoded as PNG'))), 'image/png');
    });
  }

  #start(event: PointerEvent): void {
    if (event.button !== 0) return;
    event.preventDefault();
    this.#canvas.setPointerCapture(event.pointerId);
    this.#last = this.#point(event);
    this.#stroke(this.#last, this.#last);
  }

  #move(event: PointerEvent): void {
    this.#showCursor(event);
    if (!this.#last) return;
    const point = this.#point(event);
    this.#stroke(this.#last, point);
    this.#last = point;
  }

  #stroke(from: { x: number; y: number }, to: { x: number; y: number }): void {
    const context = this.#context;
    context.globalCompositeOperation = this.erasing ? 'destination-out' : 'source-over';
    context.strokeStyle = strokeColour;
    context.lineWidth = this.brushSize * this.#scale();
    context.lineCap = 'round';
    context.lineJoin = 'round';
    context.beginPath();
    context.moveTo(from.x, from.y);
    context.lineTo(to.x, to.y);
    context.stroke();
  }

  /** Canvas pixels per CSS pixel: the canvas has the image's size, the page shows it scaled. */
  #scale(): number {
    const width = this.#canvas.getBoundingClientRect().width;
    return width > 0 ? this.#canvas.width / width : 1;
  }

  #point(event: PointerEvent): { x: number; y: number } {
    const rect = this.#canvas.getBoundingClientRect();
    const scale = this.#scale();
    return { x: (event.clientX - rect.left) * scale, y: (event.clientY - rect.top) * scale };
  }

  #showCursor(event: PointerEvent): void {
    const rect = this.#canvas.getBoundingClientRect();
    const cursor = this.#cursor;
    cursor.hidden = false;
    cursor.style.width = `${this.brushSize}px`;
    cursor.style.height = `${this.brushSize}px`;
    cursor.style.transform = `translate(${event.clientX - rect.left - this.brushSize / 2}px, ${event.clientY - rect.top - this.brushSize / 2}px)`;
  }
}
