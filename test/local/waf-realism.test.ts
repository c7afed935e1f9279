import {
  GetIPSetCommand,
  ListIPSetsCommand,
  UpdateIPSetCommand,
  WAFUnavailableEntityException,
  WAFV2Client,
  WAFV2ServiceException,
} from '@aws-sdk/client-wafv2';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from '../../local/clock';
import { WafEmulator } from '../../local/waf-emulator';

const credentials = { accessKeyId: 'AKIDLOCAL', secretAccessKey: 'local-secret' };
const T0 = Date.UTC(2024, 4, 1, 10);

let waf: WafEmulator;
let clock: SimulatedClock;
let c: WAFV2Client;

beforeAll(async () => {
  waf = await WafEmulator.start();
  c = new WAFV2Client({ endpoint: waf.endpoint, region: 'us-east-1', credentials, maxAttempts: 1 });
});

afterAll(async () => {
  c.destroy();
  await waf.close();
});

beforeEach(() => {
  waf.reset();
  waf.setRealism({});
  clock = new SimulatedClock(T0);
  waf.setClock(clock);
});

function newSet(name = 'edgeban-ipv4-1', addresses: string[] = []) {
  const s = waf.createIpSet({
    name,
    scope: 'CLOUDFRONT',
    ipAddressVersion: 'IPV4',
    addresses,
    description: 'edgeban blocklist',
  });
  return { Name: s.name, Id: s.id, Scope: 'CLOUDFRONT' as const };
}

async function errorOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as Error).name;
  }
  return 'ok';
}

describe('WafEmulator quotas', () => {
  it('allows one UpdateIPSet a second per action and answers ThrottlingException past it', async () => {
    waf.setRealism({ quotas: true });
    const ref = newSet();
    const get = () => c.send(new GetIPSetCommand(ref));
    const token = (await get()).LockToken!;
    const first = await c.send(
      new UpdateIPSetCommand({ ...ref, Addresses: ['192.0.2.1/32'], LockToken: token }),
    );
    const refused = c.send(
      new UpdateIPSetCommand({
        ...ref,
        Addresses: ['192.0.2.2/32'],
        LockToken: first.NextLockToken!,
      }),
    );
    const err = await refused.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WAFV2ServiceException);
    expect(err).toMatchObject({ name: 'ThrottlingException', message: 'Rate exceeded' });
    expect((err as WAFV2ServiceException).$metadata.httpStatusCode).toBe(400);
    // A refused call takes no token: a second later the same call goes through.
    clock.advance(999);
    expect(
      await errorOf(
        c.send(
          new UpdateIPSetCommand({
            ...ref,
            Addresses: ['192.0.2.2/32'],
            LockToken: first.NextLockToken!,
          }),
        ),
      ),
    ).toBe('ThrottlingException');
    clock.advance(1);
    await c.send(
      new UpdateIPSetCommand({
        ...ref,
        Addresses: ['192.0.2.2/32'],
        LockToken: first.NextLockToken!,
      }),
    );
    expect(waf.counters().injected.quota).toBe(2);
    expect(waf.peakRate('UpdateIPSet', 1000, 'ok')).toBe(1);
    expect(waf.peakRate('UpdateIPSet', 1000, 'sent')).toBe(3);
  });

  it('gives reads five a second in their own bucket per action name', async () => {
    waf.setRealism({ quotas: true });
    const ref = newSet();
    const results: string[] = [];
    for (let i = 0; i < 6; i++) results.push(await errorOf(c.send(new GetIPSetCommand(ref))));
    expect(results).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'ThrottlingException']);
    // ListIPSets has a bucket of its own; writes are not reads.
    expect(await errorOf(c.send(new ListIPSetsCommand({ Scope: 'CLOUDFRONT' })))).toBe('ok');
    clock.advance(200);
    expect(await errorOf(c.send(new GetIPSetCommand(ref)))).toBe('ok');
    expect(await errorOf(c.send(new GetIPSetCommand(ref)))).toBe('ThrottlingException');
  });

  it('takes configured rates, a burst and per-action overrides, and refuses bad ones', async () => {
    waf.setRealism({ quotas: { writesPerSecond: 2, burstSeconds: 2, perAction: { GetIPSet: 1 } } });
    const ref = newSet();
    let token = (await c.send(new GetIPSetCommand(ref))).LockToken!;
    // GetIPSet: 1 a second, 2 s of burst.
    expect(await errorOf(c.send(new GetIPSetCommand(ref)))).toBe('ok');
    expect(await errorOf(c.send(new GetIPSetCommand(ref)))).toBe('ThrottlingException');
    const outcomes: string[] = [];
    for (let i = 0; i < 5; i++) {
      try {
        const out = await c.send(
          new UpdateIPSetCommand({ ...ref, Addresses: [`192.0.2.${i}/32`], LockToken: token }),
        );
        token = out.NextLockToken!;
        outcomes.push('ok');
      } catch (err) {
        outcomes.push((err as Error).name);
      }
    }
    expect(outcomes).toEqual(['ok', 'ok', 'ok', 'ok', 'ThrottlingException']);
    expect(() => waf.setRealism({ quotas: { readsPerSecond: 0 } })).toThrow(
      /readsPerSecond must be a number > 0, got 0/,
    );
  });
});

