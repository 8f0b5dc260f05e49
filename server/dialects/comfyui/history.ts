// Workflow jobs as ComfyUI shows them: prompt ids, /view file names of their images, queue rows
// and history entries. A job image's PNG text chunks say which node stored it (nodes/images.ts).

import { readPngText } from '../../../lib/index.js';
import { isJobId } from '../../jobs/ids.js';
import type { JobRecord } from '../../jobs/job.js';
import type { JobService, JobSnapshot } from '../../jobs/service.js';
import { nodeChunk, typeChunk } from './nodes/images.js';

export const dialectTag = 'comfyui';

export interface ImageRef {
  filename: string;
  subfolder: string;
  type: 'output' | 'temp';
}

/** ComfyUI's prompt id of a workflow job: the client's, or the job id. */
export function promptIdOf(record: JobRecord): string {
  return record.parameters.workflow?.promptId ?? record.id;
}

/** The /view name of job image `n`: ComfyUI's "<prefix>_<counter>_.png", with the job id in the prefix. */
export function imageFilename(jobId: string, n: number, type: 'output' | 'temp'): string {
  return `ComfyUI${type === 'temp' ? '_temp' : ''}_${jobId}_${String(n).padStart(5, '0')}_.png`;
}

/** The job and image number a /view name stands for. */
export function parseImageFilename(filename: string): { jobId: string; n: number } | undefined {
  const match = /([A-Za-z0-9_-]{22})_(\d{5})_\.png$/.exec(filename);
  return match && isJobId(match[1]!) ? { jobId: match[1]!, n: Number(match[2]) } : undefined;
}

/** Every workflow job, oldest first. */
export async function workflowJobs(jobs: JobService): Promise<JobRecord[]> {
  return (await jobs.list()).filter((record) => record.dialect === dialectTag && record.parameters.workflow);
}

/** The workflow job a prompt id names. */
export async function findPrompt(jobs: JobService, promptId: string): Promise<JobSnapshot | undefined> {
  if (isJobId(promptId)) {
    const snapshot = await jobs.find(promptId);
    if (snapshot?.record.dialect === dialectTag && promptIdOf(snapshot.record) === promptId) return snapshot;
  }
  const record = (await workflowJobs(jobs)).find((candidate) => promptIdOf(candidate) === promptId);
  return record && jobs.find(record.id);
}

/** ComfyUI's queue row: [number, prompt_id, prompt, extra_data, outputs_to_execute]. */
export function queueRow(record: JobRecord): unknown[] {
  const workflow = record.parameters.workflow!;
  return [workflow.number, promptIdOf(record), workflow.graph, { ...workflow.extraData, ...(workflow.clientId && { client_id: workflow.clientId }) },
    workflow.outputs];
}

/** The images each output node stored, read from the job's images. */
export async function outputsOf(jobs: JobService, snapshot: JobSnapshot): Promise<Record<string, { images: ImageRef[] }>> {
  const outputs: Record<string, { images: ImageRef[] }> = {};
  for (let n = 1; n <= snapshot.imagesDone; n++) {
    const png = await jobs.image(snapshot.record.id, n);
    if (!png) continue;
    const text = readPngText(png);
    const node = text[nodeChunk];
    if (node === undefined) continue;
    const type = text[typeChunk] === 'temp' ? 'temp' : 'output';
    (outputs[node] ??= { images: [] }).images.push({ filename: imageFilename(snapshot.record.id, n, type), subfolder: '', type });
  }
  return outputs;
}

/** A finished job's /history entry. */
export async function historyEntry(jobs: JobService, snapshot: JobSnapshot): Promise<Record<string, unknown>> {
  const { record } = snapshot;
  const outputs = await outputsOf(jobs, snapshot);
  const success = record.state === 'COMPLETE';
  const promptId = promptIdOf(record);
  const started = Date.parse(record.createdAt), ended = Date.parse(record.updatedAt);
  const messages: unknown[] = [['execution_start', { prompt_id: promptId, timestamp: started }]];
  if (success) messages.push(['execution_success', { prompt_id: promptId, timestamp: ended }]);
  else if (record.error?.code === 'CANCELLED') messages.push(['execution_interrupted', { prompt_id: promptId, timestamp: ended }]);
  else messages.push(['execution_error', { prompt_id: promptId, exception_message: record.error?.message ?? '', timestamp: ended }]);
  return {
    prompt: queueRow(record),
    outputs,
    status: { status_str: success ? 'success' : 'error', completed: success, messages },
    meta: Object.fromEntries(Object.keys(outputs).map((node) => [node, { node_id: node, display_node: node, parent_node: null, real_node_id: node }])),
  };
}
