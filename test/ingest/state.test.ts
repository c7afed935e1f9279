import {
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
} from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MinuteCounts } from '../../lambda/core/counter';
import { emptyPairState } from '../../lambda/core/decide';
import { TABLE } from '../../lambda/shared/contract';
import { boundKey, boundSlotMinutes } from '../../lambda/shared/schema';
import {
  addBound,
  boundBucket,
  boundId,
  countItems,
  mapLimit,
  objectId,
  putItems,
  readBounds,
  readPairSeries,
  splitByHour,
} from '../../lambda/state/counts';
import {
  keyFitsRule,
  readPairState,
  unblockKeyPairs,
  updatePairState,
  writePairState,
} from '../../lambda/state/pairs';
import { ensureTable } from '../../lambda/state/table';
import { config, startEnv, T0, type TestEnv } from './env';

let env: TestEnv;
beforeAll(async () => {
  env = await startEnv();
});
afterAll(async () => {
  await env?.stop();
});

function series(entries: [number, number][]): MinuteCounts {
  const s = new MinuteCounts();
  for (const [m, c] of entries) s.add(m, c);
  return s.normalize();
}

const exp = (hour: number): number => (hour + 2) * 3600;

describe('ensureTable', () => {
  it('creates the table once and accepts being called again', async () => {
    const name = await env.table();
    await ensureTable(env.cloud.clients().dynamodb, name);
    await env.ddb.send(new PutCommand({ TableName: name, Item: { pk: 'a', sk: 'b' } }));
    const got = await env.ddb.send(new GetCommand({ TableName: name, Key: { pk: 'a', sk: 'b' } }));
    expect(got.Item).toEqual({ pk: 'a', sk: 'b' });
  });
});

describe('splitByHour', () => {
  it('cuts a series at hour boundaries', () => {
    const h = Math.floor(T0 / 60);
    expect(
      splitByHour(
        series([
          [T0 + 58, 1],
          [T0 + 59, 2],
          [T0 + 60, 3],
        ]),
      ),
    ).toEqual([
      { hour: h, minutes: [T0 + 58, T0 + 59], counts: [1, 2] },
      { hour: h + 1, minutes: [T0 + 60], counts: [3] },
    ]);
  });
});

describe('objectId', () => {
  it('depends on bucket, key and ETag, not on ETag quotes', () => {
    const a = objectId('b', 'k', 'abc');
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(objectId('b', 'k', '"abc"')).toBe(a);
    expect(objectId('b', 'k', 'abd')).not.toBe(a);
    expect(objectId('b', 'k2', 'abc')).not.toBe(a);
  });
});

describe('putItems and readPairSeries', () => {
  it('sums the items of several objects per minute and rewrites idempotently', async () => {
    const table = await env.table();
    const a = countItems(
      'flood',
      '192.0.2.7',
      series([
        [T0 + 59, 3],
        [T0 + 60, 4],
      ]),
      'obj-a',
      exp,
    );
    const b = countItems(
      'flood',
      '192.0.2.7',
      series([
        [T0 + 60, 5],
        [T0 + 61, 1],
      ]),
      'obj-b',
      exp,
    );
    const other = countItems('flood', '192.0.2.8', series([[T0 + 60, 100]]), 'obj-a', exp);
    expect(a).toHaveLength(2);
    expect(await putItems(env.ddb, table, [...a, ...b, ...other])).toBe(4);
    // The same object delivered again rewrites the same items: nothing doubles.
    await putItems(env.ddb, table, a);
    const s = await readPairSeries(env.ddb, table, 'flood', '192.0.2.7', T0 + 59, T0 + 61);
    expect(s.minutes).toEqual([T0 + 59, T0 + 60, T0 + 61]);
    expect(s.counts).toEqual([3, 9, 1]);
    const narrow = await readPairSeries(env.ddb, table, 'flood', '192.0.2.7', T0 + 60, T0 + 60);
    expect(narrow.counts).toEqual([9]);
  });

  it('writes more than one batch and pages through a long Query', async () => {
    const table = await env.table();
    const items = Array.from({ length: 60 }, (_, i) =>
      countItems('flood', '2001:db8::/64', series([[T0 + i * 60, i + 1]]), `o${i}`, exp),
    ).flat();
    expect(await putItems(env.ddb, table, items, 3)).toBe(60);
    const s = await readPairSeries(env.ddb, table, 'flood', '2001:db8::/64', T0, T0 + 59 * 60);
    expect(s.counts.reduce((x, y) => x + y, 0)).toBe((60 * 61) / 2);
  });
});

