import {
  CreateIPSetCommand,
  CreateWebACLCommand,
  DeleteIPSetCommand,
  GetIPSetCommand,
  GetWebACLCommand,
  ListIPSetsCommand,
  type Rule,
  UpdateIPSetCommand,
  UpdateWebACLCommand,
  WAFAssociatedItemException,
  WAFDuplicateItemException,
  WAFInvalidParameterException,
  WAFLimitsExceededException,
  WAFNonexistentItemException,
  WAFOptimisticLockException,
  WAFV2Client,
  WAFV2ServiceException,
} from '@aws-sdk/client-wafv2';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LOCAL_ACCOUNT_ID, WafEmulator, type WafScope } from '../../local/waf-emulator';

const credentials = { accessKeyId: 'AKIDLOCAL', secretAccessKey: 'local-secret' };

let waf: WafEmulator;
const clients: WAFV2Client[] = [];

function client(opts: { region?: string; maxAttempts?: number } = {}): WAFV2Client {
  const c = new WAFV2Client({
    endpoint: waf.endpoint,
    region: opts.region ?? 'us-east-1',
    credentials,
    maxAttempts: opts.maxAttempts ?? 1,
  });
  clients.push(c);
  return c;
}

async function createSet(
  c: WAFV2Client,
  name: string,
  addresses: string[] = [],
  scope: WafScope = 'CLOUDFRONT',
  version: 'IPV4' | 'IPV6' = 'IPV4',
) {
  const out = await c.send(
    new CreateIPSetCommand({
      Name: name,
      Scope: scope,
      IPAddressVersion: version,
      Addresses: addresses,
    }),
  );
  const s = out.Summary!;
  return { Name: s.Name!, Id: s.Id!, ARN: s.ARN!, LockToken: s.LockToken!, Scope: scope };
}

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

beforeAll(async () => {
  waf = await WafEmulator.start();
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  await waf.close();
});

beforeEach(() => {
  waf.reset();
});

