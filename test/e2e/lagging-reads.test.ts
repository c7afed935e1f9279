/**
 * A 30-minute attack on the simulated clock with WAF reads that lag writes
 * and WAF's quotas on: thousands of reconciles, and not one block ended
 * by a stale read (DESIGN section 1, "Resets and stale reads are not
 * unblocks").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconcile } from '../../lambda/reconciler/reconcile';
import { putActiveBlock, readActiveBlocks, readHistory } from '../../lambda/state/blocks';
import { type LocalCloud, startLocalCloud } from '../../local/cloud';
import { seededRandom } from '../../local/rng';
import { addressesOf, newWorld, ruleBlock } from '../reconciler/env';

let cloud: LocalCloud;

/** 30 minutes of attack, a reconcile every 0.9 s of it: 2,000 reconciles. */
const ATTACK_MS = 30 * 60_000;
const STEP_MS = 900;

beforeAll(async () => {
  cloud = await startLocalCloud();
});

afterAll(async () => {
  await cloud?.stop();
});

describe('reads that lag writes', () => {
  it('end no block in a 30-minute attack with thousands of reconciles', async () => {
    const w = await newWorld(cloud);
    // As the local pipeline runs it: the reconciler's pacing sleeps move WAF time,
    // which runs ahead of the pipeline clock by them.
    let wafAhead = 0;
    const wafNow = (): number => w.clock + wafAhead;
    cloud.waf.setClock({ now: wafNow });
    // Reads answer what a set held 5 s before; WAF's quotas on.
    cloud.waf.setRealism({ quotas: true, readLagMs: 5_000 });
    const random = seededRandom(11);
    const deps = w.reconcileDeps({
      random,
      wafNow,
      sleep: async (ms) => {
        wafAhead += ms;
      },
    });
    const end = w.clock + ATTACK_MS;
    const keys = new Set<string>();
    let runs = 0;
    let staleReads = 0;
    let consoleUnblocks = 0;
    let updates = 0;
    let n = 0;
    while (w.clock < end) {
      // A new attacker about every 4 s, blocked for 20 s to 3 min: sets change all the time.
      if (random() < 0.22) {
        n++;
        const key =
          n % 5 === 0
            ? `2001:db8:${n.toString(16)}::/64`
            : `198.18.${Math.floor(n / 250)}.${(n % 250) + 1}`;
        keys.add(key);
        const until = Math.floor(w.clock / 1000) + 20 + Math.floor(random() * 160);
        await putActiveBlock(w.ddb, w.tableName, ruleBlock(w, key, { until }));
      }
      const result = await reconcile(deps);
      runs++;
      staleReads += result.staleReads;
      consoleUnblocks += result.consoleUnblocks.length;
      updates += result.updates;
      expect(result.failedSets).toEqual([]);
      w.clock += STEP_MS;
    }
    expect(runs).toBeGreaterThanOrEqual(ATTACK_MS / STEP_MS);
    expect(staleReads).toBeGreaterThan(200);
    expect(updates).toBeGreaterThan(200);
    expect(consoleUnblocks).toBe(0);
    let unblocks = 0;
    for (const key of keys) {
      unblocks += (await readHistory(w.ddb, w.tableName, key)).filter(
        (e) => e.kind === 'unblock',
      ).length;
    }
    expect(unblocks).toBe(0);
    // Once reads catch up, WAF holds exactly the active blocks.
    w.clock += 10_000;
    await reconcile(deps);
    w.clock += 10_000;
    await reconcile(deps);
    const active = (await readActiveBlocks(w.ddb, w.tableName))
      .filter((b) => b.until > w.clock / 1000)
      .map((b) => (b.key.includes('/') ? b.key : `${b.key}/32`))
      .sort();
    expect([...addressesOf(w, 0), ...addressesOf(w, 1)].sort()).toEqual(active);
    console.log(`lagging reads: ${runs} reconciles, ${updates} updates, ${staleReads} stale reads`);
    cloud.waf.setRealism({});
  }, 900_000);
});