describe('count bounds', () => {
  it('adds per-bucket totals atomically and reads them back', async () => {
    const table = await env.table();
    const slot = Math.floor(T0 / 10);
    const b = boundBucket('192.0.2.7');
    const other = boundBucket('192.0.2.8');
    expect(b).toBeGreaterThanOrEqual(0);
    expect(b).toBeLessThan(256);
    const at = { rule: 'flood', slotMinutes: 10, slot };
    await Promise.all(
      Array.from({ length: 10 }, () =>
        addBound(
          env.ddb,
          table,
          at,
          new Map([
            [b, 7],
            [other, 1],
          ]),
          (slot + 1) * 600 + 3600,
        ),
      ),
    );
    const raw = await env.ddb.send(
      new GetCommand({ TableName: table, Key: boundKey('flood', 10, slot) }),
    );
    expect(raw.Item?.[TABLE.expiresAt]).toBe((slot + 1) * 600 + 3600);
    const read = await readBounds(env.ddb, table, [at, { ...at, slot: slot + 1 }]);
    expect(read.get(boundId('flood', slot))?.get(b)).toBe(other === b ? 80 : 70);
    expect(read.get(boundId('flood', slot + 1))?.size).toBe(0);
  });

  it('spreads keys over the buckets', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 256; i++) seen.add(boundBucket(`192.0.2.${i}`));
    expect(seen.size).toBeGreaterThan(120);
  });
});

describe('boundSlotMinutes', () => {
  it('picks the shortest slot of at least the window, 10 minutes or more', () => {
    expect([1, 5, 10, 11, 60, 61, 1440].map(boundSlotMinutes)).toEqual([
      10, 10, 10, 15, 60, 120, 1440,
    ]);
  });
});

describe('mapLimit', () => {
  it('keeps at most limit calls in flight and the input order', async () => {
    let inFlight = 0;
    let most = 0;
    const out = await mapLimit([5, 1, 4, 2, 3], 2, async (x) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, x));
      inFlight--;
      return x * 10;
    });
    expect(out).toEqual([50, 10, 40, 20, 30]);
    expect(most).toBe(2);
  });

  it('rejects with the first error', async () => {
    await expect(
      mapLimit([1, 2, 3], 2, async (x) => {
        if (x === 2) throw new Error('boom');
        return x;
      }),
    ).rejects.toThrow('boom');
  });
});

describe('pair state', () => {
  it('reads a missing pair as a fresh state with version 0', async () => {
    const table = await env.table();
    expect(await readPairState(env.ddb, table, 'flood', '192.0.2.7')).toEqual({
      state: emptyPairState(),
      version: 0,
      unblockedBy: null,
    });
  });

  it('writes conditionally on the version', async () => {
    const table = await env.table();
    const state = {
      peak: 12,
      firstExceeded: T0 * 60,
      blocks: [{ offence: 1, start: 1, until: 2 }],
      countFrom: null,
    };
    expect(await writePairState(env.ddb, table, 'flood', 'k', state, 0)).toBe(1);
    expect(await writePairState(env.ddb, table, 'flood', 'k', state, 0)).toBeNull();
    expect(await writePairState(env.ddb, table, 'flood', 'k', { ...state, peak: 13 }, 1)).toBe(2);
    expect(await writePairState(env.ddb, table, 'flood', 'k', state, 1)).toBeNull();
    const back = await readPairState(env.ddb, table, 'flood', 'k');
    expect(back.version).toBe(2);
    expect(back.state).toEqual({ ...state, peak: 13 });
  });

  it('redoes its change when another writer lands between its read and its write', async () => {
    const table = await env.table();
    const first = { ...emptyPairState(), peak: 3, firstExceeded: 60 };
    await writePairState(env.ddb, table, 'flood', 'k', first, 0);
    let intercepted = false;
    // A client that lets a competing write through just before the first conditional put.
    const racy = {
      send: async (command: unknown) => {
        if (command instanceof PutCommand && !intercepted) {
          intercepted = true;
          const other = { ...emptyPairState(), peak: 40, firstExceeded: 60 };
          expect(await writePairState(env.ddb, table, 'flood', 'k', other, 1)).toBe(2);
        }
        return env.ddb.send(command as PutCommand);
      },
    } as unknown as DynamoDBDocumentClient;
    let runs = 0;
    const res = await updatePairState(racy, table, 'flood', 'k', ({ state }) => {
      runs++;
      state.peak += 1;
      return {};
    });
    expect(runs).toBe(2);
    expect(res.conflicts).toBe(1);
    const back = await readPairState(env.ddb, table, 'flood', 'k');
    expect(back.state.peak).toBe(41);
    expect(back.version).toBe(3);
  });

  it('loses none of several concurrent updates', async () => {
    const table = await env.table();
    await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        updatePairState(env.ddb, table, 'flood', 'k', ({ state }) => {
          state.blocks.push({ offence: i + 1, start: i, until: i + 1 });
          return {};
        }),
      ),
    );
    const back = await readPairState(env.ddb, table, 'flood', 'k');
    expect(back.version).toBe(6);
    expect(back.state.blocks.map((b) => b.offence).sort()).toEqual([1, 2, 3, 4, 5, 6]);
  });
});

