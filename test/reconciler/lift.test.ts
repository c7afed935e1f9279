/**
 * Lifting many blocks on purpose (`unblock --rule` / `--all`) and putting
 * back blocks that were ended as console removals (`reinstate`), over the
 * state table in dynalite and through the reconciler to the WAF emulator.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlockRecord } from '../../lambda/core/types';
import { CONSOLE_ACTOR, reconcile } from '../../lambda/reconciler/reconcile';
import {
  type ActiveBlock,
  endKeyBlocks,
  readActiveBlocks,
  readHistory,
} from '../../lambda/state/blocks';
import {
  blocksToLift,
  liftBlocks,
  planReinstate,
  reinstate,
  reinstateLimit,
  reinstateResult,
} from '../../lambda/state/lift';
import {
  manualBlock,
  OperatorInputError,
  OperatorRefusedError,
  unblock,
} from '../../lambda/state/operator';
import { readPairState, writePairState } from '../../lambda/state/pairs';
import { type LocalCloud, startLocalCloud } from '../../local/cloud';
import { addressesOf, HOUR, newWorld, putBlocks, ruleBlock, T0, type World } from './env';

let cloud: LocalCloud;

beforeAll(async () => {
  cloud = await startLocalCloud();
});

afterAll(async () => {
  await cloud?.stop();
});

const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const T0S = T0 / 1000;

/** A rule block with the pair state ingest writes beside it (offence n of its pair). */
async function ruleBlockWithState(
  w: World,
  key: string,
  rule: 'flood' | 'login',
  n = 1,
): Promise<ActiveBlock> {
  const r = w.config.rules.find((x) => x.name === rule)!;
  const base = r.durationSeconds ?? w.config.block.durationSeconds;
  const start = T0S - 60;
  const blocks: BlockRecord[] = [];
  for (let i = 1; i < n; i++)
    blocks.push({ offence: i, start: start - 86400 * i, until: start - 86400 * i + 60 });
  const until =
    start + Math.min(w.config.block.maxDurationSeconds, base * w.config.block.factor ** (n - 1));
  blocks.push({ offence: n, start, until });
  const version = await writePairState(
    w.ddb,
    w.tableName,
    rule,
    key,
    { peak: r.threshold + 50, firstExceeded: start - 120, blocks, countFrom: null },
    0,
    { windowMinutes: r.windowMinutes },
  );
  expect(version).toBe(1);
  const block = ruleBlock(w, key, {
    rule,
    start,
    until,
    offences: n,
    peak: r.threshold + 50,
    window: r.windowMinutes,
    firstExceeded: start - 120,
  });
  await putBlocks(w, [block]);
  return block;
}

