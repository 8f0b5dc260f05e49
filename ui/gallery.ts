// The gallery: every image of the page's jobs, newest first, fetched with the API key and shown
// from object URLs. Selecting one opens its details: the settings read from the PNG's
// `parameters` chunk, "use these settings", "use as input image" and a download link.

import { parseParameters, type ParsedParameters } from '../lib/parameters-text.js';
import { Api, describeError } from './api.js';
import { byId, element } from './dom.js';
import type { JobTracker } from './jobs.js';
import { readPngTextChunks } from './png-text.js';

export interface GalleryImage {
  url: string;
  blob: Blob;
  objectUrl: string;
  /** The `parameters` text, when the PNG has one. */
  parameters: ParsedParameters | undefined;
}

interface Tile {
  item: HTMLLIElement;
  button: HTMLButtonElement;
  image: GalleryImage | undefined;
  /** Set when the last fetch failed, so a new key can retry it. */
  failed: boolean;
}

export interface GalleryActions {
  useSettings(parameters: ParsedParameters): void;
  useAsInput(image: GalleryImage): void;
  /** An image has been fetched (or failed to be). */
  onLoaded(): void;
}

export class Gallery {
  readonly #api: Api;
  readonly #list: HTMLUListElement;
  readonly #empty: HTMLElement;
  readonly #details: ImageDetails;
  readonly #onLoaded: () => void;
  readonly #tiles = new Map<string, Tile>();

  constructor(api: Api, list: HTMLUListElement, empty: HTMLElement, actions: GalleryActions) {
    this.#api = api;
    this.#list = list;
    this.#empty = empty;
    this.#details = new ImageDetails(actions);
    this.#onLoaded = actions.onLoaded;
  }

  /** The object URL of a result image, once it is loaded. */
  objectUrl(url: string): string | undefined {
    return this.#tiles.get(url)?.image?.objectUrl;
  }

  render(tracker: JobTracker): void {
    const urls = tracker.jobs.flatMap((job) => job.imageUrls.map((url, i) => ({ url, label: `Image ${i + 1} of "${job.prompt}"` })));
    const wanted = new Set(urls.map(({ url }) => url));
    for (const [url, tile] of this.#tiles) {
      if (wanted.has(url)) continue;
      if (tile.image) URL.revokeObjectURL(tile.image.objectUrl);
      this.#tiles.delete(url);
    }
    const items = urls.map(({ url, label }) => (this.#tiles.get(url) ?? this.#createTile(url, label)).item);
    if (items.length !== this.#list.children.length || items.some((item, i) => this.#list.children[i] !== item)) {
      this.#list.replaceChildren(...items);
    }
    this.#empty.hidden = items.length > 0;
  }

  /** Fetches again the images that failed (after the API key changed). */
  retryFailed(): void {
    for (const [url, tile] of this.#tiles) if (tile.failed) void this.#load(url, tile);
  }

  #createTile(url: string, label: string): Tile {
    const item = element('li', 'tile');
    const button = element('button', 'tile-button');
    button.type = 'button';
    button.setAttribute('aria-label', label);
    button.disabled = true;
    item.append(button);
    const tile: Tile = { item, button, image: undefined, failed: false };
    button.addEventListener('click', () => {
      if (tile.image) this.#details.open(tile.image);
    });
    this.#tiles.set(url, tile);
    void this.#load(url, tile);
    return tile;
  }

  async #load(url: string, tile: Tile): Promise<void> {
    tile.failed = false;
    tile.button.replaceChildren(element('span', 'tile-note', 'Loading…'));
    try {
      const blob = await this.#api.blob(url);
      const text = await readPngTextChunks(new Uint8Array(await blob.arrayBuffer()));
      const image: GalleryImage = {
        url,
        blob,
        objectUrl: URL.createObjectURL(blob),
        parameters: text.parameters === undefined ? undefined : parseParameters(text.parameters),
      };
      tile.image = image;
      const img = element('img');
      img.src = image.objectUrl;
      img.alt = image.parameters?.prompt ?? '';
      tile.button.replaceChildren(img);
      tile.button.disabled = false;
    } catch (error) {
      tile.failed = true;
      tile.button.replaceChildren(element('span', 'tile-note error', describeError(error)));
    }
    this.#onLoaded();
  }
}

class ImageDetails {
  readonly #dialog = byId('image-details', HTMLDialogElement);
  #current: GalleryImage | undefined;

  constructor(actions: GalleryActions) {
    byId('close-details', HTMLButtonElement).addEventListener('click', () => this.#dialog.close());
    byId('use-settings', HTMLButtonElement).addEventListener('click', () => {
      if (this.#current?.parameters) actions.useSettings(this.#current.parameters);
      this.#dialog.close();
    });
    byId('use-as-input', HTMLButtonElement).addEventListener('click', () => {
      if (this.#current) actions.useAsInput(this.#current);
      this.#dialog.close();
    });
    // A click on the backdrop (outside the dialog's box) closes it, as Escape does.
    this.#dialog.addEventListener('click', (event) => {
      if (event.target === this.#dialog) this.#dialog.close();
    });
  }

  open(image: GalleryImage): void {
    this.#current = image;
    const parameters = image.parameters;
    const picture = byId('details-image', HTMLImageElement);
    picture.src = image.objectUrl;
    picture.alt = parameters?.prompt ?? 'The selected image';
    byId('details-prompt', HTMLElement).textContent = parameters?.prompt ?? '';
    byId('details-negative', HTMLElement).textContent = parameters?.negativePrompt ? `Negative: ${parameters.negativePrompt}` : '';
    const fields = byId('details-fields', HTMLElement);
    fields.replaceChildren(...Object.entries(parameters?.fields ?? {}).flatMap(([name, value]) => {
      const row = element('div');
      row.append(element('dt', undefined, name), element('dd', undefined, value));
      return [row];
    }));
    byId('details-missing', HTMLElement).hidden = parameters !== undefined;
    byId('use-settings', HTMLButtonElement).disabled = parameters === undefined;
    const download = byId('download-image', HTMLAnchorElement);
    download.href = image.objectUrl;
    download.download = `sdnode-${image.url.split('/').slice(-2).join('-')}`;
    this.#dialog.showModal();
  }
}