describe('keyFitsRule', () => {
  const cfg = config({
    rules: [
      { name: 'a', threshold: 5, window: '1m' },
      { name: 'b', threshold: 5, window: '1m', ipv4Prefix: 24, ipv6Prefix: 48 },
    ],
  });
  const [a, b] = cfg.rules as [(typeof cfg.rules)[0], (typeof cfg.rules)[0]];

  it('accepts keys written as the rule writes them', () => {
    expect(keyFitsRule('192.0.2.7', a)).toBe(true);
    expect(keyFitsRule('2001:db8::/64', a)).toBe(true);
    expect(keyFitsRule('192.0.2.0/24', b)).toBe(true);
    expect(keyFitsRule('2001:db8::/48', b)).toBe(true);
  });

  it('refuses other prefixes and spellings', () => {
    expect(keyFitsRule('192.0.2.0/24', a)).toBe(false);
    expect(keyFitsRule('192.0.2.7', b)).toBe(false);
    expect(keyFitsRule('192.0.2.7/32', a)).toBe(false);
    expect(keyFitsRule('2001:db8::1', a)).toBe(false);
  });
});

describe('unblockKeyPairs', () => {
  it('ends the blocks of every rule of the key and sets countFrom, with a version bump', async () => {
    const table = await env.table();
    const cfg = config({
      rules: [
        { name: 'flood', threshold: 5, window: '5m' },
        { name: 'login', threshold: 2, window: '5m', method: 'POST' },
        { name: 'net', threshold: 2, window: '5m', ipv4Prefix: 24 },
      ],
    });
    const block = { offence: 1, start: T0 * 60, until: T0 * 60 + 4 * 3600 };
    await writePairState(
      env.ddb,
      table,
      'flood',
      '192.0.2.7',
      {
        peak: 9,
        firstExceeded: T0 * 60,
        blocks: [block],
        countFrom: null,
      },
      0,
    );
    const at = T0 * 60 + 600;
    const out = await unblockKeyPairs(env.ddb, table, cfg, '192.0.2.7', at, 'alice');
    expect(out.map((p) => p.rule)).toEqual(['flood', 'login']);
    const flood = await readPairState(env.ddb, table, 'flood', '192.0.2.7');
    expect(flood.version).toBe(2);
    expect(flood.unblockedBy).toBe('alice');
    expect(flood.state.blocks).toEqual([{ ...block, until: at }]);
    expect(flood.state.countFrom).toBe(at);
    const login = await readPairState(env.ddb, table, 'login', '192.0.2.7');
    expect(login.version).toBe(1);
    expect(login.state.countFrom).toBe(at);
    expect(login.state.firstExceeded).toBeNull();
    // The /24 rule's key can not be a bare address: untouched.
    expect((await readPairState(env.ddb, table, 'net', '192.0.2.7')).version).toBe(0);
    // Repeating it changes nothing.
    await unblockKeyPairs(env.ddb, table, cfg, '192.0.2.7', at, 'alice');
    expect((await readPairState(env.ddb, table, 'flood', '192.0.2.7')).version).toBe(2);
  });
});

describe('putItems with throttling', () => {
  it('retries the items DynamoDB leaves unprocessed', async () => {
    const table = await env.table();
    let batches = 0;
    // DynamoDB may accept part of a batch and hand the rest back as UnprocessedItems.
    const partial = {
      send: async (command: BatchWriteCommand) => {
        batches++;
        const requests = command.input.RequestItems?.[table] ?? [];
        if (batches > 1 || requests.length < 2) return env.ddb.send(command);
        const half = Math.floor(requests.length / 2);
        await env.ddb.send(
          new BatchWriteCommand({ RequestItems: { [table]: requests.slice(0, half) } }),
        );
        return { UnprocessedItems: { [table]: requests.slice(half) } };
      },
    } as unknown as DynamoDBDocumentClient;
    const items = Array.from({ length: 10 }, (_, i) =>
      countItems('flood', `192.0.2.${i + 1}`, series([[T0, i + 1]]), 'o', exp),
    ).flat();
    expect(await putItems(partial, table, items)).toBe(15);
    expect(batches).toBe(2);
    for (let i = 0; i < 10; i++) {
      const s = await readPairSeries(env.ddb, table, 'flood', `192.0.2.${i + 1}`, T0, T0);
      expect(s.counts).toEqual([i + 1]);
    }
  });
});
