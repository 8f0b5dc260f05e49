// AUTOMATIC1111's generation parameters text, read back. No Node APIs here: the web page (ui/)
// bundles this file to show an image's settings and to fill its form from them.

/** What an AUTOMATIC1111 `parameters` text says: the prompt, the negative prompt and the "Name: value" fields. */
export interface ParsedParameters {
  prompt: string;
  negativePrompt: string;
  fields: Record<string, string>;
}

/**
 * Reads a `parameters` text as formatParameters writes it (and AUTOMATIC1111 does): prompt lines,
 * an optional "Negative prompt:" line, then the "Steps: …" line. Values holding commas inside
 * quotes are kept whole.
 */
export function parseParameters(text: string): ParsedParameters {
  const lines = text.split('\n');
  const fieldsLine = lines.findLastIndex((line) => line.startsWith('Steps: '));
  const end = fieldsLine < 0 ? lines.length : fieldsLine;
  const negativeLine = lines.findIndex((line, index) => index < end && line.startsWith('Negative prompt: '));
  const promptEnd = negativeLine < 0 ? end : negativeLine;
  const fields: Record<string, string> = {};
  if (fieldsLine >= 0) {
    for (const match of (lines[fieldsLine] as string).matchAll(/\s*([^:,]+):\s*("(?:[^"\\]|\\.)*"|[^,]*)(?:,|$)/g)) {
      fields[(match[1] as string).trim()] = (match[2] as string).trim();
    }
  }
  return {
    prompt: lines.slice(0, promptEnd).join('\n'),
    negativePrompt: negativeLine < 0 ? '' : lines.slice(negativeLine, end).join('\n').slice('Negative prompt: '.length),
    fields,
  };
}
