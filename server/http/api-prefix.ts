// --api-prefix: every route of the server (APIs, docs, health, the web page) served under one path,
// e.g. /sd, as behind a reverse proxy that forwards https://host/sd/… unchanged. The URLs the
// server writes into its answers carry the prefix too.

/**
 * The checked prefix: '' for none ('' or '/'), else '/segment[/segment…]' of URL-safe characters
 * (letters, digits, - . _ ~), without a trailing slash. `name` is the option as the caller knows it
 * ('--api-prefix', 'apiPrefix'); a bad value is a RangeError naming it.
 */
export function checkApiPrefix(value: string, name: string): string {
  if (value === '' || value === '/') return '';
  const segments = value.split('/').slice(1);
  const valid = value.startsWith('/') && segments.every((segment) => /^[A-Za-z0-9._~-]+$/.test(segment) && !/^\.{1,2}$/.test(segment));
  if (!valid) {
    throw new RangeError(`Expected a path such as /sd for ${name} (starting with /, no trailing slash, segments of `
      + `letters, digits, - . _ ~) but received ${JSON.stringify(value)}`);
  }
  return value;
}
