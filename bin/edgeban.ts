#!/usr/bin/env node
import { run } from '../cli/main';

// The SDK's notice about future Node.js versions is not an edgeban error:
// stderr carries only the one-line messages of the CLI contract.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
process.exitCode = await run(process.argv.slice(2));
