// What clients may read of an error: names, never where things live. Native and library messages
// carry absolute paths (the models and LoRA folders, "…/v1-5.safetensors: cannot open"); a job's
// error, which any client of that job reads, keeps only the last part of each.

// An absolute path (POSIX, or Windows with a drive letter) after a space, quote, bracket or '=' or
// at the start: its folders are dropped, its file name kept.
const absolutePath = /(^|[\s'"`(=[])((?:[A-Za-z]:)?[\\/](?:[^\s'"`\\/:,;()[\]]+[\\/])+)/g;

/** `message` with every absolute path cut to its last part. */
export function withoutPaths(message: string): string {
  return message.replace(absolutePath, '$1');
}