describe('WafEmulator lagging reads', () => {
  it('answers the previous addresses and LockToken until the lag has passed', async () => {
    waf.setRealism({ readLagMs: 5_000 });
    const ref = newSet('lagging', ['192.0.2.1/32']);
    const before = await c.send(new GetIPSetCommand(ref));
    clock.advance(10_000);
    const written = await c.send(
      new UpdateIPSetCommand({
        ...ref,
        Addresses: ['192.0.2.1/32', '192.0.2.2/32'],
        LockToken: before.LockToken!,
      }),
    );
    clock.advance(4_999);
    const stale = await c.send(new GetIPSetCommand(ref));
    expect(stale.LockToken).toBe(before.LockToken);
    expect(stale.IPSet?.Addresses).toEqual(['192.0.2.1/32']);
    const listed = await c.send(new ListIPSetsCommand({ Scope: 'CLOUDFRONT' }));
    expect(listed.IPSets?.[0]?.LockToken).toBe(before.LockToken);
    // Writes check the real token: the stale one is refused.
    expect(
      await errorOf(
        c.send(new UpdateIPSetCommand({ ...ref, Addresses: [], LockToken: stale.LockToken! })),
      ),
    ).toBe('WAFOptimisticLockException');
    clock.advance(1);
    const fresh = await c.send(new GetIPSetCommand(ref));
    expect(fresh.LockToken).toBe(written.NextLockToken);
    expect(fresh.IPSet?.Addresses).toEqual(['192.0.2.1/32', '192.0.2.2/32']);
  });

  it('can be more than one write behind', async () => {
    waf.setRealism({ readLagMs: 3_000 });
    const ref = newSet('behind');
    const tokens = [(await c.send(new GetIPSetCommand(ref))).LockToken!];
    clock.advance(3_000);
    for (let i = 1; i <= 3; i++) {
      const out = await c.send(
        new UpdateIPSetCommand({
          ...ref,
          Addresses: [`192.0.2.${i}/32`],
          LockToken: tokens[tokens.length - 1]!,
        }),
      );
      tokens.push(out.NextLockToken!);
      clock.advance(1_000);
    }
    // Writes at +3 s, +4 s, +5 s; now +6 s: the write of +3 s is the newest 3 s old.
    const seen = await c.send(new GetIPSetCommand(ref));
    expect(seen.LockToken).toBe(tokens[1]);
    expect(seen.IPSet?.Addresses).toEqual(['192.0.2.1/32']);
  });
});

describe('WafEmulator fresh sets', () => {
  it('answers WAFUnavailableEntityException right after a create', async () => {
    waf.setRealism({ unavailableAfterCreateMs: 2_000 });
    const ref = newSet('fresh');
    const err = await c.send(new GetIPSetCommand(ref)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WAFUnavailableEntityException);
    expect((err as Error).message).toMatch(/few seconds to a number of minutes/);
    clock.advance(2_000);
    expect(await errorOf(c.send(new GetIPSetCommand(ref)))).toBe('ok');
    expect(waf.counters().injected.unavailable).toBe(1);
  });
});

describe('WafEmulator CloudFormation update', () => {
  it('replaces the addresses with the template list and rotates the token', async () => {
    const ref = newSet('cfn', ['192.0.2.1/32', '192.0.2.2/32']);
    const before = await c.send(new GetIPSetCommand(ref));
    const token = waf.cloudFormationUpdate(
      { id: ref.Id },
      { description: 'edgeban blocklist, set 1 of 2' },
    );
    const after = await c.send(new GetIPSetCommand(ref));
    expect(after.IPSet?.Addresses).toEqual([]);
    expect(after.IPSet?.Description).toBe('edgeban blocklist, set 1 of 2');
    expect(after.LockToken).toBe(token);
    expect(token).not.toBe(before.LockToken);
    expect(
      await errorOf(
        c.send(new UpdateIPSetCommand({ ...ref, Addresses: [], LockToken: before.LockToken! })),
      ),
    ).toBe('WAFOptimisticLockException');
    // Not an API write: no update counted, nothing in the call log.
    expect(waf.updateCount({ id: ref.Id })).toBe(0);
    expect(waf.calls().map((x) => x.operation)).toEqual(['GetIPSet', 'GetIPSet', 'UpdateIPSet']);
  });

  it('is an admin route too, and sets quotas and lag through the admin endpoint', async () => {
    const ref = newSet('cfn-admin', ['192.0.2.1/32']);
    const post = async (path: string, body: unknown) => {
      const res = await fetch(`${waf.endpoint}${path}`, {
        method: 'POST',
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const cfn = await post('/__admin/ip-sets/cloudformation-update', {
      name: 'cfn-admin',
      addresses: ['198.51.100.0/24'],
    });
    expect(cfn.status).toBe(200);
    expect(waf.ipSet({ id: ref.Id }).addresses).toEqual(['198.51.100.0/24']);
    expect(waf.ipSet({ id: ref.Id }).lockToken).toBe(cfn.body.lockToken);
    const bad = await post('/__admin/ip-sets/cloudformation-update', {
      name: 'cfn-admin',
      addresses: ['192.0.2.1/8'],
    });
    expect(bad.status).toBe(400);
    expect(String(bad.body.error)).toMatch(/WAFInvalidParameterException/);
    const realism = await post('/__admin/realism', { quotas: true, readLagMs: 1500 });
    expect(realism.body.realism).toMatchObject({
      quotas: { writesPerSecond: 1, readsPerSecond: 5 },
      readLagMs: 1500,
    });
    expect((await post('/__admin/realism', { readLagMs: -1 })).status).toBe(400);
  });
});
