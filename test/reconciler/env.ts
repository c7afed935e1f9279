/**
 * Test fixtures for the reconciler and the operator commands: the local
 * cloud (dynalite and the WAF emulator on 127.0.0.1, real SDK v3 clients),
 * a fresh state table and fresh IP sets per test, a settable pipeline
 * clock, and factories of active blocks.
 */
import { randomUUID } from 'node:crypto';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { parseConfig } from '../../lambda/core/config';
import { guardFor } from '../../lambda/core/guard';
import type { EdgebanConfig } from '../../lambda/core/types';
import type { IpSetRef, ReconcileDeps } from '../../lambda/reconciler/reconcile';
import { type ActiveBlock, putActiveBlock } from '../../lambda/state/blocks';
import type { OperatorDeps } from '../../lambda/state/operator';
import { ensureTable } from '../../lambda/state/table';
import type { LocalCloud } from '../../local/cloud';

/** 2024-05-01T10:00:00Z in epoch milliseconds. */
export const T0 = Date.UTC(2024, 4, 1, 10, 0, 0);
export const HOUR = 3600;

/** One test's world: its table, its IP sets, its clock. */
export interface World {
  readonly cloud: LocalCloud;
  readonly ddb: DynamoDBDocumentClient;
  readonly tableName: string;
  readonly config: EdgebanConfig;
  readonly ipSets: IpSetRef[];
  /** Epoch ms; tests move it. */
  clock: number;
  reconcileDeps(extra?: Partial<ReconcileDeps>): ReconcileDeps;
  operatorDeps(): OperatorDeps;
}

/** Options of {@link newWorld}. */
export interface WorldOptions {
  /** The `edgeban` config object, before parsing. */
  readonly config?: Record<string, unknown>;
  /** Addresses already in each new set, by set index. */
  readonly preset?: readonly (readonly string[])[];
}

/**
 * A fresh table and fresh IP sets (IPv4 sets first, then IPv6, as the
 * config's `ipSets` counts them) in an emptied emulator.
 */
export async function newWorld(cloud: LocalCloud, options: WorldOptions = {}): Promise<World> {
  cloud.waf.reset();
  // One attempt per call: reconcile retries by itself, re-reading the set first.
  const { dynamodb, wafv2 } = cloud.clients({ maxAttempts: 1 });
  const ddb = DynamoDBDocumentClient.from(dynamodb, {
    marshallOptions: { removeUndefinedValues: true },
  });
  const tableName = `edgeban-${randomUUID()}`;
  await ensureTable(dynamodb, tableName);
  const config = parseConfig({
    rules: [
      { name: 'flood', threshold: 100, window: '5m' },
      { name: 'login', threshold: 10, window: '1m', method: 'POST', path: '/login' },
    ],
    ...options.config,
  });
  const ipSets: IpSetRef[] = [];
  const versions = [
    ...Array.from({ length: config.ipSets.ipv4 }, () => 'IPV4' as const),
    ...Array.from({ length: config.ipSets.ipv6 }, () => 'IPV6' as const),
  ];
  versions.forEach((version, i) => {
    const s = cloud.waf.createIpSet({
      name: `edgeban-${version.toLowerCase()}-${i}`,
      scope: 'CLOUDFRONT',
      ipAddressVersion: version,
      addresses: [...(options.preset?.[i] ?? [])],
      description: 'edgeban blocklist',
    });
    ipSets.push({ name: s.name, id: s.id, arn: s.arn, version, scope: 'CLOUDFRONT' });
  });
  const guard = guardFor(config.allowlist);
  const world: World = {
    cloud,
    ddb,
    tableName,
    config,
    ipSets,
    clock: T0,
    reconcileDeps: (extra = {}) => ({
      ddb,
      tableName,
      waf: wafv2,
      ipSets,
      config,
      guard,
      now: () => world.clock,
      sleep: async () => {},
      ...extra,
    }),
    operatorDeps: () => ({ ddb, tableName, config, guard, now: () => world.clock }),
  };
  return world;
}

/** An active rule block as ingest writes it, starting at the world's clock. */
export function ruleBlock(
  world: World,
  key: string,
  overrides: Partial<ActiveBlock> = {},
): ActiveBlock {
  const start = Math.floor(world.clock / 1000);
  return {
    key,
    rule: 'flood',
    source: 'rule',
    start,
    until: start + 4 * HOUR,
    offences: 1,
    peak: 150,
    window: 5,
    firstExceeded: start - 60,
    reason: '150 requests in 5m over threshold 100',
    by: 'edgeban',
    ...overrides,
  };
}

/** Writes active blocks, a few at a time. */
export async function putBlocks(world: World, blocks: readonly ActiveBlock[]): Promise<void> {
  for (let i = 0; i < blocks.length; i += 50) {
    await Promise.all(
      blocks.slice(i, i + 50).map((b) => putActiveBlock(world.ddb, world.tableName, b)),
    );
  }
}

/** Addresses of a set in the emulator, sorted. */
export function addressesOf(world: World, index: number): string[] {
  const ref = world.ipSets[index];
  if (ref === undefined) throw new Error(`no IP set ${index}`);
  return [...world.cloud.waf.ipSet({ id: ref.id }).addresses].sort();
}

/** `n` distinct documentation-range IPv4 addresses (198.18.0.0/15 is benchmark space, not guarded). */
export function manyAddresses(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(`198.18.${Math.floor(i / 250)}.${(i % 250) + 1}`);
  return out;
}
