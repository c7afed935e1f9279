import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconcile } from '../../lambda/reconciler/reconcile';
import { INGEST_STATUS_KEY } from '../../lambda/shared/schema';
import { readActiveBlocks, readModeOverride } from '../../lambda/state/blocks';
import {
  checkAddress,
  history,
  listBlocks,
  manualBlock,
  OperatorInputError,
  OperatorRefusedError,
  setMode,
  status,
  unblock,
} from '../../lambda/state/operator';
import { readPairState } from '../../lambda/state/pairs';
import { type LocalCloud, startLocalCloud } from '../../local/cloud';
import { addressesOf, HOUR, newWorld, putBlocks, ruleBlock, T0 } from './env';

let cloud: LocalCloud;

beforeAll(async () => {
  cloud = await startLocalCloud();
});

afterAll(async () => {
  await cloud?.stop();
});

const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

async function refusal(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof Error)) throw new Error('expected a rejection');
  return err;
}

describe('manualBlock', () => {
  it('returns the manual block with rule, firstExceeded and offences null', async () => {
    const w = await newWorld(cloud);
    const block = await manualBlock(w.operatorDeps(), '192.0.2.7', {
      reason: 'scanner',
      by: 'alice',
    });
    expect(block).toEqual({
      key: '192.0.2.7',
      rule: null,
      source: 'manual',
      reason: 'scanner',
      by: 'alice',
      firstExceeded: null,
      blockedUntil: iso(T0 + 4 * HOUR * 1000),
      offences: null,
      inWaf: false,
    });
  });

  it('blocks a CIDR for the given time, and the reconciler puts it in WAF', async () => {
    const w = await newWorld(cloud);
    const block = await manualBlock(w.operatorDeps(), '2001:db8:5::/48', {
      forSeconds: 600,
      by: 'bob',
    });
    expect(block).toMatchObject({
      key: '2001:db8:5::/48',
      blockedUntil: iso(T0 + 600_000),
      reason: null,
    });
    await reconcile(w.reconcileDeps());
    expect(addressesOf(w, 1)).toEqual(['2001:db8:5::/48']);
    expect((await listBlocks(w.operatorDeps())).blocks[0]?.inWaf).toBe(true);
  });

  it('refuses a guarded address, naming the range', async () => {
    const w = await newWorld(cloud);
    const err = await refusal(manualBlock(w.operatorDeps(), '10.1.2.3', { by: 'alice' }));
    expect(err).toBeInstanceOf(OperatorRefusedError);
    expect(err.message).toMatch(/10\.0\.0\.0\/8 \(private\)/);
    expect(await readActiveBlocks(w.ddb, w.tableName)).toEqual([]);
  });

  it('refuses a range that overlaps a guarded one', async () => {
    const w = await newWorld(cloud, { config: { allowlist: ['198.51.100.77'] } });
    const err = await refusal(manualBlock(w.operatorDeps(), '198.51.100.0/24', { by: 'alice' }));
    expect(err).toBeInstanceOf(OperatorRefusedError);
    expect(err.message).toMatch(/allowlist 198\.51\.100\.77\/32/);
  });

  it('refuses a range wider than minPrefix', async () => {
    const w = await newWorld(cloud);
    const err = await refusal(manualBlock(w.operatorDeps(), '198.18.0.0/15', { by: 'alice' }));
    expect(err).toBeInstanceOf(OperatorRefusedError);
    expect(err.message).toMatch(/wider than minPrefix \/16/);
  });

  it('rejects text that is not an address', async () => {
    const w = await newWorld(cloud);
    const err = await refusal(manualBlock(w.operatorDeps(), '192.0.2.300', { by: 'alice' }));
    expect(err).toBeInstanceOf(OperatorInputError);
  });
});

