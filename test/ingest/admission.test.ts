import { describe, expect, it } from 'vitest';
import {
  INGEST_SIZING,
  ingestBudget,
  MemoryGate,
  objectMemory,
} from '../../lambda/ingest/admission';

const MIB = 1024 * 1024;

/** A piece of work that ends when told to, recording what ran at once. */
function pieces(gate: MemoryGate, sizes: number[]) {
  const started: number[] = [];
  const finish: (() => void)[] = [];
  let peak = 0;
  const done = sizes.map((bytes, i) =>
    gate.run(bytes, async () => {
      started.push(i);
      peak = Math.max(peak, gate.active);
      await new Promise<void>((end) => {
        finish[i] = end;
      });
      return i;
    }),
  );
  const tick = () => new Promise((r) => setImmediate(r));
  return { started, finish, done, peak: () => peak, tick };
}

describe('MemoryGate', () => {
  it('runs pieces at once while their bytes fit, the rest as room frees', async () => {
    const gate = new MemoryGate(100);
    const p = pieces(gate, [40, 40, 40, 10]);
    await p.tick();
    expect(p.started).toEqual([0, 1]);
    p.finish[0]!();
    await p.tick();
    expect(p.started).toEqual([0, 1, 2, 3]);
    p.finish[1]!();
    p.finish[2]!();
    p.finish[3]!();
    expect(await Promise.all(p.done)).toEqual([0, 1, 2, 3]);
    expect(p.peak()).toBe(3);
  });

  it('runs a piece larger than the budget alone, after the others, never refusing it', async () => {
    const gate = new MemoryGate(100);
    const p = pieces(gate, [30, 500, 30]);
    await p.tick();
    expect(p.started).toEqual([0]);
    p.finish[0]!();
    await p.tick();
    expect(p.started).toEqual([0, 1]);
    expect(gate.active).toBe(1);
    p.finish[1]!();
    await p.tick();
    p.finish[2]!();
    expect(await Promise.all(p.done)).toEqual([0, 1, 2]);
    expect(p.peak()).toBe(1);
  });

  it('frees the bytes of a piece that throws', async () => {
    const gate = new MemoryGate(100);
    await expect(
      gate.run(80, async () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await gate.run(100, async () => 'ran')).toBe('ran');
  });
});

describe('objectMemory', () => {
  it('returns the worst case of every line a new client, plus the fixed cost', () => {
    const s = INGEST_SIZING;
    expect(objectMemory(0)).toBe(s.objectBytes);
    expect(objectMemory(24 * 1000)).toBe(s.objectBytes + 1000 * s.bytesPerClient);
  });

  it('returns Infinity when the size is unknown, so the object runs alone', () => {
    expect(objectMemory(undefined)).toBe(Number.POSITIVE_INFINITY);
  });

  it('lets the deployed function run four typical objects at once and the worst one alone', () => {
    const budget = ingestBudget(1024);
    // A busy ALB node's 5-minute object: about 2 MB of gzip.
    expect(4 * objectMemory(2 * MIB)).toBeLessThanOrEqual(budget);
    // The worst object, 1M lines from 1M clients (about 96 MB of gzip), gets the whole budget:
    // its real need (1M clients at the bench's bytes per client) fits in it.
    expect(objectMemory(96 * MIB)).toBeGreaterThan(budget);
    expect(1_000_000 * 500 + INGEST_SIZING.objectBytes).toBeLessThan(budget);
  });
});