describe('WafEmulator IP sets', () => {
  it('returns the same LockToken from Create and Get and rotates it on each update', async () => {
    const c = client();
    const set = await createSet(c, 'edgeban-v4', ['192.0.2.7/32']);
    const got = await c.send(
      new GetIPSetCommand({ Name: set.Name, Scope: 'CLOUDFRONT', Id: set.Id }),
    );
    expect(got.LockToken).toBe(set.LockToken);
    expect(got.IPSet?.Addresses).toEqual(['192.0.2.7/32']);
    expect(got.IPSet?.IPAddressVersion).toBe('IPV4');

    const up = await c.send(
      new UpdateIPSetCommand({
        Name: set.Name,
        Scope: 'CLOUDFRONT',
        Id: set.Id,
        LockToken: set.LockToken,
        Addresses: ['192.0.2.7/32', '198.51.100.0/24'],
      }),
    );
    expect(up.NextLockToken).toMatch(/^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$/);
    expect(up.NextLockToken).not.toBe(set.LockToken);
    const again = await c.send(
      new GetIPSetCommand({ Name: set.Name, Scope: 'CLOUDFRONT', Id: set.Id }),
    );
    expect(again.LockToken).toBe(up.NextLockToken);
    expect(again.IPSet?.Addresses).toEqual(['192.0.2.7/32', '198.51.100.0/24']);
    expect(waf.updateCount({ id: set.Id })).toBe(1);
  });

  it('forms ARNs like the service and keeps scopes and regions apart', async () => {
    const global = await createSet(client(), 'blocked');
    const regional = await createSet(client({ region: 'eu-west-1' }), 'blocked', [], 'REGIONAL');
    expect(global.ARN).toBe(
      `arn:aws:wafv2:us-east-1:${LOCAL_ACCOUNT_ID}:global/ipset/blocked/${global.Id}`,
    );
    expect(regional.ARN).toBe(
      `arn:aws:wafv2:eu-west-1:${LOCAL_ACCOUNT_ID}:regional/ipset/blocked/${regional.Id}`,
    );
    const cf = await client().send(new ListIPSetsCommand({ Scope: 'CLOUDFRONT' }));
    expect(cf.IPSets?.map((s) => s.Id)).toEqual([global.Id]);
    const euRegional = await client({ region: 'eu-west-1' }).send(
      new ListIPSetsCommand({ Scope: 'REGIONAL' }),
    );
    expect(euRegional.IPSets?.map((s) => s.Id)).toEqual([regional.Id]);
    const usRegional = await client().send(new ListIPSetsCommand({ Scope: 'REGIONAL' }));
    expect(usRegional.IPSets).toEqual([]);
    // The CLOUDFRONT set is not reachable under REGIONAL scope.
    const err = await caught(
      client().send(new GetIPSetCommand({ Name: 'blocked', Scope: 'REGIONAL', Id: global.Id })),
    );
    expect(err).toBeInstanceOf(WAFNonexistentItemException);
  });

  it('refuses CLOUDFRONT scope outside us-east-1 with WAFInvalidParameterException', async () => {
    const err = await caught(createSet(client({ region: 'eu-west-1' }), 'edgeban'));
    expect(err).toBeInstanceOf(WAFInvalidParameterException);
    expect((err as WAFInvalidParameterException).Field).toBe('SCOPE_VALUE');
  });

  it('raises WAFOptimisticLockException for a stale LockToken on update and delete', async () => {
    const c = client();
    const set = await createSet(c, 'edgeban', ['192.0.2.1/32']);
    const base = { Name: set.Name, Scope: set.Scope, Id: set.Id } as const;
    await c.send(new UpdateIPSetCommand({ ...base, LockToken: set.LockToken, Addresses: [] }));
    const stale = await caught(
      c.send(
        new UpdateIPSetCommand({ ...base, LockToken: set.LockToken, Addresses: ['192.0.2.2/32'] }),
      ),
    );
    expect(stale).toBeInstanceOf(WAFOptimisticLockException);
    expect((stale as Error).message).toMatch(/someone changed the resource/);
    const del = await caught(c.send(new DeleteIPSetCommand({ ...base, LockToken: set.LockToken })));
    expect(del).toBeInstanceOf(WAFOptimisticLockException);
    expect(waf.ipSet({ id: set.Id }).addresses).toEqual([]);
  });

  it('takes 10,000 addresses and raises WAFLimitsExceededException at 10,001', async () => {
    const c = client();
    const set = await createSet(c, 'big');
    const many = Array.from({ length: 10_001 }, (_, i) => `11.${i >> 8}.${i & 255}.0/24`);
    const ok = await c.send(
      new UpdateIPSetCommand({
        Name: set.Name,
        Scope: set.Scope,
        Id: set.Id,
        LockToken: set.LockToken,
        Addresses: many.slice(0, 10_000),
      }),
    );
    const err = await caught(
      c.send(
        new UpdateIPSetCommand({
          Name: set.Name,
          Scope: set.Scope,
          Id: set.Id,
          LockToken: ok.NextLockToken,
          Addresses: many,
        }),
      ),
    );
    expect(err).toBeInstanceOf(WAFLimitsExceededException);
    expect(waf.ipSet({ id: set.Id }).addresses).toHaveLength(10_000);
  });

  it.each([
    ['0.0.0.0/0', 'IPV4'],
    ['::/0', 'IPV6'],
    ['192.0.2.7', 'IPV4'],
    ['192.0.2.7/33', 'IPV4'],
    ['192.0.2.256/32', 'IPV4'],
    ['192.0.2.7/24', 'IPV4'],
    ['2001:db8::/32', 'IPV4'],
    ['192.0.2.7/32', 'IPV6'],
    ['2001:db8::1/129', 'IPV6'],
    ['fe80::1%eth0/128', 'IPV6'],
    [' 192.0.2.7/32', 'IPV4'],
  ] as const)('raises WAFInvalidParameterException for %s in an %s set', async (bad, version) => {
    const c = client();
    const set = await createSet(c, 'edgeban', [], 'CLOUDFRONT', version);
    const err = await caught(
      c.send(
        new UpdateIPSetCommand({
          Name: set.Name,
          Scope: set.Scope,
          Id: set.Id,
          LockToken: set.LockToken,
          Addresses: [bad],
        }),
      ),
    );
    expect(err).toBeInstanceOf(WAFInvalidParameterException);
    expect((err as WAFInvalidParameterException).Field).toBe('IP_ADDRESS');
    expect((err as WAFInvalidParameterException).Parameter).toBe(bad);
    expect(waf.ipSet({ id: set.Id }).lockToken).toBe(set.LockToken);
    expect(waf.allAddressesEverWritten()).not.toContain(bad);
    expect(waf.allAddressesEverSubmitted()).toContain(bad);
  });

  it('accepts IPv6 CIDRs of any prefix from /1 to /128 and returns them as given', async () => {
    const c = client();
    const given = ['2001:db8::/64', '2001:0DB8:0000:0000:0000:0000:0000:0001/128', '8000::/1'];
    const set = await createSet(c, 'v6', given, 'CLOUDFRONT', 'IPV6');
    const got = await c.send(new GetIPSetCommand({ Name: set.Name, Scope: set.Scope, Id: set.Id }));
    expect(got.IPSet?.Addresses).toEqual(given);
  });

  it('raises WAFNonexistentItemException for an unknown id or a name that does not match', async () => {
    const c = client();
    const set = await createSet(c, 'edgeban');
    const unknown = await caught(
      c.send(
        new GetIPSetCommand({
          Name: 'edgeban',
          Scope: 'CLOUDFRONT',
          Id: '00000000-0000-4000-8000-000000000000',
        }),
      ),
    );
    expect(unknown).toBeInstanceOf(WAFNonexistentItemException);
    const wrongName = await caught(
      c.send(new GetIPSetCommand({ Name: 'other', Scope: 'CLOUDFRONT', Id: set.Id })),
    );
    expect(wrongName).toBeInstanceOf(WAFNonexistentItemException);
  });

  it('raises WAFDuplicateItemException for a second set of the same name and scope', async () => {
    const c = client();
    await createSet(c, 'edgeban');
    expect(await caught(createSet(c, 'edgeban'))).toBeInstanceOf(WAFDuplicateItemException);
  });

  it('raises ValidationException when a member breaks the model constraints', async () => {
    const err = await caught(createSet(client(), 'bad name'));
    expect(err).toBeInstanceOf(WAFV2ServiceException);
    expect((err as Error).name).toBe('ValidationException');
    expect((err as Error).message).toMatch(/at 'name' failed to satisfy constraint/);
  });

  it('clears the description when an update omits it, as a full replacement', async () => {
    const c = client();
    const out = await c.send(
      new CreateIPSetCommand({
        Name: 'described',
        Scope: 'CLOUDFRONT',
        IPAddressVersion: 'IPV4',
        Addresses: [],
        Description: 'managed by edgeban',
      }),
    );
    const s = out.Summary!;
    expect(s.Description).toBe('managed by edgeban');
    await c.send(
      new UpdateIPSetCommand({
        Name: s.Name,
        Scope: 'CLOUDFRONT',
        Id: s.Id,
        LockToken: s.LockToken,
        Addresses: [],
      }),
    );
    const got = await c.send(new GetIPSetCommand({ Name: s.Name, Scope: 'CLOUDFRONT', Id: s.Id }));
    expect(got.IPSet?.Description).toBeUndefined();
  });

  it('pages ListIPSets by Limit and NextMarker', async () => {
    const c = client();
    for (const n of ['c', 'a', 'b']) await createSet(c, n);
    const first = await c.send(new ListIPSetsCommand({ Scope: 'CLOUDFRONT', Limit: 2 }));
    expect(first.IPSets?.map((s) => s.Name)).toEqual(['a', 'b']);
    expect(first.NextMarker).toBeDefined();
    const second = await c.send(
      new ListIPSetsCommand({ Scope: 'CLOUDFRONT', Limit: 2, NextMarker: first.NextMarker }),
    );
    expect(second.IPSets?.map((s) => s.Name)).toEqual(['c']);
    expect(second.NextMarker).toBeUndefined();
  });

  it('deletes a set with its current LockToken', async () => {
    const c = client();
    const set = await createSet(c, 'gone');
    await c.send(
      new DeleteIPSetCommand({
        Name: set.Name,
        Scope: set.Scope,
        Id: set.Id,
        LockToken: set.LockToken,
      }),
    );
    const err = await caught(
      c.send(new GetIPSetCommand({ Name: set.Name, Scope: set.Scope, Id: set.Id })),
    );
    expect(err).toBeInstanceOf(WAFNonexistentItemException);
  });
});

