/**
 * Ingest Lambda: an SQS batch of S3 object-created events in, partial batch
 * failures out. Clients are built and the environment is checked once, at
 * init; the work is {@link handleIngestBatch}.
 */
import { S3Client } from '@aws-sdk/client-s3';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { METRIC_SERVICES } from '../shared/contract';
import { counterLambda } from '../shared/counter-lambda';
import { ingestBudget } from './admission';
import { handleIngestBatch } from './ingest';

const runtime = counterLambda(METRIC_SERVICES.ingest, 'ingest');
// Lambda sets the function's memory in MB; objects run at once as they fit in it.
// https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
const memoryMb = Number(process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE);
const memoryBudget = Number.isFinite(memoryMb) && memoryMb > 0 ? ingestBudget(memoryMb) : undefined;
const s3 = new S3Client({});

/** Handles one SQS batch; the records that failed are retried by SQS. */
export async function handler(event: SQSEvent): Promise<SQSBatchResponse> {
  return runtime.run((deps) =>
    handleIngestBatch(
      { ...deps, s3, ...(memoryBudget === undefined ? {} : { memoryBudget }) },
      event,
    ),
  );
}
