/**
 * The local queue as the reconciler's SQS FIFO queue: one message group at
 * a time and in order, deduplication within the interval, a queue-level
 * delay, and the coalescing of ingest's wake-ups that rests on them.
 */
import type { SQSEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import {
  coalescedTrigger,
  RECONCILE_TRIGGER,
  uniqueTrigger,
} from '../../lambda/shared/reconcile-trigger';
import { SimulatedClock } from '../../local/clock';
import { LocalQueue, QueueError } from '../../local/queue';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A handler that records each batch and how many ran at once. */
function probe(work: (event: SQSEvent) => Promise<void> = () => sleep(5)) {
  const batches: string[][] = [];
  let running = 0;
  let most = 0;
  return {
    batches,
    most: () => most,
    handler: async (event: SQSEvent) => {
      running++;
      most = Math.max(most, running);
      batches.push(event.Records.map((r) => r.body));
      try {
        await work(event);
      } finally {
        running--;
      }
      return undefined;
    },
  };
}

describe('LocalQueue (FIFO)', () => {
  it('delivers one group one batch at a time, in order, even with more concurrency', async () => {
    const q = new LocalQueue({ name: 'reconcile.fifo', fifo: true });
    const p = probe();
    q.subscribe(p.handler, { batchSize: 2, concurrency: 4 });
    for (let i = 0; i < 7; i++) q.send(`m${i}`, { groupId: 'g', deduplicationId: `d${i}` });
    await q.drain();
    expect(p.most()).toBe(1);
    expect(p.batches.flat()).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6']);
  });

  it('runs different groups side by side', async () => {
    const q = new LocalQueue({ name: 'q.fifo', fifo: true });
    const p = probe(() => sleep(20));
    q.subscribe(p.handler, { batchSize: 1, concurrency: 2 });
    q.send('a', { groupId: 'a', deduplicationId: 'a' });
    q.send('b', { groupId: 'b', deduplicationId: 'b' });
    await q.drain();
    expect(p.most()).toBe(2);
  });

  it('holds a group while its failed message waits, then delivers it first', async () => {
    const q = new LocalQueue({ name: 'q.fifo', fifo: true, visibilityTimeoutMs: 20 });
    let calls = 0;
    const order: string[] = [];
    q.subscribe(
      async (event) => {
        calls++;
        order.push(...event.Records.map((r) => r.body));
        if (calls === 1) throw new Error('WAF unavailable');
        return undefined;
      },
      { batchSize: 1, concurrency: 3 },
    );
    q.send('first', { groupId: 'g', deduplicationId: '1' });
    q.send('second', { groupId: 'g', deduplicationId: '2' });
    await q.drain();
    expect(order).toEqual(['first', 'first', 'second']);
    expect(q.stats()).toMatchObject({ failed: 1, redelivered: 1, deadLettered: 0 });
  });

  it('accepts a deduplication id seen within the interval and does not deliver it', async () => {
    const clock = new SimulatedClock(Date.UTC(2024, 4, 1, 10));
    const q = new LocalQueue({ name: 'q.fifo', fifo: true, clock });
    const p = probe();
    const first = q.send('one', { groupId: 'g', deduplicationId: 'same' });
    clock.advance(299_999);
    expect(q.send('two', { groupId: 'g', deduplicationId: 'same' })).toBe(first);
    clock.advance(1);
    expect(q.send('three', { groupId: 'g', deduplicationId: 'same' })).not.toBe(first);
    q.subscribe(p.handler);
    await q.drain();
    expect(p.batches.flat()).toEqual(['one', 'three']);
    expect(q.stats()).toMatchObject({ sent: 2, deduplicated: 1 });
  });

  it('deduplicates by the body with content-based deduplication, an explicit id overriding it', async () => {
    const q = new LocalQueue({ name: 'q.fifo', fifo: true, contentBasedDeduplication: true });
    const p = probe();
    q.send('tick', { groupId: 'g' });
    q.send('tick', { groupId: 'g' });
    q.send('tick', { groupId: 'g', deduplicationId: 'other' });
    q.subscribe(p.handler);
    await q.drain();
    expect(p.batches.flat()).toEqual(['tick', 'tick']);
  });

  it('carries the FIFO attributes of an SQS record', async () => {
    const q = new LocalQueue({ name: 'q.fifo', fifo: true });
    const p = probe();
    q.send('x', { groupId: 'g', deduplicationId: 'd' });
    q.subscribe(async (event) => {
      expect(event.Records[0]!.attributes).toMatchObject({
        MessageGroupId: 'g',
        MessageDeduplicationId: 'd',
        SequenceNumber: expect.stringMatching(/^\d{20}$/),
      });
      return p.handler(event);
    });
    await q.drain();
    expect(p.batches).toHaveLength(1);
  });

  it('delays every message by the queue delay', async () => {
    const q = new LocalQueue({ name: 'q.fifo', fifo: true, deliveryDelayMs: 60 });
    const received: number[] = [];
    q.subscribe(async () => {
      received.push(Date.now());
      return undefined;
    });
    const sent = Date.now();
    q.send('x', { groupId: 'g', deduplicationId: 'd' });
    expect(q.depth).toBe(1);
    await q.drain();
    expect(received[0]! - sent).toBeGreaterThanOrEqual(55);
  });

  it.each([
    [{ name: 'q', fifo: true }, /must end in \.fifo/],
    [{ name: 'q.fifo', fifo: true, duplicates: 1 }, /duplicates must be 0/],
    [{ name: 'q', contentBasedDeduplication: true }, /FIFO queues only/],
    [{ name: 'q', deliveryDelayMs: -1 }, /deliveryDelayMs must be >= 0/],
  ])('refuses options %j', (options, message) => {
    expect(() => new LocalQueue(options)).toThrow(message);
  });

  it('refuses a FIFO send without a group or deduplication id, and FIFO fields on a standard queue', () => {
    const fifo = new LocalQueue({ name: 'q.fifo', fifo: true });
    expect(() => fifo.send('x', { deduplicationId: 'd' })).toThrow(QueueError);
    expect(() => fifo.send('x', { groupId: 'g' })).toThrow(/deduplicationId/);
    const standard = new LocalQueue({ name: 'q' });
    expect(() => standard.send('x', { groupId: 'g' })).toThrow(/FIFO queues only/);
  });
});

describe('coalesced reconciler wake-ups', () => {
  it('start at most one run per bucket, each after every change its bucket holds', async () => {
    const bucketMs = 60;
    const q = new LocalQueue({ name: 'reconcile.fifo', fifo: true, deliveryDelayMs: bucketMs });
    const changes: number[] = [];
    const runs: number[] = [];
    q.subscribe(async () => {
      runs.push(Date.now());
      await sleep(2);
      return undefined;
    });
    // An attack that changes blocks every few milliseconds for about 400 ms.
    const start = Date.now();
    while (Date.now() - start < 400) {
      const now = Date.now();
      changes.push(now);
      const m = coalescedTrigger('ingest', now, bucketMs);
      q.send(m.MessageBody, {
        groupId: m.MessageGroupId,
        deduplicationId: m.MessageDeduplicationId,
      });
      await sleep(2);
    }
    await q.drain();
    const buckets = new Set(changes.map((t) => Math.floor(t / bucketMs)));
    expect(runs.length).toBeLessThanOrEqual(buckets.size);
    expect(2 * runs.length).toBeLessThan(changes.length);
    // Every change is followed by a run that starts after it.
    for (const t of changes) expect(runs.some((r) => r >= t)).toBe(true);
  });

  it('put every trigger in the one group, ingest deduplicated per bucket and a person never', () => {
    const t = Date.UTC(2024, 4, 1, 10, 0, 0);
    const width = RECONCILE_TRIGGER.coalesceSeconds * 1000;
    const a = coalescedTrigger('ingest', t);
    expect(a.MessageGroupId).toBe(RECONCILE_TRIGGER.groupId);
    expect(coalescedTrigger('ingest', t + width - 1).MessageDeduplicationId).toBe(
      a.MessageDeduplicationId,
    );
    expect(coalescedTrigger('ingest', t + width).MessageDeduplicationId).not.toBe(
      a.MessageDeduplicationId,
    );
    expect(JSON.parse(a.MessageBody)).toEqual({ source: 'ingest', at: '2024-05-01T10:00:00.000Z' });
    const cli = uniqueTrigger('cli', t, 'f3b1c2d4');
    expect(cli).toMatchObject({
      MessageGroupId: RECONCILE_TRIGGER.groupId,
      MessageDeduplicationId: 'cli-f3b1c2d4',
    });
  });
});