describe('WafEmulator observation', () => {
  it('records every address written, even after removal, but not console edits', async () => {
    const c = client();
    const set = await createSet(c, 'edgeban', ['192.0.2.1/32']);
    const up = await c.send(
      new UpdateIPSetCommand({
        Name: set.Name,
        Scope: set.Scope,
        Id: set.Id,
        LockToken: set.LockToken,
        Addresses: ['192.0.2.2/32'],
      }),
    );
    const console = waf.setAddresses({ name: 'edgeban' }, ['203.0.113.9/32']);
    expect(console).not.toBe(up.NextLockToken);
    expect(waf.allAddressesEverWritten()).toEqual(['192.0.2.1/32', '192.0.2.2/32']);
    expect(waf.ipSet({ name: 'edgeban' }).addresses).toEqual(['203.0.113.9/32']);
    // The console edit made the pipeline's token stale.
    const err = await caught(
      c.send(
        new UpdateIPSetCommand({
          Name: set.Name,
          Scope: set.Scope,
          Id: set.Id,
          LockToken: up.NextLockToken,
          Addresses: [],
        }),
      ),
    );
    expect(err).toBeInstanceOf(WAFOptimisticLockException);
    expect(waf.updateCount({ name: 'edgeban' })).toBe(1);
  });

  it('logs each call with its operation, set and outcome', async () => {
    const c = client();
    await createSet(c, 'logged');
    const missing = '00000000-0000-4000-8000-000000000000';
    await caught(c.send(new GetIPSetCommand({ Name: 'logged', Scope: 'CLOUDFRONT', Id: missing })));
    expect(waf.calls()).toEqual([
      {
        seq: 1,
        at: expect.any(Number),
        operation: 'CreateIPSet',
        scope: 'CLOUDFRONT',
        name: 'logged',
        id: null,
        ok: true,
        error: null,
        injected: false,
      },
      expect.objectContaining({
        seq: 2,
        operation: 'GetIPSet',
        ok: false,
        error: 'WAFNonexistentItemException',
        injected: false,
      }),
    ]);
    expect(waf.counters().operations).toEqual({
      CreateIPSet: { ok: 1, error: 0 },
      GetIPSet: { ok: 0, error: 1 },
    });
  });

  it('refuses console edits that the service would refuse', () => {
    waf.createIpSet({
      name: 'pre',
      scope: 'REGIONAL',
      ipAddressVersion: 'IPV6',
      region: 'eu-west-1',
    });
    expect(() => waf.setAddresses({ name: 'pre' }, ['192.0.2.1/32'])).toThrow(
      /WAFInvalidParameterException/,
    );
    expect(waf.ipSet({ name: 'pre' }).arn).toMatch(
      /^arn:aws:wafv2:eu-west-1:\d{12}:regional\/ipset\/pre\//,
    );
  });
});

