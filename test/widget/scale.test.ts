import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activeKey } from '../../lambda/shared/schema';
import { parseWidgetEvent } from '../../lambda/widget/event';
import { PAGE_SIZE } from '../../lambda/widget/model';
import { view } from '../../lambda/widget/view';
import { type LocalCloud, startLocalCloud } from '../../local/cloud';
import { manyAddresses, newWorld, ruleBlock, type World } from '../reconciler/env';
import { viewDeps, widgetEvent } from './env';

/** Lambda's synchronous response payload quota. https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html */
const LAMBDA_RESPONSE_BYTES = 6 * 1024 * 1024;

let cloud: LocalCloud;
let world: World;
const N = 10_000;

beforeAll(async () => {
  cloud = await startLocalCloud();
  world = await newWorld(cloud);
  const items = manyAddresses(N).map((ip, i) => {
    const b = ruleBlock(world, ip, {
      peak: 100 + i,
      reason: `${100 + i} requests in 5m over threshold 100`,
    });
    return { PutRequest: { Item: { ...activeKey(b.key, b.rule), ...b } } };
  });
  const batches: (typeof items)[] = [];
  for (let i = 0; i < items.length; i += 25) batches.push(items.slice(i, i + 25));
  for (let i = 0; i < batches.length; i += 8) {
    await Promise.all(
      batches
        .slice(i, i + 8)
        .map((batch) =>
          world.ddb.send(new BatchWriteCommand({ RequestItems: { [world.tableName]: batch } })),
        ),
    );
  }
}, 120_000);

afterAll(async () => {
  await cloud?.stop();
});

describe('the widget over 10,000 blocks', () => {
  it('renders one page of rows, far under the Lambda response quota, with paging to every page', async () => {
    const first = await view(viewDeps(world), parseWidgetEvent(widgetEvent()));
    expect(first.match(/<tr data-key=/g)).toHaveLength(PAGE_SIZE);
    expect(first).toContain(`<span class="eb-page">Page 1 of ${N / PAGE_SIZE}</span>`);
    expect(first).toContain('10,000 <span class="eb-note">(10,000 keys)</span>');
    const bytes = Buffer.byteLength(first);
    expect(bytes).toBeLessThan(LAMBDA_RESPONSE_BYTES / 20);
    // The last page, asked the way its button asks, holds the numerically last addresses.
    const last = await view(
      viewDeps(world),
      parseWidgetEvent(widgetEvent({ params: { page: 200, filter: '' } })),
    );
    expect(last).toContain('<span class="eb-page">Page 200 of 200</span>');
    expect(last).toContain('<tr data-key="198.18.39.250"');
    expect(last).not.toContain('<tr data-key="198.18.0.1"');
    // A page past the end shows the last one.
    const past = await view(
      viewDeps(world),
      parseWidgetEvent(widgetEvent({ params: { page: 9999 } })),
    );
    expect(past).toContain('Page 200 of 200');
  });

  it('finds the block of one address among them', async () => {
    const html = await view(
      viewDeps(world),
      parseWidgetEvent(widgetEvent({ forms: { filter: '198.18.20.7' } })),
    );
    expect(html.match(/<tr data-key=/g)).toHaveLength(1);
    expect(html).toContain('<tr data-key="198.18.20.7"');
  });
});
