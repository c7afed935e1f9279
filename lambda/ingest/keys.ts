/**
 * Object keys as the two paths into ingest carry them.
 *
 * - **S3 event notifications** (`eventSource` `aws:s3`: the local cloud, and
 *   any bucket that notifies the queue directly): the key is URL-encoded
 *   the way HTML forms are, a space as `+`. AWS documents it: "The s3 key
 *   provides information about the bucket and object involved in the event.
 *   The object key name value is URL encoded. For example, "red flower.jpg"
 *   becomes "red+flower.jpg""
 *   (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html).
 *   A literal `+` is `%2B` there, so one decoding is exact.
 * - **EventBridge** (`eventSource` `edgeban:eventbridge`, which the stack's
 *   input transformer writes; lib/edge-ban.ts): the key is
 *   `detail.object.key` of S3's "Object Created" event, copied verbatim by
 *   the transformer. AWS does not say how that field is encoded: the S3
 *   page on it (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html)
 *   only calls it the object key, and public reports disagree (raw, or
 *   percent-encoded with `+` left as is). So the decodings are tried in
 *   turn, each only when the one before finds no object: percent-decoding
 *   with `+` literal (which is the raw key when it holds no `%`), then the
 *   key exactly as given, then form decoding.
 *
 * A wrong guess can only miss: ingest reads with `If-Match` on the event's
 * ETag, so another object that happens to have a candidate key is never
 * counted in its place.
 */

/** The `eventSource` of the messages the stack's EventBridge input transformer writes. */
export const EVENTBRIDGE_SOURCE = 'edgeban:eventbridge';

/**
 * Decodes a key as S3 event notifications write it (form encoding: `+` is
 * a space, `%XX` a UTF-8 byte).
 * @throws URIError when a `%` is not followed by two hex digits of UTF-8
 */
export function decodeEventKey(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, ' '));
}

function tryDecode(decode: () => string): string | null {
  try {
    return decode();
  } catch {
    return null;
  }
}

/**
 * The keys an event's raw key may stand for, most likely first; empty when
 * the key cannot be decoded as its source encodes keys.
 * @param eventSource the record's `eventSource`; anything but
 *   {@link EVENTBRIDGE_SOURCE} is read as an S3 event notification
 */
export function eventKeyCandidates(rawKey: string, eventSource: unknown): string[] {
  if (eventSource !== EVENTBRIDGE_SOURCE) {
    const key = tryDecode(() => decodeEventKey(rawKey));
    return key === null ? [] : [key];
  }
  const out: string[] = [];
  for (const key of [
    tryDecode(() => decodeURIComponent(rawKey)),
    rawKey,
    tryDecode(() => decodeEventKey(rawKey)),
  ]) {
    if (key !== null && key !== '' && !out.includes(key)) out.push(key);
  }
  return out;
}