describe('WafEmulator faults', () => {
  it('injects a lock conflict that rotates the token like a concurrent writer', async () => {
    const c = client();
    const set = await createSet(c, 'edgeban', ['192.0.2.1/32']);
    waf.setFaults({ lockConflictNext: 1 });
    const base = { Name: set.Name, Scope: set.Scope, Id: set.Id } as const;
    const err = await caught(
      c.send(
        new UpdateIPSetCommand({ ...base, LockToken: set.LockToken, Addresses: ['192.0.2.2/32'] }),
      ),
    );
    expect(err).toBeInstanceOf(WAFOptimisticLockException);
    const got = await c.send(new GetIPSetCommand(base));
    expect(got.LockToken).not.toBe(set.LockToken);
    expect(got.IPSet?.Addresses).toEqual(['192.0.2.1/32']);
    await c.send(
      new UpdateIPSetCommand({ ...base, LockToken: got.LockToken, Addresses: ['192.0.2.2/32'] }),
    );
    expect(waf.counters().injected.lockConflict).toBe(1);
    expect(
      waf
        .calls()
        .filter((x) => x.injected)
        .map((x) => x.error),
    ).toEqual(['WAFOptimisticLockException']);
    expect(waf.updateCount({ id: set.Id })).toBe(1);
  });

  it('has the SDK retry throttled calls until they succeed', async () => {
    const c = client({ maxAttempts: 3 });
    waf.setFaults({ throttleNext: 2 });
    const out = await c.send(new ListIPSetsCommand({ Scope: 'CLOUDFRONT' }));
    expect(out.$metadata.attempts).toBe(3);
    expect(waf.counters().injected.throttle).toBe(2);
  });

  it('surfaces ThrottlingException when the SDK does not retry', async () => {
    waf.setFaults({ throttleRate: 1 });
    const err = await caught(client().send(new ListIPSetsCommand({ Scope: 'CLOUDFRONT' })));
    expect(err).toBeInstanceOf(WAFV2ServiceException);
    expect((err as WAFV2ServiceException).name).toBe('ThrottlingException');
    expect((err as WAFV2ServiceException).$metadata.httpStatusCode).toBe(400);
  });

  it('throttles at the configured rate, the same calls for the same seed', async () => {
    const c = client();
    const run = async (): Promise<boolean[]> => {
      waf.setFaults({ throttleRate: 0.25, seed: 42 });
      const outcomes: boolean[] = [];
      for (let i = 0; i < 200; i++) {
        const throttled = await c.send(new ListIPSetsCommand({ Scope: 'CLOUDFRONT' })).then(
          () => false,
          (err: Error) => {
            if (err.name !== 'ThrottlingException') throw err;
            return true;
          },
        );
        outcomes.push(throttled);
      }
      return outcomes;
    };
    const a = await run();
    const b = await run();
    expect(a).toEqual(b);
    const throttled = a.filter(Boolean).length;
    expect(throttled).toBeGreaterThan(25);
    expect(throttled).toBeLessThan(75);
  });

  it('throttles only the listed operations', async () => {
    const c = client();
    const set = await createSet(c, 'edgeban');
    waf.setFaults({ throttleRate: 1, throttleOperations: ['UpdateIPSet'] });
    await c.send(new GetIPSetCommand({ Name: set.Name, Scope: set.Scope, Id: set.Id }));
    const err = await caught(
      c.send(
        new UpdateIPSetCommand({
          Name: set.Name,
          Scope: set.Scope,
          Id: set.Id,
          LockToken: set.LockToken,
          Addresses: [],
        }),
      ),
    );
    expect((err as Error).name).toBe('ThrottlingException');
  });

  it('takes faults and console edits through the admin HTTP endpoint', async () => {
    const post = (path: string, body: unknown) =>
      fetch(`${waf.endpoint}${path}`, { method: 'POST', body: JSON.stringify(body) });
    expect((await post('/__admin/faults', { lockConflictRate: 0.5, seed: 7 })).status).toBe(200);
    expect(waf.faults()).toMatchObject({ lockConflictRate: 0.5, seed: 7 });
    const bad = await post('/__admin/faults', { throttleRate: 2 });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: 'throttleRate must be between 0 and 1, got 2' });

    const created = await post('/__admin/ip-sets', {
      name: 'console',
      scope: 'CLOUDFRONT',
      ipAddressVersion: 'IPV4',
    });
    expect(created.status).toBe(200);
    const before = waf.ipSet({ name: 'console' }).lockToken;
    const edit = await post('/__admin/ip-sets/addresses', {
      name: 'console',
      addresses: ['198.51.100.0/24'],
    });
    const { lockToken } = (await edit.json()) as { lockToken: string };
    expect(lockToken).not.toBe(before);
    const state = (await (await fetch(`${waf.endpoint}/__admin/state`)).json()) as {
      ipSets: { addresses: string[] }[];
    };
    expect(state.ipSets.map((s) => s.addresses)).toEqual([['198.51.100.0/24']]);
  });
});

