/**
 * The fenced single writer (DESIGN section 5): a reconcile that outlives
 * its lease is refused by the state it would overwrite, and the lease and
 * membership items of the previous release are read as they are.
 */
import { DeleteCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireLease, LEASE_MS, releaseLease } from '../../lambda/reconciler/lease';
import { packCidrs, readMemberships } from '../../lambda/reconciler/membership';
import { type ReconcileResult, reconcile } from '../../lambda/reconciler/reconcile';
import { METRICS } from '../../lambda/shared/contract';
import { LEASE_FENCE_KEY, RECONCILER_LEASE_KEY, wafSetKey } from '../../lambda/shared/schema';
import { deleteActiveBlock, readHistory } from '../../lambda/state/blocks';
import { type LocalCloud, startLocalCloud } from '../../local/cloud';
import { addressesOf, HOUR, newWorld, putBlocks, ruleBlock, type World } from './env';

let cloud: LocalCloud;

beforeAll(async () => {
  cloud = await startLocalCloud();
});

afterAll(async () => {
  await cloud?.stop();
});

/**
 * Starts a reconcile that stops right before its first UpdateIPSet until
 * `resume()`: a holder paused (a long GC, a frozen process) mid-run.
 */
async function pausedReconcile(w: World, lease: { now: number }) {
  const waf = cloud.clients({ maxAttempts: 1 }).wafv2;
  let resume: () => void = () => {};
  const gate = new Promise<void>((r) => {
    resume = r;
  });
  let reached: () => void = () => {};
  const atUpdate = new Promise<void>((r) => {
    reached = r;
  });
  let paused = false;
  waf.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'UpdateIPSetCommand' && !paused) {
        paused = true;
        reached();
        await gate;
      }
      return next(args);
    },
    { step: 'initialize', name: 'pause' },
  );
  const fenced: string[] = [];
  const done: Promise<ReconcileResult> = reconcile(
    w.reconcileDeps({
      waf,
      leaseNow: () => lease.now,
      metrics: { add: (name, value) => void (value > 0 && fenced.push(name)) },
    }),
  );
  await atUpdate;
  return { resume, done, metrics: fenced };
}

describe('a reconcile paused past its lease', () => {
  it("is refused once another has run, and leaves no address the newer writer's record lacks", async () => {
    const w = await newWorld(cloud);
    const lease = { now: 1_000_000 };
    const x1 = ruleBlock(w, '192.0.2.1');
    await putBlocks(w, [x1]);
    const a = await pausedReconcile(w, lease);

    // Meanwhile .1's block is lifted and .2 is blocked; A's lease runs out.
    await deleteActiveBlock(w.ddb, w.tableName, x1);
    const x2 = ruleBlock(w, '192.0.2.2', { until: Math.floor(w.clock / 1000) + HOUR });
    await putBlocks(w, [x2]);
    lease.now += LEASE_MS + 1;
    const b = await reconcile(w.reconcileDeps({ leaseNow: () => lease.now }));
    expect(b).toMatchObject({ added: ['192.0.2.2/32'], fenced: false });

    a.resume();
    const stale = await a.done;
    expect(stale.fenced).toBe(true);
    expect(a.metrics).toContain(METRICS.fencedWrites);
    expect(addressesOf(w, 0)).toEqual(['192.0.2.2/32']);
    const item = await w.ddb.send(
      new GetCommand({ TableName: w.tableName, Key: wafSetKey(w.ipSets[0]!.name) }),
    );
    expect(item.Item?.fence).toBe(2);

    // .2's block ends: it leaves WAF. Nothing stays blocked for good.
    w.clock += 2 * HOUR * 1000;
    lease.now += 1;
    const later = await reconcile(w.reconcileDeps({ leaseNow: () => lease.now }));
    expect(later.removed).toEqual(['192.0.2.2/32']);
    expect(addressesOf(w, 0)).toEqual([]);
  });

  it('has its late update taken out by the next writer, who kept its pending adds', async () => {
    const w = await newWorld(cloud);
    const lease = { now: 5_000_000 };
    const x1 = ruleBlock(w, '192.0.2.1');
    await putBlocks(w, [x1]);
    const a = await pausedReconcile(w, lease);
    await deleteActiveBlock(w.ddb, w.tableName, x1);
    lease.now += LEASE_MS + 1;
    // B has nothing to write, so A's token stays good and its update lands after B.
    const b = await reconcile(w.reconcileDeps({ leaseNow: () => lease.now }));
    expect(b.updates).toBe(0);
    a.resume();
    expect((await a.done).fenced).toBe(true);
    expect(addressesOf(w, 0)).toEqual(['192.0.2.1/32']);
    w.clock += 60_000;
    lease.now += 1;
    const c = await reconcile(w.reconcileDeps({ leaseNow: () => lease.now }));
    expect(c).toMatchObject({ removed: ['192.0.2.1/32'], consoleUnblocks: [] });
    expect(addressesOf(w, 0)).toEqual([]);
    expect(await readHistory(w.ddb, w.tableName, '192.0.2.1')).toEqual([]);
  });
});

