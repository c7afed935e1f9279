/**
 * The discovery file of a running `edgeban local --serve` (DESIGN section
 * 4): `$XDG_RUNTIME_DIR/edgeban/local.json`, else
 * `/tmp/edgeban-$UID/local.json`. The contract needs `pid` and
 * `endpoints`; the rest is what the operator commands need to act on the
 * local pipeline (its bucket, table, IP sets and config).
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { IpSetRef } from '../lambda/reconciler/reconcile';
import type { LocalEndpoints } from './cloud';

/** What the discovery file holds. */
export interface LocalDiscovery {
  /** The serving process; a dead pid means not running. */
  readonly pid: number;
  readonly endpoints: LocalEndpoints;
  /** Region of the local clients (the WAF emulator reads it from the signature). */
  readonly region: string;
  /** The log bucket to upload to. */
  readonly bucket: string;
  /** The state table. */
  readonly tableName: string;
  /** The IP sets in the emulator, in config order. */
  readonly ipSets: readonly IpSetRef[];
  /** The raw `edgeban` config object (what `parseConfig` takes). */
  readonly config: unknown;
  /** When serving started, `YYYY-MM-DDTHH:MM:SSZ`. */
  readonly startedAt: string;
}

/** Base error of this module: a discovery file that cannot be used. */
export class DiscoveryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DiscoveryError';
  }
}

/**
 * Where the discovery file lives for this user.
 * @param env @default process.env
 */
export function discoveryPath(env: NodeJS.ProcessEnv = process.env): string {
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime !== undefined && runtime !== '') return join(runtime, 'edgeban', 'local.json');
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  return join('/tmp', `edgeban-${uid}`, 'local.json');
}

/**
 * Writes the discovery file atomically (a reader never sees half of it),
 * readable by this user only.
 * @returns the path written
 */
export function writeDiscovery(doc: LocalDiscovery, path: string = discoveryPath()): string {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
  return path;
}

/** Whether a process with this pid exists (one of another user counts). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function endpointsOf(value: unknown): LocalEndpoints | null {
  if (typeof value !== 'object' || value === null) return null;
  const e = value as Record<string, unknown>;
  for (const name of ['s3', 'dynamodb', 'wafv2']) {
    if (typeof e[name] !== 'string' || !/^https?:\/\//.test(e[name] as string)) return null;
  }
  return { s3: e.s3 as string, dynamodb: e.dynamodb as string, wafv2: e.wafv2 as string };
}

/**
 * Reads the discovery file of a running local pipeline.
 * @returns the document, or null when there is no file or its process is gone
 * @throws DiscoveryError when the file exists but does not hold a usable document
 */
export function readDiscovery(path: string = discoveryPath()): LocalDiscovery | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new DiscoveryError(`cannot read ${path}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new DiscoveryError(`${path} is not valid JSON`);
  }
  if (typeof doc !== 'object' || doc === null) {
    throw new DiscoveryError(`${path} does not hold a JSON object`);
  }
  const d = doc as Record<string, unknown>;
  if (typeof d.pid !== 'number' || !Number.isInteger(d.pid) || d.pid <= 0) {
    throw new DiscoveryError(`${path} has no valid pid, got ${String(d.pid)}`);
  }
  const endpoints = endpointsOf(d.endpoints);
  if (endpoints === null) throw new DiscoveryError(`${path} has no valid endpoints`);
  if (!pidAlive(d.pid)) return null;
  if (typeof d.bucket !== 'string' || typeof d.tableName !== 'string' || !Array.isArray(d.ipSets)) {
    throw new DiscoveryError(`${path} lacks the bucket, tableName or ipSets of a local pipeline`);
  }
  return {
    pid: d.pid,
    endpoints,
    region: typeof d.region === 'string' ? d.region : 'us-east-1',
    bucket: d.bucket,
    tableName: d.tableName,
    ipSets: d.ipSets as IpSetRef[],
    config: d.config ?? {},
    startedAt: typeof d.startedAt === 'string' ? d.startedAt : '',
  };
}

/**
 * Removes the discovery file if it is this process's (a newer server's file stays).
 * @returns whether it was removed
 */
export function removeDiscovery(
  path: string = discoveryPath(),
  pid: number = process.pid,
): boolean {
  try {
    const doc = JSON.parse(readFileSync(path, 'utf8')) as { pid?: unknown };
    if (doc.pid !== pid) return false;
    rmSync(path, { force: true });
    return true;
  } catch {
    return false;
  }
}