describe('WafEmulator wire protocol', () => {
  it('answers errors with __type, the x-amzn-ErrorType header and a request id', async () => {
    const res = await fetch(waf.endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': 'AWSWAF_20190729.GetIPSet',
        authorization: 'AWS4-HMAC-SHA256 Credential=AKID/20240501/us-east-1/wafv2/aws4_request',
      },
      body: JSON.stringify({
        Name: 'x',
        Scope: 'CLOUDFRONT',
        Id: '00000000-0000-4000-8000-000000000000',
      }),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/x-amz-json-1.1');
    expect(res.headers.get('x-amzn-errortype')).toBe('WAFNonexistentItemException');
    expect(res.headers.get('x-amzn-requestid')).toMatch(/^[0-9a-f-]{36}$/);
    expect(await res.json()).toEqual({
      __type: 'WAFNonexistentItemException',
      Message: expect.stringContaining('doesn’t exist'),
    });
  });

  it('refuses an unknown operation and an unsigned request', async () => {
    const headers = {
      'content-type': 'application/x-amz-json-1.1',
      authorization: 'AWS4-HMAC-SHA256 Credential=AKID/20240501/us-east-1/wafv2/aws4_request',
    };
    const unknown = await fetch(waf.endpoint, {
      method: 'POST',
      headers: { ...headers, 'x-amz-target': 'AWSWAF_20190729.PutIPSet' },
      body: '{}',
    });
    expect(((await unknown.json()) as { __type: string }).__type).toBe('UnknownOperationException');
    const unsigned = await fetch(waf.endpoint, {
      method: 'POST',
      headers: {
        'content-type': headers['content-type'],
        'x-amz-target': 'AWSWAF_20190729.ListIPSets',
      },
      body: '{"Scope":"CLOUDFRONT"}',
    });
    expect(((await unsigned.json()) as { __type: string }).__type).toBe(
      'MissingAuthenticationTokenException',
    );
  });
});

