// The library's one error class, and the conversions into it. User mistakes in options are
// TypeError / RangeError (lib/options.ts); everything the engine or the addon loader reports is an
// SdnodeError carrying the native code unchanged.

/**
 * An error from the engine, the addon loader or a model's lifecycle, with a stable `code`:
 * `ERR_MODEL_IO`, `ERR_MODEL_FORMAT`, `ERR_MODEL_UNSUPPORTED`, `ERR_BACKEND`, `ERR_OUT_OF_MEMORY`,
 * `ERR_ABORTED`, `ERR_MODEL_CLOSED`, `ERR_ADDON_LOAD`, `ERR_INTERNAL`, …
 */
export class SdnodeError extends Error {
  /** Stable machine-readable code, e.g. 'ERR_MODEL_FORMAT'. */
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SdnodeError';
    this.code = code;
  }
}

/**
 * The rejection of an aborted call: an SdnodeError with code 'ERR_ABORTED' whose name is
 * 'AbortError', as Node's own APIs reject when their signal fires. `cause` is the signal's reason.
 */
export function abortError(signal: AbortSignal | undefined): SdnodeError {
  const error = new SdnodeError('ERR_ABORTED', 'The operation was aborted', { cause: signal?.reason });
  error.name = 'AbortError';
  return error;
}

/** Wraps whatever the addon (or its loader) threw into an SdnodeError that keeps its code and message. */
export function fromNativeError(err: unknown): SdnodeError {
  if (err instanceof SdnodeError) return err;
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return new SdnodeError(typeof code === 'string' ? code : 'ERR_INTERNAL', err.message, { cause: err });
  }
  return new SdnodeError('ERR_INTERNAL', String(err));
}
