// The text chunks of a PNG, read in the browser: sdnode and AUTOMATIC1111 keep an image's
// generation settings in its `parameters` chunk (tEXt when the text is Latin-1, else iTXt).

const pngSignature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const utf8 = new TextDecoder('utf-8');

/** Keyword → text of every tEXt, zTXt and iTXt chunk (the first of each keyword); {} for a non-PNG. */
export async function readPngTextChunks(bytes: Uint8Array): Promise<Record<string, string>> {
  const entries: Record<string, string> = {};
  if (!pngSignature.every((byte, i) => bytes[i] === byte)) return entries;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // Each chunk: length (4), type (4), data (length), CRC (4).
  for (let offset = pngSignature.length; offset + 12 <= bytes.length;) {
    const length = view.getUint32(offset);
    const type = latin1(bytes.subarray(offset + 4, offset + 8));
    const dataEnd = offset + 8 + length;
    if (type === 'IEND' || dataEnd + 4 > bytes.length) break;
    const entry = await textEntry(type, bytes.subarray(offset + 8, dataEnd));
    if (entry && !Object.hasOwn(entries, entry.keyword)) entries[entry.keyword] = entry.text;
    offset = dataEnd + 4;
  }
  return entries;
}

async function textEntry(type: string, data: Uint8Array): Promise<{ keyword: string; text: string } | undefined> {
  if (type !== 'tEXt' && type !== 'zTXt' && type !== 'iTXt') return undefined;
  const keywordEnd = data.indexOf(0);
  if (keywordEnd < 1) return undefined;
  const keyword = latin1(data.subarray(0, keywordEnd));
  const rest = data.subarray(keywordEnd + 1);
  if (type === 'tEXt') return { keyword, text: latin1(rest) };
  // zTXt: compression method (1 byte), then zlib data.
  if (type === 'zTXt') return { keyword, text: latin1(await inflate(rest.subarray(1))) };
  // iTXt: compression flag, method, language tag\0, translated keyword\0, text (UTF-8).
  const languageEnd = rest.indexOf(0, 2);
  const translatedEnd = languageEnd < 0 ? -1 : rest.indexOf(0, languageEnd + 1);
  if (translatedEnd < 0) return undefined;
  const body = rest.subarray(translatedEnd + 1);
  return { keyword, text: utf8.decode(rest[0] === 1 ? await inflate(body) : body) };
}

// TextDecoder's 'latin1' is really windows-1252, which differs from PNG's ISO 8859-1 in 0x80–0x9F.
function latin1(bytes: Uint8Array): string {
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte);
  return text;
}

async function inflate(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