describe('listBlocks', () => {
  it('lists rule blocks with peak and window, manual blocks after them, by key', async () => {
    const w = await newWorld(cloud);
    const start = Math.floor(T0 / 1000);
    await putBlocks(w, [
      ruleBlock(w, '192.0.2.9', { rule: 'login', window: 1, peak: 12, offences: 2 }),
      ruleBlock(w, '192.0.2.7'),
      ruleBlock(w, '192.0.2.9'),
      // Ended, not swept yet: not listed.
      ruleBlock(w, '192.0.2.1', { until: start }),
    ]);
    await manualBlock(w.operatorDeps(), '192.0.2.9', { by: 'alice', reason: 'abuse' });
    await reconcile(w.reconcileDeps());
    w.clock += 1000;
    const { blocks } = await listBlocks(w.operatorDeps());
    expect(blocks.map((b) => [b.key, b.rule])).toEqual([
      ['192.0.2.7', 'flood'],
      ['192.0.2.9', 'flood'],
      ['192.0.2.9', 'login'],
      ['192.0.2.9', null],
    ]);
    expect(blocks[2]).toEqual({
      key: '192.0.2.9',
      rule: 'login',
      source: 'rule',
      reason: '150 requests in 5m over threshold 100',
      by: 'edgeban',
      firstExceeded: iso(T0 - 60_000),
      blockedUntil: iso(T0 + 4 * HOUR * 1000),
      offences: 2,
      inWaf: true,
      peak: 12,
      window: '1m',
    });
    expect(blocks[3]).not.toHaveProperty('peak');
  });
});

describe('checkAddress', () => {
  it('shows the blocks covering an address, a CIDR block included', async () => {
    const w = await newWorld(cloud);
    await putBlocks(w, [ruleBlock(w, '192.0.2.0/24'), ruleBlock(w, '192.0.2.8')]);
    const result = await checkAddress(w.operatorDeps(), '192.0.2.7');
    expect(result).toMatchObject({ ip: '192.0.2.7', blocked: true, guardedBy: null });
    expect(result.blocks.map((b) => b.key)).toEqual(['192.0.2.0/24']);
  });

  it('names the guard of a guarded address that is not blocked', async () => {
    const w = await newWorld(cloud);
    expect(await checkAddress(w.operatorDeps(), '::1')).toEqual({
      ip: '::1',
      blocked: false,
      blocks: [],
      guardedBy: '::1/128 (loopback)',
    });
  });
});

describe('unblock', () => {
  it('ends every block of the key now, restarts its windows, and the reconciler takes it out', async () => {
    const w = await newWorld(cloud);
    await putBlocks(w, [
      ruleBlock(w, '192.0.2.7'),
      ruleBlock(w, '192.0.2.7', { rule: 'login', window: 1 }),
    ]);
    await reconcile(w.reconcileDeps());
    w.clock += 600_000;
    const result = await unblock(w.operatorDeps(), '192.0.2.7', { by: 'alice' });
    expect(result).toMatchObject({ key: '192.0.2.7', at: iso(w.clock), by: 'alice' });
    expect(result.blocks.map((b) => [b.rule, b.blockedUntil])).toEqual([
      ['flood', iso(w.clock)],
      ['login', iso(w.clock)],
    ]);
    expect(await readActiveBlocks(w.ddb, w.tableName)).toEqual([]);
    for (const rule of ['flood', 'login']) {
      const pair = await readPairState(w.ddb, w.tableName, rule, '192.0.2.7');
      expect(pair.state.countFrom).toBe(Math.floor(w.clock / 1000));
    }
    const after = await reconcile(w.reconcileDeps());
    expect(after).toMatchObject({ removed: ['192.0.2.7/32'], consoleUnblocks: [] });
    expect(addressesOf(w, 0)).toEqual([]);
  });

  it('refuses an address inside a blocked CIDR, naming the CIDR', async () => {
    const w = await newWorld(cloud);
    await putBlocks(w, [ruleBlock(w, '192.0.2.0/24')]);
    const err = await refusal(unblock(w.operatorDeps(), '192.0.2.7', { by: 'alice' }));
    expect(err).toBeInstanceOf(OperatorRefusedError);
    expect(err.message).toMatch(/inside the blocked range 192\.0\.2\.0\/24/);
    expect(await readActiveBlocks(w.ddb, w.tableName)).toHaveLength(1);
  });

  it('refuses an address that is not blocked', async () => {
    const w = await newWorld(cloud);
    const err = await refusal(unblock(w.operatorDeps(), '192.0.2.7', { by: 'alice' }));
    expect(err).toBeInstanceOf(OperatorRefusedError);
    expect(err.message).toBe('192.0.2.7 is not blocked');
  });
});

