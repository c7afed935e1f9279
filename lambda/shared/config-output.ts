/**
 * The stack names of a deployment, and the pipeline stack's `Config` output: the `edgeban` config the stack was
 * deployed with, under a schema version, so an operator CLI of another
 * edgeban version refuses rather than misreads it. Written by the CDK app,
 * read by the CLI's `--stack`.
 */

/** Stack ids (= names) of an unstaged deployment. */
export const STACK_NAMES = { pipeline: 'Edgeban', waf: 'EdgebanWaf' } as const;

/** The pipeline stack's name for a stage: `Edgeban-<stage>`, or `Edgeban` with none. */
export function pipelineStackName(stage: string | undefined): string {
  return stage === undefined ? STACK_NAMES.pipeline : `${STACK_NAMES.pipeline}-${stage}`;
}

/** The version this edgeban writes and reads. */
export const CONFIG_OUTPUT_SCHEMA = 1;

/** Base error of this module: one line, for the CLI to print. */
export class ConfigOutputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigOutputError';
  }
}

/** The output's value for a config object (comments already stripped). */
export function configOutput(config: Readonly<Record<string, unknown>>): string {
  return JSON.stringify({ schemaVersion: CONFIG_OUTPUT_SCHEMA, config });
}

/**
 * The config object an output carries. A stack deployed before the schema
 * version existed carries the config itself, and is read as such.
 * @throws ConfigOutputError when the output is not JSON, or has a schema version this edgeban does not know
 */
export function readConfigOutput(value: string): unknown {
  let doc: unknown;
  try {
    doc = JSON.parse(value);
  } catch {
    throw new ConfigOutputError('is not JSON');
  }
  if (typeof doc !== 'object' || doc === null || !('schemaVersion' in doc)) return doc;
  const { schemaVersion, config } = doc as { schemaVersion: unknown; config?: unknown };
  if (schemaVersion !== CONFIG_OUTPUT_SCHEMA) {
    throw new ConfigOutputError(
      `has schema version ${JSON.stringify(schemaVersion)}, and this edgeban reads version ${CONFIG_OUTPUT_SCHEMA}: use the edgeban version that deployed the stack`,
    );
  }
  return config;
}
