/**
 * The scenario's real-time distribution: its requests reach the Kinesis
 * stream within seconds, so the scenario plays its minutes in slices and
 * shows a block at the second it lands.
 */
import { realtimeFields } from '../lambda/core/formats/realtime';
import type { LocalPipeline } from './pipeline';
import { type RealtimeHit, realtimeRecords } from './realtime-records';

/** The distribution the scenario counts from real-time logs. */
export const REALTIME_DISTRIBUTION = 'E3REALTIMEDEMO';

/** How often the scenario's clock steps inside a minute of real-time traffic. */
export const REALTIME_SLICE_MS = 10_000;

/**
 * Puts the hits of `[from, to)` in the stream, as CloudFront would within
 * seconds of each request.
 * @returns how many records were put
 */
export async function streamSlice(
  pipeline: LocalPipeline,
  hits: readonly RealtimeHit[],
  from: number,
  to: number,
): Promise<number> {
  const kinesis = pipeline.cloud.kinesis;
  if (kinesis === undefined) return 0;
  const slice = hits.filter((h) => h.at >= from && h.at < to);
  if (slice.length === 0) return 0;
  await kinesis.put(realtimeRecords(slice, realtimeFields(pipeline.config), String(from)));
  return slice.length;
}
