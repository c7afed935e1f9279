/**
 * The local cloud: S3 (s3rver), DynamoDB (dynalite) and WAFv2 (the
 * project's emulator) on 127.0.0.1, each optionally behind a fault proxy,
 * plus real SDK v3 clients configured for them. Tests, `npm start` and
 * the CLI's `--local` mode all go through here, so the handlers run the
 * same code against it as in Lambda.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { WAFV2Client } from '@aws-sdk/client-wafv2';
import type { S3EventRecord } from 'aws-lambda';
import dynalite from 'dynalite';
import S3rver, { type S3rverEvent } from 's3rver';
import { FaultProxy } from './fault-proxy';
import { type LocalKinesis, type LocalKinesisOptions, startLocalKinesis } from './kinesis';
import { LOCAL_ACCOUNT_ID, WafEmulator, type WafEmulatorOptions } from './waf-emulator';

/** Base URLs of the three services, as clients should use them. */
export interface LocalEndpoints {
  readonly s3: string;
  readonly dynamodb: string;
  readonly wafv2: string;
}

/** A service of the local cloud. */
export type LocalService = keyof LocalEndpoints;

/** SDK clients bound to the local cloud. */
export interface LocalClients {
  readonly s3: S3Client;
  readonly dynamodb: DynamoDBClient;
  readonly wafv2: WAFV2Client;
}

/** Options of {@link localClients}. */
export interface LocalClientOptions {
  /** @default 'us-east-1' */
  readonly region?: string;
  /**
   * Attempts per call, first one included (the SDK's `maxAttempts`).
   * @default 3
   */
  readonly maxAttempts?: number;
  /**
   * Time a request and its response may take before the SDK gives up.
   * @default 30000
   */
  readonly requestTimeoutMs?: number;
}

/** Options of {@link startLocalCloud}. */
export interface LocalCloudOptions {
  /**
   * Put a {@link FaultProxy} in front of every service (`true`) or of the
   * listed ones; `endpoints` then point at the proxies.
   * @default false
   */
  readonly proxies?: boolean | readonly LocalService[];
  /** Seed of the proxies' generators. @default 1 */
  readonly seed?: number;
  /** Options of the WAF emulator. @default - its defaults */
  readonly waf?: WafEmulatorOptions;
  /** Buckets to create at start. @default - none */
  readonly buckets?: readonly string[];
  /**
   * Start kinesalite with one stream (the real-time source).
   * @default - no Kinesis
   */
  readonly kinesis?: LocalKinesisOptions;
  /**
   * Where s3rver keeps objects.
   * @default - a new temporary directory, removed by `stop()`
   */
  readonly s3Directory?: string;
}

/** A running local cloud. */
export interface LocalCloud {
  /** What clients use: the proxy when there is one, else the server. */
  readonly endpoints: LocalEndpoints;
  /** The servers themselves, bypassing any proxy. */
  readonly direct: LocalEndpoints;
  readonly proxies: Readonly<Partial<Record<LocalService, FaultProxy>>>;
  /** The WAF emulator, to steer faults and observe writes. */
  readonly waf: WafEmulator;
  /** kinesalite and its stream, when `kinesis` was given. */
  readonly kinesis: LocalKinesis | undefined;
  /**
   * SDK clients for `endpoints`. Without options the same clients are
   * returned each time; all are destroyed by `stop()`.
   */
  clients(options?: LocalClientOptions): LocalClients;
  /**
   * Calls `listener` with an S3 event record (the shape SQS delivers to
   * the ingest Lambda) for each object created: PutObject, CopyObject,
   * CompleteMultipartUpload. The key is URL-encoded as S3 sends it.
   * @returns a function that removes the listener
   */
  onObjectCreated(listener: (record: S3EventRecord) => void): () => void;
  /** Stops every server and proxy, destroys the clients, removes temp dirs. */
  stop(): Promise<void>;
}

/**
 * Static credentials for the local cloud. s3rver accepts only this key
 * pair; dynalite and the WAF emulator accept any signed request.
 */
export const LOCAL_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

/** Base error of this module. */
export class LocalCloudError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LocalCloudError';
  }
}

/**
 * Builds SDK clients for local endpoints, e.g. those of a discovery file.
 * S3 is path-style with checksums only when required (s3rver knows none
 * of the newer checksum algorithms).
 */
export function localClients(
  endpoints: LocalEndpoints,
  options: LocalClientOptions = {},
): LocalClients {
  const common = {
    region: options.region ?? 'us-east-1',
    credentials: LOCAL_CREDENTIALS,
    maxAttempts: options.maxAttempts ?? 3,
    requestHandler: {
      connectionTimeout: 2_000,
      requestTimeout: options.requestTimeoutMs ?? 30_000,
      throwOnRequestTimeout: true,
    },
  };
  return {
    s3: new S3Client({
      ...common,
      endpoint: endpoints.s3,
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    }),
    dynamodb: new DynamoDBClient({ ...common, endpoint: endpoints.dynamodb }),
    wafv2: new WAFV2Client({ ...common, endpoint: endpoints.wafv2 }),
  };
}

/**
 * Starts S3, DynamoDB and WAFv2 on 127.0.0.1 (free ports).
 *
 * @example
 * const cloud = await startLocalCloud({ buckets: ['logs'], proxies: ['s3'] });
 * const { s3 } = cloud.clients();
 * cloud.proxies.s3?.set({ match: { method: 'GET' }, resetAfterBytes: 4096, once: true });
 * await cloud.stop();
 */