describe('history', () => {
  it('lists the events of the address and of the ranges around it, oldest first', async () => {
    const w = await newWorld(cloud);
    await manualBlock(w.operatorDeps(), '192.0.2.0/24', {
      by: 'alice',
      reason: 'botnet',
      forSeconds: 60,
    });
    w.clock += 30_000;
    await manualBlock(w.operatorDeps(), '192.0.2.7', { by: 'bob' });
    w.clock += 30_000;
    await reconcile(w.reconcileDeps());
    w.clock += 30_000;
    await unblock(w.operatorDeps(), '192.0.2.7', { by: 'bob', reason: 'customer' });
    await manualBlock(w.operatorDeps(), '192.0.3.1', { by: 'carol' });
    const { ip, events } = await history(w.operatorDeps(), '192.0.2.7');
    expect(ip).toBe('192.0.2.7');
    expect(events).toEqual([
      {
        at: iso(T0),
        kind: 'block',
        key: '192.0.2.0/24',
        rule: null,
        by: 'alice',
        reason: 'botnet',
      },
      {
        at: iso(T0 + 30_000),
        kind: 'block',
        key: '192.0.2.7',
        rule: null,
        by: 'bob',
        reason: null,
      },
      {
        at: iso(T0 + 60_000),
        kind: 'expire',
        key: '192.0.2.0/24',
        rule: null,
        by: null,
        reason: null,
      },
      {
        at: iso(T0 + 90_000),
        kind: 'unblock',
        key: '192.0.2.7',
        rule: null,
        by: 'bob',
        reason: 'customer',
      },
    ]);
  });
});

describe('status and setMode', () => {
  it('shows mode, rules, set sizes, the last reconcile and the lag', async () => {
    const w = await newWorld(cloud);
    await putBlocks(w, [ruleBlock(w, '192.0.2.7')]);
    await w.ddb.send(
      new PutCommand({
        TableName: w.tableName,
        Item: { ...INGEST_STATUS_KEY, newestMinute: T0 / 60000 - 5, at: T0 },
      }),
    );
    await reconcile(w.reconcileDeps());
    w.clock += 10_000;
    expect(await status(w.operatorDeps())).toEqual({
      mode: 'block',
      rules: [
        { name: 'flood', threshold: 100, window: '5m', ipv4Prefix: 32, ipv6Prefix: 64 },
        {
          name: 'login',
          threshold: 10,
          window: '1m',
          method: ['POST'],
          path: '/login',
          ipv4Prefix: 32,
          ipv6Prefix: 64,
        },
      ],
      ipSets: [
        { name: w.ipSets[0]!.name, version: 'IPV4', size: 1, capacity: 10_000 },
        { name: w.ipSets[1]!.name, version: 'IPV6', size: 0, capacity: 10_000 },
      ],
      lastReconcile: iso(T0),
      lagSeconds: 310,
      override: null,
    });
  });

  it('pauses into observe and resumes to the configured mode', async () => {
    const w = await newWorld(cloud, { config: { mode: 'count' } });
    expect(await setMode(w.operatorDeps(), 'observe', 'alice')).toEqual({
      mode: 'observe',
      override: 'observe',
      by: 'alice',
      at: iso(T0),
    });
    expect(await readModeOverride(w.ddb, w.tableName)).toEqual({
      mode: 'observe',
      by: 'alice',
      at: T0,
    });
    expect((await status(w.operatorDeps())).mode).toBe('observe');
    expect(await setMode(w.operatorDeps(), null, 'bob')).toEqual({
      mode: 'count',
      override: null,
      by: 'bob',
      at: iso(T0),
    });
    expect(await readModeOverride(w.ddb, w.tableName)).toBeNull();
  });
});
