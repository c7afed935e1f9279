/**
 * The reconciler under WAF's API quotas, on a simulated clock that its
 * sleeps move and that the emulator's token buckets run on.
 */
import { GetIPSetCommand, UpdateIPSetCommand, type WAFV2Client } from '@aws-sdk/client-wafv2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconcile } from '../../lambda/reconciler/reconcile';
import { readHistory } from '../../lambda/state/blocks';
import { type LocalCloud, startLocalCloud } from '../../local/cloud';
import { addressesOf, manyAddresses, newWorld, putBlocks, ruleBlock, type World } from './env';

let cloud: LocalCloud;

beforeAll(async () => {
  cloud = await startLocalCloud();
});

afterAll(async () => {
  await cloud?.stop();
});

/** A world whose clock the reconciler's sleeps move, with WAF's quotas on that clock. */
async function quotaWorld(options: Parameters<typeof newWorld>[1] = {}): Promise<World> {
  const w = await newWorld(cloud, options);
  cloud.waf.setClock({ now: () => w.clock });
  cloud.waf.setRealism({ quotas: true });
  return w;
}

function simulatedSleep(w: World): (ms: number) => Promise<void> {
  return async (ms) => {
    w.clock += ms;
  };
}

/** Others' addresses, for set `s`: `n` distinct /32s in 11.s.0.0/16. */
function othersOf(s: number, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `11.${s}.${Math.floor(i / 250)}.${(i % 250) + 1}/32`);
}

describe('reconcile under WAF quotas', () => {
  it('applies a 9,000-key change over 10 sets with no failed run, at most one update a second', async () => {
    // 10 + 10 sets; each IPv4 set already holds 9,100 of others' addresses, so the
    // 9,000 new keys spread over all ten.
    const w = await quotaWorld({
      config: { ipSets: { ipv4: 10, ipv6: 10 }, maxNewBlocksPerRun: 10_000 },
      preset: Array.from({ length: 10 }, (_, s) => othersOf(s, 9_100)),
    });
    const keys = manyAddresses(9_000);
    await putBlocks(
      w,
      keys.map((k) => ruleBlock(w, k)),
    );
    const start = w.clock;
    const runs = [];
    for (let i = 0; i < 10; i++) {
      const result = await reconcile(w.reconcileDeps({ sleep: simulatedSleep(w) }));
      runs.push(result);
      if (result.updates === 0 && !result.partial) break;
      w.clock += 1_000;
    }
    const elapsedS = (w.clock - start) / 1000;
    expect(runs.every((r) => r.failedSets.length === 0)).toBe(true);
    const placed = w.ipSets
      .slice(0, 10)
      .map((_, i) => addressesOf(w, i).filter((a) => a.startsWith('198.18.')).length);
    expect(placed.every((n) => n === 900)).toBe(true);
    expect(runs[0]).toMatchObject({ updates: 10, partial: false, throttled: 0 });
    // Reads of 20 sets 400 ms apart, then 10 updates 2 s apart: about 27 s.
    expect(elapsedS).toBeLessThan(40);
    expect(cloud.waf.peakRate('UpdateIPSet', 1_000, 'sent')).toBe(1);
    expect(cloud.waf.peakRate('GetIPSet', 1_000, 'sent')).toBeLessThanOrEqual(3);
    expect(cloud.waf.counters().injected.quota).toBe(0);
    const lastUpdate = cloud.waf
      .calls()
      .filter((c) => c.operation === 'UpdateIPSet' && c.ok)
      .reduce((t, c) => Math.max(t, c.at), start);
    console.log(
      `9,000 new blocks over 10 sets: in WAF ${(lastUpdate - start) / 1000} s (simulated) after ` +
        `the run began; ${elapsedS} s with the confirming run; WAF calls per run ${runs
          .map((r) => r.wafCalls)
          .join(', ')}`,
    );
  });

  it('stops at its deadline as partial and the next run continues, with no failed set', async () => {
    const w = await quotaWorld({ config: { ipSets: { ipv4: 6, ipv6: 1 } } });
    const others = Array.from({ length: 6 }, (_, s) => othersOf(s, 9_998));
    for (let s = 0; s < 6; s++) cloud.waf.setAddresses({ id: w.ipSets[s]!.id }, others[s]!);
    await putBlocks(
      w,
      manyAddresses(12).map((k) => ruleBlock(w, k)),
    );
    // Reads of 7 sets take 2.4 s; 6 updates 2 s apart do not fit 8 s.
    const first = await reconcile(w.reconcileDeps({ sleep: simulatedSleep(w), budgetMs: 8_000 }));
    expect(first).toMatchObject({ partial: true, failedSets: [] });
    expect(first.updates).toBeGreaterThan(0);
    expect(first.updates).toBeLessThan(6);
    expect(first.deferredSets.length).toBeGreaterThanOrEqual(6 - first.updates);
    const second = await reconcile(w.reconcileDeps({ sleep: simulatedSleep(w), budgetMs: 60_000 }));
    expect(second).toMatchObject({ partial: false, failedSets: [], deferredSets: [] });
    expect(first.updates + second.updates).toBe(6);
    for (let s = 0; s < 6; s++) {
      expect(addressesOf(w, s).filter((a) => a.startsWith('198.18.'))).toHaveLength(2);
    }
  });

  it('waits out throttling instead of failing, reads and writes alike', async () => {
    const w = await quotaWorld({ config: { ipSets: { ipv4: 2, ipv6: 1 } } });
    await putBlocks(w, [ruleBlock(w, '192.0.2.7'), ruleBlock(w, '2001:db8::/64')]);
    // Another tool takes every token now and then: 12 refusals in a row.
    cloud.waf.setFaults({ throttleNext: 12 });
    const result = await reconcile(w.reconcileDeps({ sleep: simulatedSleep(w) }));
    expect(result).toMatchObject({ failedSets: [], partial: false, throttled: 12, updates: 2 });
    expect(addressesOf(w, 0)).toEqual(['192.0.2.7/32']);
    expect(await readHistory(w.ddb, w.tableName, '192.0.2.7')).toEqual([]);
  });

  it('paces updates across runs: the next run waits for 2 s after the last update', async () => {
    const w = await quotaWorld();
    await putBlocks(w, [ruleBlock(w, '192.0.2.7')]);
    await reconcile(w.reconcileDeps({ sleep: simulatedSleep(w) }));
    const firstAt = cloud.waf.calls().find((c) => c.operation === 'UpdateIPSet')?.at ?? 0;
    await putBlocks(w, [ruleBlock(w, '192.0.2.8')]);
    await reconcile(w.reconcileDeps({ sleep: simulatedSleep(w) }));
    const updates = cloud.waf.calls().filter((c) => c.operation === 'UpdateIPSet');
    expect(updates).toHaveLength(2);
    expect(updates[1]!.at - firstAt).toBeGreaterThanOrEqual(2_000);
  });
});

