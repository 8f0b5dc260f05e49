// Terminal lines about tasks: one when a task starts, one per finished image, a heartbeat with
// the step count while an image takes long, and one at the end. Never a line per step.

import type { TaskError, TaskRecord } from './task.js';

export type WriteLine = (line: string) => void;

export interface TaskLog {
  started(record: TaskRecord, imagesDone: number): void;
  step(record: TaskRecord, imageIndex: number, step: number, steps: number): void;
  imageDone(record: TaskRecord, imageIndex: number, elapsedMs: number, file: string): void;
  stopped(record: TaskRecord, imagesDone: number): void;
  completed(record: TaskRecord): void;
  failed(record: TaskRecord, error: TaskError): void;
}

const heartbeatMs = 5000;

export function terminalTaskLog(write: WriteLine, now: () => number = Date.now): TaskLog {
  const lastLineAt = new Map<string, number>();
  const line = (record: TaskRecord, text: string): void => {
    lastLineAt.set(record.id, now());
    write(`[${record.id.slice(0, 8)}] ${text}`);
  };
  const imageLabel = (record: TaskRecord, index: number): string =>
    `image ${index + 1}/${record.parameters.iterations}`;
  return {
    started(record, imagesDone) {
      const { prompt, iterations, seed } = record.parameters;
      const from = imagesDone > 0 ? `, resuming at image ${imagesDone + 1}` : '';
      const about = prompt === '' ? '' : ` ${JSON.stringify(truncate(prompt, 60))}`;
      line(record, `${record.kind}${about}: ${iterations} image${iterations === 1 ? '' : 's'}, seed ${seed}${from}`);
    },
    step(record, imageIndex, step, steps) {
      if (now() - (lastLineAt.get(record.id) ?? 0) < heartbeatMs) return;
      line(record, `${imageLabel(record, imageIndex)}: step ${step}/${steps}`);
    },
    imageDone(record, imageIndex, elapsedMs, file) {
      line(record, `${imageLabel(record, imageIndex)} done in ${(elapsedMs / 1000).toFixed(1)} s → ${file}`);
    },
    stopped(record, imagesDone) {
      line(record, `stopped after ${imagesDone}/${record.parameters.iterations} images; resumes at the next start`);
      lastLineAt.delete(record.id);
    },
    completed(record) {
      line(record, 'complete');
      lastLineAt.delete(record.id);
    },
    failed(record, error) {
      line(record, `failed: ${error.code}: ${error.message}`);
      lastLineAt.delete(record.id);
    },
  };
}

function truncate(text: string, length: number): string {
  return text.length <= length ? text : `${text.slice(0, length - 1)}…`;
}
