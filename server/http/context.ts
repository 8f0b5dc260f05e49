// What every dialect is built from: the one job service, model registry, route registry and keys.

import type { Server } from 'node:http';

import type { Router } from 'express';

import type { JobService } from '../jobs/service.js';
import type { ModelCatalog } from '../models/registry.js';
import type { ApiRegistry } from './api.js';
import type { ApiKeys } from './auth.js';
import type { AllowedHosts } from './origin.js';

export type WriteLine = (line: string) => void;

export interface ServerContext {
  jobs: JobService;
  models: ModelCatalog;
  api: ApiRegistry;
  keys: ApiKeys;
  /** Which Host and Origin headers requests and websockets may carry (--allowed-hosts). */
  allowedHosts: AllowedHosts;
  /** Per-file upload limit in bytes. */
  maxUploadBytes: number;
  /** False once shutdown has begun. */
  acceptingJobs(): boolean;
  /** Where unexpected errors are reported. */
  log: WriteLine;
  /**
   * Path every route is served under ('' or e.g. '/sd', from --api-prefix). Routes are declared
   * without it; URLs written into answers start with it.
   */
  apiPrefix: string;
}

/** One API dialect: a name for --api, a description for the docs, and its routes. */
export interface Dialect {
  name: string;
  description: string;
  router(): Router;
  /** For dialects that take more than HTTP requests (websockets): called once the server exists. */
  attach?(server: Server): void;
  /** The paths (with the --api-prefix) where `attach` takes websocket upgrades; upgrades elsewhere are closed. */
  upgradePaths?: string[];
  /** Called when the server closes. */
  close?(): Promise<void>;
  /** Whether anyone may generate here without a credential; absent: when the server has none (`keys.enabled` false). */
  open?(): boolean;
  /** Lines for the start-up message, e.g. a ready-to-open link. */
  welcome?(baseUrl: string): Promise<string[]>;
}