describe('WafEmulator web ACLs', () => {
  const visibility = {
    SampledRequestsEnabled: true,
    CloudWatchMetricsEnabled: true,
    MetricName: 'edgeban',
  };

  function ipSetRule(arn: string): Rule {
    return {
      Name: 'edgeban-block',
      Priority: 0,
      Action: { Block: {} },
      Statement: { IPSetReferenceStatement: { ARN: arn } },
      VisibilityConfig: visibility,
    };
  }

  it('stores a rule on an IP set and protects the set from deletion', async () => {
    const c = client();
    const set = await createSet(c, 'edgeban');
    const acl = await c.send(
      new CreateWebACLCommand({
        Name: 'edgeban',
        Scope: 'CLOUDFRONT',
        DefaultAction: { Allow: {} },
        VisibilityConfig: visibility,
        Rules: [ipSetRule(set.ARN)],
      }),
    );
    const got = await c.send(
      new GetWebACLCommand({ Name: 'edgeban', Scope: 'CLOUDFRONT', Id: acl.Summary!.Id! }),
    );
    expect(got.WebACL?.Rules?.[0]?.Statement?.IPSetReferenceStatement?.ARN).toBe(set.ARN);
    expect(got.WebACL?.ARN).toMatch(/:global\/webacl\/edgeban\//);
    const del = await caught(
      c.send(
        new DeleteIPSetCommand({
          Name: set.Name,
          Scope: set.Scope,
          Id: set.Id,
          LockToken: set.LockToken,
        }),
      ),
    );
    expect(del).toBeInstanceOf(WAFAssociatedItemException);

    const switched = await c.send(
      new UpdateWebACLCommand({
        Name: 'edgeban',
        Scope: 'CLOUDFRONT',
        Id: acl.Summary!.Id!,
        LockToken: got.LockToken,
        DefaultAction: { Allow: {} },
        VisibilityConfig: visibility,
        Rules: [{ ...ipSetRule(set.ARN), Action: { Count: {} } }],
      }),
    );
    expect(switched.NextLockToken).not.toBe(got.LockToken);
    const after = await c.send(new GetWebACLCommand({ ARN: acl.Summary!.ARN }));
    expect(after.WebACL?.Rules?.[0]?.Action).toEqual({ Count: {} });
  });

  it('raises WAFNonexistentItemException for a rule on a set that does not exist', async () => {
    const err = await caught(
      client().send(
        new CreateWebACLCommand({
          Name: 'edgeban',
          Scope: 'CLOUDFRONT',
          DefaultAction: { Allow: {} },
          VisibilityConfig: visibility,
          Rules: [
            ipSetRule(
              `arn:aws:wafv2:us-east-1:${LOCAL_ACCOUNT_ID}:global/ipset/x/00000000-0000-4000-8000-000000000000`,
            ),
          ],
        }),
      ),
    );
    expect(err).toBeInstanceOf(WAFNonexistentItemException);
  });
});