/**
 * A person who edits an IP set with the SDK's default retries (3 attempts)
 * right before every third UpdateIPSet the reconciler sends, while the
 * simulated clock stands still for them: the worst case for the person.
 */
function personBeforeUpdates(w: World, reconcilerWaf: WAFV2Client) {
  const person = cloud.clients({ maxAttempts: 3 }).wafv2;
  const outcomes: string[] = [];
  let sent = 0;
  let n = 0;
  reconcilerWaf.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'UpdateIPSetCommand' && ++sent % 3 === 0) {
        const ref = w.ipSets[n % w.ipSets.length]!;
        const target = { Name: ref.name, Id: ref.id, Scope: ref.scope };
        n++;
        try {
          const got = await person.send(new GetIPSetCommand(target));
          const own = ref.version === 'IPV4' ? `203.0.113.${n}/32` : `2001:db8:ffff::${n}/128`;
          await person.send(
            new UpdateIPSetCommand({
              ...target,
              Addresses: [...(got.IPSet?.Addresses ?? []), own],
              LockToken: got.LockToken,
            }),
          );
          outcomes.push('ok');
        } catch (err) {
          outcomes.push((err as Error).name);
        }
      }
      return next(args);
    },
    { step: 'initialize', name: 'person' },
  );
  return outcomes;
}

describe('a person sharing the account with the reconciler', () => {
  it("succeeds every time with the SDK's default retries, interleaved throughout", async () => {
    const w = await quotaWorld({
      config: { ipSets: { ipv4: 5, ipv6: 5 }, maxNewBlocksPerRun: 5_000 },
    });
    const waf = cloud.clients({ maxAttempts: 1 }).wafv2;
    const outcomes = personBeforeUpdates(w, waf);
    const v6 = Array.from({ length: 50 }, (_, i) => `2001:db8:${i}::/64`);
    for (let round = 0; round < 4; round++) {
      await putBlocks(w, [
        ...manyAddresses(200)
          .slice(round * 50, round * 50 + 50)
          .map((k) => ruleBlock(w, k)),
        ...v6.slice(round * 10, round * 10 + 10).map((k) => ruleBlock(w, k)),
      ]);
      const result = await reconcile(w.reconcileDeps({ waf, sleep: simulatedSleep(w) }));
      expect(result.failedSets).toEqual([]);
      w.clock += 500;
    }
    expect(outcomes.length).toBeGreaterThanOrEqual(4);
    expect(outcomes.every((o) => o === 'ok')).toBe(true);
    // The person's addresses stay: the reconciler never removes what it did not add.
    const all = w.ipSets.flatMap((_, i) => addressesOf(w, i));
    expect(
      all.filter((a) => a.startsWith('203.0.113.') || a.startsWith('2001:db8:ffff:')),
    ).toHaveLength(outcomes.length);
  });

  it('is starved when updates come 100 ms apart, as before pacing (the test can fail)', async () => {
    const w = await quotaWorld({
      config: { ipSets: { ipv4: 5, ipv6: 5 }, maxNewBlocksPerRun: 5_000 },
    });
    const waf = cloud.clients({ maxAttempts: 1 }).wafv2;
    const outcomes = personBeforeUpdates(w, waf);
    await putBlocks(w, [
      ...manyAddresses(50).map((k) => ruleBlock(w, k)),
      ...Array.from({ length: 10 }, (_, i) => ruleBlock(w, `2001:db8:${i}::/64`)),
    ]);
    await reconcile(
      w.reconcileDeps({ waf, sleep: simulatedSleep(w), pacing: { writeIntervalMs: 100 } }),
    );
    expect(outcomes).toContain('ThrottlingException');
  }, 30_000);
});
