// One line of progress on a terminal, redrawn in place: a label, a bar, counts, a rate and the time
// left. Lines printed through it appear above the bar. On anything that is not a terminal it draws
// nothing, and the commands print plain lines instead.

/** Where the bar goes: process.stdout, or a stand-in in tests. */
export interface BarStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

export interface BarState {
  /** What is being counted: "image 1/2", "tensors". */
  label: string;
  done: number;
  total: number;
  /** The counts, already worded ("1.2 MB/3.4 GB"), shown in place of done/total. */
  amount?: string;
  /** Rate, already worded: "1.25 s/step". */
  rate?: string;
  /** Seconds left, when they can be told. */
  etaSeconds?: number;
}

const barWidth = 24;
const clearLine = '\r\x1b[2K';

export class ProgressBar {
  readonly #stream: BarStream;
  readonly #minIntervalMs: number;
  #drawn = false;
  #lastDrawMs = -Infinity;

  /** Redraws come at most every `minIntervalMs` (a conversion counts a thousand tensors in seconds), but the last one always. */
  constructor(stream: BarStream, minIntervalMs = 100) {
    this.#stream = stream;
    this.#minIntervalMs = minIntervalMs;
  }

  /** Whether the bar is drawn at all (the stream is a terminal). */
  get live(): boolean {
    return this.#stream.isTTY === true;
  }

  draw(state: BarState): void {
    if (!this.live) return;
    const now = performance.now();
    if (now - this.#lastDrawMs < this.#minIntervalMs && state.done < state.total) return;
    this.#lastDrawMs = now;
    // A pty without a size (under `script`, some CI runners) reports 0 columns.
    const columns = this.#stream.columns || 80;
    this.#stream.write(clearLine + formatBar(state).slice(0, Math.max(columns - 1, 10)));
    this.#drawn = true;
  }

  /** Prints a line; on a terminal it replaces the bar, which the next draw() puts back below it. */
  print(line: string): void {
    this.clear();
    this.#stream.write(`${line}\n`);
  }

  /** Removes the bar from the terminal. */
  clear(): void {
    if (this.#drawn) this.#stream.write(clearLine);
    this.#drawn = false;
  }
}

/** "image 1/2 ▕██████░░░░░░░░░░░░░░░░░░▏ 5/20  1.25 s/step  ETA 0:19" */
export function formatBar({ label, done, total, amount, rate, etaSeconds }: BarState): string {
  const filled = total > 0 ? Math.round((Math.min(done, total) / total) * barWidth) : 0;
  const parts = [`${label} ▕${'█'.repeat(filled)}${'░'.repeat(barWidth - filled)}▏ ${amount ?? `${done}/${total}`}`];
  if (rate !== undefined) parts.push(rate);
  if (etaSeconds !== undefined) parts.push(`ETA ${formatDuration(etaSeconds)}`);
  return parts.join('  ');
}

/** "0:07", "12:30", "1:02:03". */
export function formatDuration(seconds: number): string {
  const total = Math.max(0, Math.round(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}