export async function startLocalCloud(options: LocalCloudOptions = {}): Promise<LocalCloud> {
  const cleanups: (() => Promise<void>)[] = [];
  const stopAll = async (): Promise<void> => {
    const errors: unknown[] = [];
    while (cleanups.length > 0) {
      const cleanup = cleanups.pop();
      try {
        await cleanup?.();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) {
      throw new LocalCloudError(`stopping the local cloud failed: ${String(errors[0])}`);
    }
  };
  try {
    const directory = options.s3Directory ?? (await mkdtemp(join(tmpdir(), 'edgeban-s3-')));
    if (options.s3Directory === undefined) {
      cleanups.push(() => rm(directory, { recursive: true, force: true }));
    }
    const s3 = new S3rver({
      port: 0,
      address: '127.0.0.1',
      silent: true,
      directory,
      configureBuckets: (options.buckets ?? []).map((name) => ({ name })),
    });
    const s3Address = await s3.run();
    cleanups.push(() => closeS3rver(s3));

    const dynamo = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    const dynamoPort = await listen(dynamo);
    cleanups.push(() => closeServer(dynamo));

    const waf = await WafEmulator.start(options.waf);
    cleanups.push(() => waf.close());

    const kinesis =
      options.kinesis === undefined ? undefined : await startLocalKinesis(options.kinesis);
    if (kinesis !== undefined) cleanups.push(() => kinesis.close());

    const direct: LocalEndpoints = {
      s3: `http://127.0.0.1:${s3Address.port}`,
      dynamodb: `http://127.0.0.1:${dynamoPort}`,
      wafv2: waf.endpoint,
    };
    const proxied = proxiedServices(options.proxies);
    const proxies: Partial<Record<LocalService, FaultProxy>> = {};
    const endpoints = { ...direct };
    for (const service of proxied) {
      const proxy = await FaultProxy.start(direct[service], { seed: options.seed ?? 1 });
      cleanups.push(() => proxy.close());
      proxies[service] = proxy;
      endpoints[service] = proxy.endpoint;
    }

    const created: LocalClients[] = [];
    cleanups.push(async () => {
      for (const set of created) for (const c of Object.values(set)) c.destroy();
    });
    let shared: LocalClients | undefined;

    const listeners = new Set<(record: S3EventRecord) => void>();
    s3.on('event', (event: S3rverEvent) => {
      for (const raw of event.Records) {
        if (!raw.eventName.startsWith('ObjectCreated:')) continue;
        void completeRecord(s3, raw).then((record) => {
          for (const listener of listeners) listener(record);
        });
      }
    });

    let stopped: Promise<void> | undefined;
    return {
      endpoints,
      direct,
      proxies,
      waf,
      kinesis,
      clients(clientOptions?: LocalClientOptions): LocalClients {
        if (clientOptions === undefined && shared) return shared;
        const set = localClients(endpoints, clientOptions);
        created.push(set);
        if (clientOptions === undefined) shared = set;
        return set;
      },
      onObjectCreated(listener) {
        listeners.add(listener);
        return () => {
          listeners.delete(listener);
        };
      },
      stop() {
        stopped ??= (async () => {
          listeners.clear();
          await stopAll();
        })();
        return stopped;
      },
    };
  } catch (err) {
    await stopAll().catch(() => undefined);
    throw err;
  }
}

/**
 * Encodes an object key as S3 writes it in event notifications: form
 * encoding (a space becomes `+`) with `/` kept, so handlers must decode
 * it exactly as they would in the cloud.
 */
export function encodeEventKey(key: string): string {
  let out = '';
  for (const byte of Buffer.from(key, 'utf8')) {
    const ch = String.fromCharCode(byte);
    if (/[A-Za-z0-9.\-*_/]/.test(ch)) out += ch;
    else if (ch === ' ') out += '+';
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

type RawRecord = S3rverEvent['Records'][number];

async function completeRecord(s3: S3rver, raw: RawRecord): Promise<S3EventRecord> {
  const { bucket, object } = raw.s3;
  let eTag = object.eTag;
  let size = object.size;
  if (eTag === undefined || size === undefined) {
    // s3rver leaves the ETag out of copy events; S3 includes it.
    const metadata = await s3.store.getMetadata(bucket.name, object.key).catch(() => undefined);
    eTag ??= metadata?.etag?.replace(/"/g, '') ?? '';
    size ??= Number(metadata?.['content-length'] ?? 0);
  }
  return {
    eventVersion: '2.1',
    eventSource: 'aws:s3',
    awsRegion: 'us-east-1',
    eventTime: raw.eventTime,
    eventName: raw.eventName,
    userIdentity: { principalId: `AWS:${LOCAL_ACCOUNT_ID}` },
    requestParameters: { sourceIPAddress: '127.0.0.1' },
    responseElements: { 'x-amz-request-id': object.sequencer, 'x-amz-id-2': object.sequencer },
    s3: {
      s3SchemaVersion: '1.0',
      configurationId: 'edgeban-local',
      bucket: {
        name: bucket.name,
        ownerIdentity: { principalId: LOCAL_ACCOUNT_ID },
        arn: `arn:aws:s3:::${bucket.name}`,
      },
      object: { key: encodeEventKey(object.key), size, eTag, sequencer: object.sequencer },
    },
  };
}

function proxiedServices(setting: LocalCloudOptions['proxies']): LocalService[] {
  if (setting === true) return ['s3', 'dynamodb', 'wafv2'];
  if (!setting) return [];
  for (const s of setting) {
    if (!['s3', 'dynamodb', 'wafv2'].includes(s)) {
      throw new LocalCloudError(`proxies must name s3, dynamodb or wafv2, got ${s}`);
    }
  }
  return [...setting];
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

async function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve, reject) =>
    server.close((err) => (err ? reject(err) : resolve())),
  );
  server.closeAllConnections();
  await closed;
}

async function closeS3rver(s3: S3rver): Promise<void> {
  const closed = s3.close();
  s3.httpServer?.closeAllConnections();
  await closed;
}
