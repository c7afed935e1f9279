/**
 * Which source counts a distribution (DESIGN section 8): a distribution in
 * `realtime.distributionIds` is counted from its real-time logs only, so
 * standard log objects of it that still reach the bucket are skipped.
 */

/**
 * The real-time distribution whose standard logs an object holds, or null:
 * CloudFront names legacy log objects `<prefix><distribution id>.<date>...`
 * and v2 delivery puts them under a `<distribution id>/` folder.
 */
export function realtimeDistributionOf(key: string, realtimeIds: readonly string[]): string | null {
  if (realtimeIds.length === 0) return null;
  const parts = key.split('/');
  const base = parts[parts.length - 1] ?? '';
  for (const id of realtimeIds) {
    if (base.startsWith(`${id}.`) || parts.slice(0, -1).includes(id)) return id;
  }
  return null;
}
