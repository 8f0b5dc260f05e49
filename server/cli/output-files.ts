// Where `sdnode generate` puts its PNGs. One image goes to the name given; several get -1, -2, …
// after the stem. Without --overwrite an existing file is never replaced: the image takes the next
// free number instead (out.png → out-1.png; out-1.png, out-2.png → out-3.png, out-4.png). Files are
// created exclusively, so a file that appears meanwhile is not replaced either.

import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Writes `images` under names derived from `file`; returns the paths written, in order. */
export async function writeImages(file: string, images: readonly Uint8Array[], overwrite: boolean): Promise<string[]> {
  await mkdir(path.dirname(file), { recursive: true });
  const extension = path.extname(file);
  const stem = file.slice(0, file.length - extension.length);
  const numbered = (n: number): string => `${stem}-${n}${extension}`;
  if (overwrite) {
    const names = images.length === 1 ? [file] : images.map((_, i) => numbered(i + 1));
    await Promise.all(images.map((png, i) => writeFile(names[i]!, png)));
    return names;
  }
  // The plain name is a candidate only for a single image, so that several always share one pattern.
  let next = images.length === 1 ? 0 : 1;
  const written: string[] = [];
  for (const png of images) {
    for (;;) {
      const name = next === 0 ? file : numbered(next);
      next++;
      try {
        await writeFile(name, png, { flag: 'wx' });
        written.push(name);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    }
  }
  return written;
}
