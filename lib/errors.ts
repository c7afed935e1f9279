/**
 * A construct property or config combination the CDK app cannot build:
 * one line naming the field and the value, shown by `cdk synth` without a
 * stack trace (`bin/app.ts`).
 */
export class EdgeBanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EdgeBanError';
  }
}
