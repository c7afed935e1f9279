/**
 * Attack-to-IP-set latency of the real-time source on the local cloud (not
 * a test: run `npx tsx test/e2e/realtime-latency.ts [rounds]`). Each round
 * puts a burst of real-time log records over a rule's threshold into the
 * kinesalite stream, on the real clock, and waits until the WAF emulator's
 * IP set holds the address; the reconciler schedule is off, so only the
 * consumer's message can get it there. Prints p50, p99 and max.
 */
import { parseConfig } from '../../lambda/core/config';
import { realtimeFields } from '../../lambda/core/formats/realtime';
import { realClock } from '../../local/clock';
import { startPipeline } from '../../local/pipeline';
import { realtimeRecords } from '../../local/realtime-records';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function main(rounds: number): Promise<void> {
  const config = parseConfig({
    rules: [{ name: 'login', threshold: 20, window: '5m', method: 'POST', path: '/login' }],
    realtime: { distributionIds: ['E3REALTIMEDEMO'] },
  });
  const p = await startPipeline({ config, clock: realClock });
  const fields = realtimeFields(config);
  const samples: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      const ip = `203.0.113.${(i % 250) + 1}`;
      const now = Date.now();
      const hits = Array.from({ length: 21 }, (_, k) => ({
        ip,
        at: now + k,
        method: 'POST',
        path: '/login',
        status: 401,
      }));
      const start = performance.now();
      await p.cloud.kinesis!.put(realtimeRecords(hits, fields, String(i)));
      for (;;) {
        if (p.wafAddresses().IPV4.includes(`${ip}/32`)) break;
        if (performance.now() - start > 30_000) throw new Error(`${ip} not in WAF after 30 s`);
        await new Promise((r) => setTimeout(r, 5));
      }
      samples.push(performance.now() - start);
    }
  } finally {
    await p.stop();
  }
  samples.sort((a, b) => a - b);
  const ms = (x: number): string => `${Math.round(x)} ms`;
  console.log(
    `real-time attack to IP set, ${rounds} rounds: p50 ${ms(percentile(samples, 50))}, ` +
      `p99 ${ms(percentile(samples, 99))}, max ${ms(samples[samples.length - 1] ?? Number.NaN)}`,
  );
}

await main(Number(process.argv[2] ?? 50));
