/**
 * Action tokens of the console widget: the defence against a confused
 * deputy. Anyone who may edit a dashboard can write a `<cwdb-action
 * action="call">` that names the acting function, and the console invokes
 * it with the credentials of whoever clicks (an administrator, say). So
 * the acting function acts only on a token that the read-only function
 * minted into the page it rendered:
 *
 * `v1.<expiry epoch seconds>.<base64url HMAC-SHA256>` over the action, its
 * target (a key for `unblock`; `*` for the block form, whose address is
 * typed in), the dashboard and widget it was rendered for, and the expiry.
 * A button planted on another dashboard carries another dashboard's
 * `widgetContext`, a button planted on this one can only replay a token
 * copied from a render, which expires within minutes, and a token for one
 * key cannot unblock another.
 *
 * The key is a random secret that both functions read; only the
 * read-only function's code mints. Comparison is constant time.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** What a token allows. */
export interface TokenClaim {
  readonly action: 'unblock' | 'block';
  /** The key to unblock, or `*` for the block form. */
  readonly target: string;
  /** `widgetContext.dashboardName` of the render. */
  readonly dashboard: string;
  /** `widgetContext.widgetId` of the render. */
  readonly widget: string;
}

/** How long a minted token is good for: a page older than this must be refreshed to act. */
export const TOKEN_TTL_SECONDS = 15 * 60;

/** The shortest key accepted: 32 bytes, the HMAC-SHA256 block's half. */
export const MIN_KEY_BYTES = 32;

/** Why a token was refused. */
export class TokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenError';
  }
}

function checkKey(key: Uint8Array): void {
  if (key.length < MIN_KEY_BYTES) {
    throw new TokenError(
      `the widget token key must be at least ${MIN_KEY_BYTES} bytes, got ${key.length}`,
    );
  }
}

function mac(key: Uint8Array, claim: TokenClaim, expires: number): Buffer {
  // Fields joined by a byte no field can hold (a newline), so no two claims share a message.
  const message = [
    'edgeban-widget-v1',
    claim.action,
    claim.target,
    claim.dashboard,
    claim.widget,
    String(expires),
  ]
    .map((f) => f.replace(/\n/g, ' '))
    .join('\n');
  return createHmac('sha256', key).update(message).digest();
}

/**
 * Mints a token for one action.
 * @param nowMs the clock, epoch milliseconds
 */
export function mintToken(
  key: Uint8Array,
  claim: TokenClaim,
  nowMs: number,
  ttlSeconds = TOKEN_TTL_SECONDS,
): string {
  checkKey(key);
  const expires = Math.floor(nowMs / 1000) + ttlSeconds;
  return `v1.${expires}.${mac(key, claim, expires).toString('base64url')}`;
}

/**
 * Checks a token against the claim the request makes.
 * @throws TokenError naming why it is refused (malformed, forged or for another claim, expired)
 */
export function verifyToken(
  key: Uint8Array,
  token: unknown,
  claim: TokenClaim,
  nowMs: number,
): void {
  checkKey(key);
  if (typeof token !== 'string' || token === '') {
    throw new TokenError('the action carries no token: use the buttons of the edgeban widget');
  }
  const m = /^v1\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (m === null) throw new TokenError('the action token is malformed');
  const expires = Number(m[1]);
  const given = Buffer.from(m[2] ?? '', 'base64url');
  const expected = mac(key, claim, expires);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new TokenError(
      'the action token is not valid for this action, address and widget: use the buttons of the edgeban widget',
    );
  }
  if (Math.floor(nowMs / 1000) >= expires) {
    throw new TokenError('the page is too old to act from: refresh the widget and try again');
  }
}
