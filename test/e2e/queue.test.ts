import { createHash } from 'node:crypto';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { ClockError, SimulatedClock } from '../../local/clock';
import { LocalQueue, QueueError } from '../../local/queue';

/** Records every invocation; answers with `respond`. */
function recorder(respond: (event: SQSEvent, call: number) => SQSBatchResponse | undefined) {
  const events: SQSEvent[] = [];
  return {
    events,
    handler: async (event: SQSEvent) => {
      events.push(event);
      return respond(event, events.length);
    },
  };
}

describe('LocalQueue', () => {
  it('delivers batches of at most 10 records shaped as an SQS event', async () => {
    const clock = new SimulatedClock(Date.UTC(2024, 4, 1, 10));
    const q = new LocalQueue({ name: 'ingest', clock });
    const r = recorder(() => ({ batchItemFailures: [] }));
    for (let i = 0; i < 23; i++) q.send(`body ${i}`);
    q.subscribe(r.handler);
    await q.drain();
    expect(r.events.map((e) => e.Records.length)).toEqual([10, 10, 3]);
    const record = r.events[0]!.Records[0]!;
    expect(record).toEqual({
      messageId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      receiptHandle: expect.any(String),
      body: 'body 0',
      attributes: {
        ApproximateReceiveCount: '1',
        SentTimestamp: String(Date.UTC(2024, 4, 1, 10)),
        SenderId: '123456789012',
        ApproximateFirstReceiveTimestamp: String(Date.UTC(2024, 4, 1, 10)),
      },
      messageAttributes: {},
      md5OfBody: createHash('md5').update('body 0').digest('hex'),
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:ingest',
      awsRegion: 'us-east-1',
    });
    expect(r.events.flatMap((e) => e.Records.map((x) => x.body))).toEqual(
      Array.from({ length: 23 }, (_, i) => `body ${i}`),
    );
  });

  it('redelivers only the items listed as failed, with a higher receive count and a new receipt handle', async () => {
    const q = new LocalQueue({ name: 'q', visibilityTimeoutMs: 5 });
    const r = recorder((event, call) =>
      call === 1
        ? { batchItemFailures: [{ itemIdentifier: event.Records[1]!.messageId }] }
        : { batchItemFailures: [] },
    );
    q.subscribe(r.handler);
    q.send('a');
    q.send('b');
    q.send('c');
    await q.drain();
    expect(r.events.map((e) => e.Records.map((x) => x.body))).toEqual([['a', 'b', 'c'], ['b']]);
    const first = r.events[0]!.Records[1]!;
    const again = r.events[1]!.Records[0]!;
    expect(again.messageId).toBe(first.messageId);
    expect(again.receiptHandle).not.toBe(first.receiptHandle);
    expect(again.attributes.ApproximateReceiveCount).toBe('2');
    expect(q.stats()).toMatchObject({ sent: 3, delivered: 4, failed: 1, redelivered: 1 });
  });

  it('retries the whole batch when the handler throws', async () => {
    const q = new LocalQueue({ name: 'q', visibilityTimeoutMs: 1 });
    const errors: unknown[] = [];
    let calls = 0;
    q.subscribe(
      async () => {
        calls++;
        if (calls === 1) throw new Error('boom');
        return undefined;
      },
      { onError: (err) => errors.push(err) },
    );
    q.send('a');
    q.send('b');
    await q.drain();
    expect(calls).toBe(2);
    expect(errors).toHaveLength(1);
    expect(q.stats()).toMatchObject({ delivered: 4, failed: 2 });
  });

  it('fails the whole batch when a failure names a message not in it', async () => {
    const q = new LocalQueue({ name: 'q', visibilityTimeoutMs: 1 });
    const r = recorder((_, call) =>
      call === 1 ? { batchItemFailures: [{ itemIdentifier: 'not-a-message' }] } : undefined,
    );
    q.subscribe(r.handler);
    q.send('a');
    q.send('b');
    await q.drain();
    expect(r.events.map((e) => e.Records.length)).toEqual([2, 2]);
  });

  it('moves a message that keeps failing to the dead-letter list after maxReceiveCount receives', async () => {
    const q = new LocalQueue({ name: 'q', visibilityTimeoutMs: 1, maxReceiveCount: 3 });
    const r = recorder((event) => ({
      batchItemFailures: event.Records.filter((x) => x.body === 'poison').map((x) => ({
        itemIdentifier: x.messageId,
      })),
    }));
    q.subscribe(r.handler);
    q.send('poison');
    q.send('fine');
    await q.drain();
    const poison = r.events.flatMap((e) => e.Records).filter((x) => x.body === 'poison');
    expect(poison.map((x) => x.attributes.ApproximateReceiveCount)).toEqual(['1', '2', '3']);
    expect(q.deadLetters().map((m) => m.body)).toEqual(['poison']);
    expect(q.stats().deadLettered).toBe(1);
    expect(q.depth).toBe(0);
  });

  it('delivers each message again when duplicates are on, never twice in one batch', async () => {
    const q = new LocalQueue({ name: 'q', duplicates: 2 });
    const r = recorder(() => undefined);
    q.subscribe(r.handler, { concurrency: 3 });
    q.send('a');
    q.send('b');
    await q.drain();
    const bodies = r.events.flatMap((e) => e.Records.map((x) => x.body)).sort();
    expect(bodies).toEqual(['a', 'a', 'a', 'b', 'b', 'b']);
    for (const e of r.events) {
      const ids = e.Records.map((x) => x.messageId);
      expect(new Set(ids).size).toBe(ids.length);
    }
  });

  it('runs at most `concurrency` invocations at once', async () => {
    const q = new LocalQueue({ name: 'q' });
    let running = 0;
    let most = 0;
    q.subscribe(
      async () => {
        running++;
        most = Math.max(most, running);
        await new Promise((resolve) => setTimeout(resolve, 5));
        running--;
        return undefined;
      },
      { batchSize: 1, concurrency: 2 },
    );
    for (let i = 0; i < 6; i++) q.send(String(i));
    await q.drain();
    expect(most).toBe(2);
  });

  it('resolves drain at once when empty and waits for redeliveries otherwise', async () => {
    const q = new LocalQueue({ name: 'q', visibilityTimeoutMs: 30 });
    await q.drain();
    let calls = 0;
    q.subscribe(async (event) => {
      calls++;
      return calls === 1
        ? { batchItemFailures: [{ itemIdentifier: event.Records[0]!.messageId }] }
        : undefined;
    });
    q.send('x');
    await q.drain();
    expect(calls).toBe(2);
  });

  it('refuses bad settings and a second consumer', () => {
    expect(() => new LocalQueue({ name: 'bad name' })).toThrow(QueueError);
    expect(() => new LocalQueue({ name: 'q', maxReceiveCount: 0 })).toThrow(/maxReceiveCount/);
    const q = new LocalQueue({ name: 'q' });
    expect(() => q.subscribe(async () => undefined, { batchSize: 11 })).toThrow(/batchSize/);
    q.subscribe(async () => undefined);
    expect(() => q.subscribe(async () => undefined)).toThrow(/already has a consumer/);
  });
});

describe('SimulatedClock', () => {
  it('moves only when told, and never backwards', () => {
    const clock = new SimulatedClock(1000);
    expect(clock.now()).toBe(1000);
    expect(clock.advance(60_000)).toBe(61_000);
    expect(clock.set(120_000)).toBe(120_000);
    expect(() => clock.set(119_999)).toThrow(ClockError);
    expect(() => clock.advance(-1)).toThrow(/>= 0/);
    expect(clock.now()).toBe(120_000);
  });
});
