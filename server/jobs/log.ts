// Terminal lines about jobs: one when a job starts, one per finished image, a heartbeat with
// the step count while an image takes long, and one at the end. Never a line per step.

import type { JobError, JobRecord } from './job.js';

export type WriteLine = (line: string) => void;

export interface JobLog {
  started(record: JobRecord, imagesDone: number): void;
  step(record: JobRecord, imageIndex: number, step: number, steps: number): void;
  imageDone(record: JobRecord, imageIndex: number, elapsedMs: number, file: string): void;
  stopped(record: JobRecord, imagesDone: number): void;
  skipped(record: JobRecord, imageIndex: number): void;
  completed(record: JobRecord): void;
  failed(record: JobRecord, error: JobError): void;
}

const heartbeatMs = 5000;

export function terminalJobLog(write: WriteLine, now: () => number = Date.now): JobLog {
  const lastLineAt = new Map<string, number>();
  const line = (record: JobRecord, text: string): void => {
    lastLineAt.set(record.id, now());
    write(`[${record.id.slice(0, 8)}] ${text}`);
  };
  const imageLabel = (record: JobRecord, index: number): string =>
    `image ${index + 1}/${record.parameters.count}`;
  return {
    started(record, imagesDone) {
      const { prompt, count, seed, workflow } = record.parameters;
      if (workflow) {
        const nodes = Object.keys(workflow.graph).length;
        line(record, `workflow of ${nodes} node${nodes === 1 ? '' : 's'}, outputs ${workflow.outputs.join(', ')}`);
        return;
      }
      const from = imagesDone > 0 ? `, resuming at image ${imagesDone + 1}` : '';
      const about = prompt === '' ? '' : ` ${JSON.stringify(truncate(prompt, 60))}`;
      line(record, `${record.mode}${about}: ${count} image${count === 1 ? '' : 's'}, seed ${seed}${from}`);
    },
    step(record, imageIndex, step, steps) {
      if (now() - (lastLineAt.get(record.id) ?? 0) < heartbeatMs) return;
      line(record, `${imageLabel(record, imageIndex)}: step ${step}/${steps}`);
    },
    imageDone(record, imageIndex, elapsedMs, file) {
      line(record, `${imageLabel(record, imageIndex)} done in ${(elapsedMs / 1000).toFixed(1)} s → ${file}`);
    },
    skipped(record, imageIndex) {
      line(record, `${imageLabel(record, imageIndex)} skipped`);
    },
    stopped(record, imagesDone) {
      line(record, `stopped after ${imagesDone}/${record.parameters.count} images; resumes at the next start`);
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
