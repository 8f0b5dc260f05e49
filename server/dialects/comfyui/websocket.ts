// /ws?clientId=…: ComfyUI's websocket. Queue events of workflow jobs become its messages, sent to
// the client that queued the prompt (to every client when it gave no client_id): status,
// execution_start, execution_cached, executing (node null at the end), progress, executed,
// execution_success / execution_error / execution_interrupted, and previews as binary frames
// (big-endian uint32 event 1, uint32 image type 2 = PNG, then the PNG).

import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';

import { WebSocketServer, type WebSocket } from 'ws';

import type { ApiKeys } from '../../http/auth.js';
import type { AllowedHosts } from '../../http/origin.js';
import type { JobPreview, JobProgress } from '../../jobs/job.js';
import type { QueueEvent } from '../../jobs/queue.js';
import type { JobService } from '../../jobs/service.js';
import { dialectTag, imageFilename, promptIdOf } from './history.js';

const maxSockets = 256;
const maxPayloadBytes = 64 * 1024;

/** What has been said about one job so far, so each event adds only what is new. */
interface JobTalk {
  jobId: string;
  clientId: string | undefined;
  promptId: string;
  started: boolean;
  node: string | null;
  step: string | undefined;
  executed: Set<string>;
}

export class ComfyEvents {
  readonly #jobs: JobService;
  readonly #sockets = new Map<WebSocket, string>();
  readonly #talk = new Map<string, Promise<JobTalk | undefined>>();
  readonly #unsubscribe: () => void;
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: maxPayloadBytes });

  constructor(jobs: JobService) {
    this.#jobs = jobs;
    this.#unsubscribe = jobs.subscribe((event) => this.#onEvent(event));
  }

  /** Takes upgrades on `path` (with the --api-prefix). */
  attach(server: Server, path: string, keys: ApiKeys, allowed: AllowedHosts): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname !== path) return;
      if (!allowed.host(req.headers.host) || !allowed.origin(req.headers.origin, req.headers.host)) {
        socket.end(refusal('403 Forbidden', 'This web page or host may not open the websocket (--allowed-hosts)'));
        return;
      }
      const token = url.searchParams.get('token');
      if (keys.enabled && !keys.acceptsHeader(req.headers.authorization) && !(token && keys.acceptsHeader(`Bearer ${token}`))) {
        socket.end(refusal('401 Unauthorized', 'An API key is needed (Authorization: Bearer, or ?token=)'));
        return;
      }
      if (this.#sockets.size >= maxSockets) {
        socket.end(refusal('503 Service Unavailable', 'Too many websockets are open; retry later'));
        return;
      }
      this.#wss.handleUpgrade(req, socket, head, (ws) => {
        const clientId = url.searchParams.get('clientId') || randomUUID().replaceAll('-', '');
        this.#sockets.set(ws, clientId);
        ws.on('error', () => ws.terminate());
        ws.on('close', () => this.#sockets.delete(ws));
        void this.#status().then((status) => this.#send(ws, { type: 'status', data: { ...status, sid: clientId } }));
      });
    });
  }

  /** Tells every client how many prompts remain (after one was queued or finished). */
  async broadcastStatus(): Promise<void> {
    const status = await this.#status();
    for (const ws of this.#sockets.keys()) this.#send(ws, { type: 'status', data: status });
  }

  close(): void {
    this.#unsubscribe();
    for (const ws of this.#sockets.keys()) ws.terminate();
    this.#wss.close();
  }

  async #status(): Promise<{ status: { exec_info: { queue_remaining: number } } }> {
    const counts = await this.#jobs.counts().catch(() => ({ waiting: 0, running: 0 }));
    return { status: { exec_info: { queue_remaining: counts.waiting + counts.running } } };
  }

  #send(ws: WebSocket, message: unknown): void {
    if (ws.readyState === ws.OPEN) ws.send(typeof message === 'object' && message instanceof Buffer ? message : JSON.stringify(message));
  }

  #sendTo(clientId: string | undefined, message: unknown): void {
    for (const [ws, id] of this.#sockets) if (clientId === undefined || id === clientId) this.#send(ws, message);
  }

  // Events of one job are handled in order: each waits for the one before it.
  #onEvent(event: QueueEvent): void {
    const previous = this.#talk.get(event.jobId) ?? this.#lookUp(event.jobId);
    const next = previous.then(async (talk) => {
      if (!talk) return undefined;
      if (event.type === 'progress') this.#onProgress(talk, event.progress);
      else if (event.type === 'preview') this.#onPreview(talk, event.preview);
      else if (event.type === 'settled') await this.#onSettled(event.jobId, talk);
      return talk;
    }).catch(() => undefined);
    if (event.type === 'settled') {
      this.#talk.delete(event.jobId);
      void next.then(() => this.broadcastStatus());
    } else {
      this.#talk.set(event.jobId, next);
    }
  }

  async #lookUp(jobId: string): Promise<JobTalk | undefined> {
    const snapshot = await this.#jobs.find(jobId);
    const record = snapshot?.record;
    if (!record || record.dialect !== dialectTag || !record.parameters.workflow) return undefined;
    return {
      jobId, clientId: record.parameters.workflow.clientId, promptId: promptIdOf(record),
      started: false, node: null, step: undefined, executed: new Set(),
    };
  }

  #start(talk: JobTalk, cached: string[]): void {
    if (talk.started) return;
    talk.started = true;
    const { promptId: prompt_id, clientId } = talk;
    this.#sendTo(clientId, { type: 'execution_start', data: { prompt_id, timestamp: Date.now() } });
    this.#sendTo(clientId, { type: 'execution_cached', data: { nodes: cached, prompt_id, timestamp: Date.now() } });
  }

  #onProgress(talk: JobTalk, progress: JobProgress): void {
    const workflow = progress.workflow;
    if (!workflow) return;
    const { promptId: prompt_id, clientId } = talk;
    this.#start(talk, workflow.cached);
    for (const [node, output] of Object.entries(workflow.outputs)) {
      if (talk.executed.has(node)) continue;
      talk.executed.add(node);
      const images = output.images.map((n) => ({ filename: imageFilename(talk.jobId, n, output.type), subfolder: '', type: output.type }));
      this.#sendTo(clientId, { type: 'executed', data: { node, display_node: node, output: { images }, prompt_id } });
    }
    if (workflow.node !== null && workflow.node !== talk.node) {
      talk.node = workflow.node;
      talk.step = undefined;
      this.#sendTo(clientId, { type: 'executing', data: { node: workflow.node, display_node: workflow.node, prompt_id } });
    }
    if (progress.step !== undefined && progress.steps !== undefined && workflow.node !== null) {
      const step = `${workflow.node}:${progress.step}/${progress.steps}`;
      if (step !== talk.step) {
        talk.step = step;
        this.#sendTo(clientId, { type: 'progress', data: { value: progress.step, max: progress.steps, prompt_id, node: workflow.node } });
      }
    }
  }

  #onPreview(talk: JobTalk, preview: JobPreview): void {
    const header = Buffer.alloc(8);
    header.writeUInt32BE(1, 0);
    header.writeUInt32BE(2, 4);
    this.#sendTo(talk.clientId, Buffer.concat([header, preview.png]));
  }

  async #onSettled(jobId: string, talk: JobTalk): Promise<void> {
    const snapshot = await this.#jobs.find(jobId);
    const { promptId: prompt_id, clientId } = talk;
    if (!snapshot) {
      // Deleted from the queue before it ran: nothing ran, nothing to say.
      return;
    }
    this.#start(talk, []);
    const { record } = snapshot;
    const timestamp = Date.now();
    const executed = [...talk.executed];
    if (record.state === 'COMPLETE') {
      this.#sendTo(clientId, { type: 'execution_success', data: { prompt_id, timestamp } });
    } else if (record.state === 'FAILED' && record.error?.code === 'CANCELLED') {
      this.#sendTo(clientId, {
        type: 'execution_interrupted', data: { prompt_id, node_id: talk.node, node_type: this.#classOf(record, talk.node), executed, timestamp },
      });
    } else if (record.state === 'FAILED') {
      this.#sendTo(clientId, {
        type: 'execution_error',
        data: {
          prompt_id, node_id: talk.node, node_type: this.#classOf(record, talk.node), executed,
          exception_message: record.error?.message ?? 'The workflow failed', exception_type: record.error?.code ?? 'GENERATION_FAILED',
          traceback: [], current_inputs: {}, current_outputs: {}, timestamp,
        },
      });
    } else {
      return;  // stopped for a shutdown: it resumes later
    }
    this.#sendTo(clientId, { type: 'executing', data: { node: null, prompt_id } });
  }

  #classOf(record: { parameters: { workflow?: { graph: Record<string, { class_type: string }> } } }, node: string | null): string | null {
    return node === null ? null : record.parameters.workflow?.graph[node]?.class_type ?? null;
  }
}

function refusal(status: string, detail: string): string {
  return `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${JSON.stringify({ error: detail })}`;
}