describe('unblock --rule / --all', () => {
  it("lifts one rule's blocks and leaves the other rules' blocks of the same keys", async () => {
    const w = await newWorld(cloud);
    await ruleBlockWithState(w, '198.51.100.1', 'flood');
    await ruleBlockWithState(w, '198.51.100.2', 'flood');
    await ruleBlockWithState(w, '198.51.100.2', 'login');
    await ruleBlockWithState(w, '198.51.100.3', 'login');
    await reconcile(w.reconcileDeps());
    expect(addressesOf(w, 0)).toEqual(['198.51.100.1/32', '198.51.100.2/32', '198.51.100.3/32']);

    w.clock = T0 + 60_000;
    const deps = w.operatorDeps();
    const blocks = await blocksToLift(deps, { rule: 'flood' });
    expect(blocks.map((b) => b.key)).toEqual(['198.51.100.1', '198.51.100.2']);
    const result = await liftBlocks(deps, { rule: 'flood' }, blocks, {
      by: 'alice',
      reason: 'bad threshold',
    });
    expect(result.at).toBe(iso(T0 + 60_000));
    expect(result.unblocked.map((b) => [b.key, b.rule, b.blockedUntil])).toEqual([
      ['198.51.100.1', 'flood', iso(T0 + 60_000)],
      ['198.51.100.2', 'flood', iso(T0 + 60_000)],
    ]);
    const left = await readActiveBlocks(w.ddb, w.tableName);
    expect(left.map((b) => `${b.key}#${b.rule}`).sort()).toEqual([
      '198.51.100.2#login',
      '198.51.100.3#login',
    ]);
    // Only new traffic can block the pair again; the login pair of the same key is untouched.
    const flood = await readPairState(w.ddb, w.tableName, 'flood', '198.51.100.2');
    expect(flood.state.countFrom).toBe(T0S + 60);
    expect(flood.unblockedBy).toBe('alice');
    expect(
      (await readPairState(w.ddb, w.tableName, 'login', '198.51.100.2')).state.countFrom,
    ).toBeNull();
    const events = await readHistory(w.ddb, w.tableName, '198.51.100.1');
    expect(events).toEqual([
      {
        at: T0 + 60_000,
        kind: 'unblock',
        key: '198.51.100.1',
        rule: 'flood',
        by: 'alice',
        reason: 'bad threshold',
      },
    ]);

    await reconcile(w.reconcileDeps());
    expect(addressesOf(w, 0)).toEqual(['198.51.100.2/32', '198.51.100.3/32']);
  });

  it('lifts every block, manual ones too, and WAF empties', async () => {
    const w = await newWorld(cloud);
    await ruleBlockWithState(w, '198.51.100.1', 'flood');
    await ruleBlockWithState(w, '2001:db8::/64', 'flood');
    await manualBlock(w.operatorDeps(), '203.0.113.0/24', { by: 'bob', reason: 'scanner' });
    await reconcile(w.reconcileDeps());
    expect(addressesOf(w, 1)).toEqual(['2001:db8::/64']);

    const deps = w.operatorDeps();
    const blocks = await blocksToLift(deps, { all: true });
    expect(blocks).toHaveLength(3);
    const result = await liftBlocks(deps, { all: true }, blocks, { by: 'alice' });
    expect(result.unblocked.map((b) => b.key)).toEqual([
      '198.51.100.1',
      '203.0.113.0/24',
      '2001:db8::/64',
    ]);
    expect(await readActiveBlocks(w.ddb, w.tableName)).toEqual([]);
    await reconcile(w.reconcileDeps());
    expect([addressesOf(w, 0), addressesOf(w, 1)]).toEqual([[], []]);
  });

  it('refuses a rule with no active block, and names the rules for an unknown one', async () => {
    const w = await newWorld(cloud);
    await expect(blocksToLift(w.operatorDeps(), { rule: 'login' })).rejects.toThrow(
      new OperatorRefusedError('no active block of rule login'),
    );
    await expect(blocksToLift(w.operatorDeps(), { rule: 'nosuch' })).rejects.toThrow(
      new OperatorInputError('no rule nosuch in the config (rules: flood, login)'),
    );
    await expect(blocksToLift(w.operatorDeps(), { all: true })).rejects.toThrow(
      OperatorRefusedError,
    );
  });

  it('lifts many blocks in one go, a few writes at a time', async () => {
    const w = await newWorld(cloud);
    const keys = Array.from({ length: 60 }, (_, i) => `198.18.${i}.1`);
    await putBlocks(
      w,
      keys.map((k) => ruleBlock(w, k)),
    );
    await reconcile(w.reconcileDeps());
    const deps = w.operatorDeps();
    const result = await liftBlocks(
      deps,
      { rule: 'flood' },
      await blocksToLift(deps, { rule: 'flood' }),
      { by: 'alice' },
    );
    expect(result.unblocked).toHaveLength(60);
    await reconcile(w.reconcileDeps());
    expect(addressesOf(w, 0)).toEqual([]);
  });
});

/** What a reconciler that took every loss for a person's removal did: `unblock` by `console`. */
async function endedAsConsoleRemoval(w: World, key: string, atMs: number): Promise<void> {
  const active = await readActiveBlocks(w.ddb, w.tableName);
  await endKeyBlocks(w.ddb, w.tableName, w.config, key, active, {
    ms: atMs,
    by: CONSOLE_ACTOR,
    reason: `removed from IP set ${w.ipSets[0]!.name}`,
  });
}