describe('the lease and its fencing counter', () => {
  it('never goes backwards, and a release expires the lease without deleting anything', async () => {
    const w = await newWorld(cloud);
    const first = await acquireLease(w.ddb, w.tableName, 'a', 10);
    await releaseLease(w.ddb, w.tableName, 'a', 1234);
    const lease = await w.ddb.send(
      new GetCommand({ TableName: w.tableName, Key: RECONCILER_LEASE_KEY }),
    );
    expect(lease.Item).toMatchObject({ owner: 'a', expiresAt: 0, lastWriteAt: 1234 });
    const second = await acquireLease(w.ddb, w.tableName, 'b', 11);
    expect(second).toMatchObject({ lastWriteAt: 1234 });
    expect(second!.fence).toBeGreaterThan(first!.fence);
  });

  it('reads the lease item of the previous release, and excludes a previous-release writer both ways', async () => {
    const w = await newWorld(cloud);
    const t = 50_000_000;
    // The previous release's reconciler holds the lease: its item has no fence.
    await w.ddb.send(
      new PutCommand({
        TableName: w.tableName,
        Item: { ...RECONCILER_LEASE_KEY, owner: 'old', expiresAt: t + 90_000 },
      }),
    );
    expect(await acquireLease(w.ddb, w.tableName, 'new', t)).toBeNull();
    // Its lease runs out: the new code takes it, with the first fencing token.
    const taken = await acquireLease(w.ddb, w.tableName, 'new', t + 90_001);
    expect(taken).toMatchObject({ fence: 1, lastWriteAt: 0 });
    // The previous release's acquire (a conditional put of the same item) is refused now...
    const oldAcquire = (now: number) =>
      w.ddb.send(
        new PutCommand({
          TableName: w.tableName,
          Item: { ...RECONCILER_LEASE_KEY, owner: 'old', expiresAt: now + 90_000 },
          ConditionExpression: 'attribute_not_exists(pk) OR expiresAt < :now OR #owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':now': now, ':owner': 'old' },
        }),
      );
    await expect(oldAcquire(t + 90_002)).rejects.toMatchObject({
      name: 'ConditionalCheckFailedException',
    });
    // ...and once the new holder releases, it may take the lease (replacing the item
    // whole), which keeps the new code out until it deletes it, as it did.
    await releaseLease(w.ddb, w.tableName, 'new');
    await oldAcquire(t + 90_003);
    expect(await acquireLease(w.ddb, w.tableName, 'new', t + 90_004)).toBeNull();
    await w.ddb.send(new DeleteCommand({ TableName: w.tableName, Key: RECONCILER_LEASE_KEY }));
    // The counter lives apart from the item the previous release replaces: it goes on.
    expect(await acquireLease(w.ddb, w.tableName, 'new', t + 90_005)).toMatchObject({ fence: 2 });
    const counter = await w.ddb.send(
      new GetCommand({ TableName: w.tableName, Key: LEASE_FENCE_KEY }),
    );
    expect(counter.Item?.fence).toBe(2);
  });

  it("reads the previous release's membership items: its confirmed addresses and write time", async () => {
    const w = await newWorld(cloud, { preset: [['192.0.2.1/32', '192.0.2.2/32']] });
    await putBlocks(w, [ruleBlock(w, '192.0.2.1'), ruleBlock(w, '192.0.2.2')]);
    // As the previous release wrote it: a, p, r and at (seconds), no tokens, no fence.
    await w.ddb.send(
      new PutCommand({
        TableName: w.tableName,
        Item: {
          ...wafSetKey(w.ipSets[0]!.name),
          a: packCidrs(['192.0.2.1/32', '192.0.2.2/32']),
          p: packCidrs([]),
          r: packCidrs([]),
          at: Math.floor(w.clock / 1000) - 60,
        },
      }),
    );
    const m = (await readMemberships(w.ddb, w.tableName)).get(w.ipSets[0]!.name);
    expect(m).toMatchObject({
      confirmed: ['192.0.2.1/32', '192.0.2.2/32'],
      superseded: [],
      lastToken: null,
      readAt: w.clock - 60_000,
      fence: 0,
    });
    const first = await reconcile(w.reconcileDeps());
    expect(first).toMatchObject({ updates: 0, consoleUnblocks: [], resets: [] });
    // A person then removes one: still a removal, recorded once.
    cloud.waf.setAddresses({ id: w.ipSets[0]!.id }, ['192.0.2.2/32']);
    w.clock += 60_000;
    const second = await reconcile(w.reconcileDeps());
    expect(second.consoleUnblocks).toEqual(['192.0.2.1']);
    const after = (await readMemberships(w.ddb, w.tableName)).get(w.ipSets[0]!.name);
    expect(after).toMatchObject({ confirmed: ['192.0.2.2/32'] });
    expect(after?.fence).toBeGreaterThan(0);
  });
});
