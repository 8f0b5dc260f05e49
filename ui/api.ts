// The page's only way to the server: its public APIs, with the API key the user saved sent as
// `Authorization: Bearer`, and every failure turned into an error whose message can be shown as is.

const keyStorage = 'sdnode.apiKey';

/** A request that failed: the API's `{ error: { code, message } }`, or what went wrong on the way. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** How an error reads on the page: the server's message and its code (an ApiError or a job's error). */
export function describeError(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    if (typeof message === 'string') return typeof code === 'string' ? `${message} (${code})` : message;
  }
  return String(error);
}

export class Api {
  #key: string;
  // The server's --api-prefix, which it writes into the page it serves; the URLs it answers with carry it already.
  readonly #prefix = document.querySelector('meta[name="sdnode-api-prefix"]')?.getAttribute('content') ?? '';

  constructor() {
    this.#key = localStorage.getItem(keyStorage) ?? '';
  }

  /** The URL of one of the server's routes, e.g. '/health', under its --api-prefix. */
  route(path: string): string {
    return this.#prefix + path;
  }

  get key(): string {
    return this.#key;
  }

  /** Keeps the key for later visits; an empty key sends no Authorization header. */
  setKey(key: string): void {
    this.#key = key.trim();
    if (this.#key === '') localStorage.removeItem(keyStorage);
    else localStorage.setItem(keyStorage, this.#key);
  }

  async json<T>(path: string, init: RequestInit = {}): Promise<T> {
    const response = await this.#fetch(path, init);
    const text = await response.text();
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      throw new ApiError(response.status, `HTTP_${response.status}`, `${path} answered ${response.status} with something that is not JSON`);
    }
    if (!response.ok) throw errorFrom(path, response.status, body);
    return body as T;
  }

  /** An image (or any file) as a Blob; images need the key too, so no plain <img src>. */
  async blob(path: string): Promise<Blob> {
    const response = await this.#fetch(path, {});
    if (!response.ok) {
      const body: unknown = await response.json().catch(() => undefined);
      throw errorFrom(path, response.status, body);
    }
    return response.blob();
  }

  async #fetch(path: string, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.#key !== '') headers.set('Authorization', `Bearer ${this.#key}`);
    try {
      return await fetch(path, { ...init, headers });
    } catch {
      throw new ApiError(0, 'NETWORK_ERROR', 'The server does not answer: is sdnode serve still running?');
    }
  }
}

// M1 and the shared routes answer { error: { code, message } }; OpenAI's routes add type and param
// but keep code and message, so one reader serves both.
function errorFrom(path: string, status: number, body: unknown): ApiError {
  const error = typeof body === 'object' && body !== null ? (body as { error?: unknown }).error : undefined;
  if (typeof error === 'object' && error !== null) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    if (typeof message === 'string') {
      return new ApiError(status, typeof code === 'string' ? code.toUpperCase() : `HTTP_${status}`, message);
    }
  }
  return new ApiError(status, `HTTP_${status}`, `${path} answered ${status}`);
}