describe('reinstate', () => {
  it('puts back the blocks a reset ended as console removals, with the end they had', async () => {
    const w = await newWorld(cloud);
    const a = await ruleBlockWithState(w, '198.51.100.1', 'flood');
    const b = await ruleBlockWithState(w, '198.51.100.2', 'login', 2);
    await reconcile(w.reconcileDeps());
    // The wipe, taken for removals ten minutes in.
    const removedAt = T0 + 600_000;
    await endedAsConsoleRemoval(w, a.key, removedAt);
    await endedAsConsoleRemoval(w, b.key, removedAt);
    w.clock = T0 + 3_600_000;
    await reconcile(w.reconcileDeps());
    expect(addressesOf(w, 0)).toEqual([]);

    const deps = w.operatorDeps();
    const plan = await planReinstate(deps, T0, T0 + 1_200_000);
    expect(plan.skipped).toEqual([]);
    expect(plan.restore.map((c) => [c.key, c.rule, c.removedAt, c.block?.until])).toEqual([
      [a.key, 'flood', removedAt, a.until],
      [b.key, 'login', removedAt, b.until],
    ]);
    // Offence 2 of login: 4h x 2 (the config's duration and factor).
    expect(b.until - b.start).toBe(8 * HOUR);

    const done = await reinstate(deps, plan, 'alice');
    expect(done.map((x) => x.key)).toEqual([a.key, b.key]);
    const active = await readActiveBlocks(w.ddb, w.tableName);
    expect(active.map((x) => [x.key, x.rule, x.start, x.until, x.offences]).sort()).toEqual([
      [a.key, 'flood', a.start, a.until, 1],
      [b.key, 'login', b.start, b.until, 2],
    ]);
    const pair = await readPairState(w.ddb, w.tableName, 'login', b.key);
    expect(pair.state.blocks.at(-1)).toEqual({ offence: 2, start: b.start, until: b.until });
    const history = await readHistory(w.ddb, w.tableName, a.key);
    expect(history.at(-1)).toMatchObject({
      at: T0 + 3_600_000,
      kind: 'block',
      rule: 'flood',
      by: 'alice',
      reason: expect.stringMatching(/^reinstated: ended at 2024-05-01T10:10:00Z as a removal/),
    });
    expect(
      reinstateResult(plan, done, reinstateLimit(w.operatorDeps())).reinstated.map(
        (v) => v.blockedUntil,
      ),
    ).toEqual([iso(a.until * 1000), iso(b.until * 1000)]);

    await reconcile(w.reconcileDeps());
    expect(addressesOf(w, 0)).toEqual(['198.51.100.1/32', '198.51.100.2/32']);
    // Done once: a second run finds nothing left to put back.
    const again = await planReinstate(deps, T0, T0 + 1_200_000);
    expect(again.restore).toEqual([]);
    expect(again.skipped.map((s) => s.skip)).toEqual([
      expect.stringMatching(/^blocked again since/),
      expect.stringMatching(/^blocked again since/),
    ]);
  });

  it("leaves what a person did since, what has ended anyway, manual blocks and others' ranges alone", async () => {
    const w = await newWorld(cloud, { config: { block: { duration: '1h' } } });
    const since = await ruleBlockWithState(w, '198.51.100.1', 'flood');
    const short = await ruleBlockWithState(w, '198.51.100.2', 'login');
    const outside = await ruleBlockWithState(w, '198.51.100.3', 'flood');
    await manualBlock(w.operatorDeps(), '198.51.100.4', { by: 'bob' });
    await endedAsConsoleRemoval(w, since.key, T0 + 60_000);
    await endedAsConsoleRemoval(w, short.key, T0 + 60_000);
    await endedAsConsoleRemoval(w, '198.51.100.4', T0 + 60_000);
    await endedAsConsoleRemoval(w, outside.key, T0 + 900_000);
    // A person blocks and lifts 198.51.100.1 again afterwards.
    w.clock = T0 + 120_000;
    await manualBlock(w.operatorDeps(), since.key, { by: 'carol' });
    await unblock(w.operatorDeps(), since.key, { by: 'carol' });
    // login's block (1h) is over by now; flood's would not be.
    w.clock = T0 + 2 * HOUR * 1000;

    const plan = await planReinstate(w.operatorDeps(), T0, T0 + 600_000);
    expect(plan.restore).toEqual([]);
    expect(plan.skipped.map((c) => [c.key, c.rule, c.skip])).toEqual([
      [
        since.key,
        'flood',
        expect.stringMatching(/^blocked again since, at 2024-05-01T10:02:00Z by carol$/),
      ],
      [short.key, 'login', expect.stringMatching(/^it would have ended at .* anyway$/)],
      ['198.51.100.4', null, expect.stringMatching(/^a manual block, or none/)],
    ]);
  });

  it('puts back at most half of maxNewBlocksPerRun a run, so the circuit breaker stays shut', async () => {
    const w = await newWorld(cloud, { config: { maxNewBlocksPerRun: 5 } });
    const keys = ['198.51.100.1', '198.51.100.2', '198.51.100.3'];
    for (const k of keys) await ruleBlockWithState(w, k, 'flood');
    for (const k of keys) await endedAsConsoleRemoval(w, k, T0 + 60_000);
    const deps = w.operatorDeps();
    expect(reinstateLimit(deps)).toBe(2);
    const first = await planReinstate(deps, T0, T0 + 120_000);
    const done = await reinstate(deps, first, 'alice');
    expect(done.map((b) => b.key)).toEqual(['198.51.100.1', '198.51.100.2']);
    expect(reinstateResult(first, done, 2).remaining).toBe(1);
    const result = await reconcile(w.reconcileDeps());
    expect(result.tripped).toBe(false);
    const second = await planReinstate(deps, T0, T0 + 120_000);
    expect(second.restore.map((c) => c.key)).toEqual(['198.51.100.3']);
    expect((await reinstate(deps, second, 'alice')).map((b) => b.key)).toEqual(['198.51.100.3']);
    await reconcile(w.reconcileDeps());
    expect(addressesOf(w, 0)).toEqual(keys.map((k) => `${k}/32`));
  });

  it('refuses an empty range', async () => {
    const w = await newWorld(cloud);
    await expect(planReinstate(w.operatorDeps(), T0, T0)).rejects.toThrow(OperatorInputError);
  });
});
