/**
 * The widget's documentation, returned as Markdown when the console asks
 * with `describe: true` (the "Documentation" of a custom widget).
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/add_custom_widget_dashboard_about.html
 */
import { TOKEN_TTL_SECONDS } from './token';

/** Markdown documentation of the widget. */
export const WIDGET_DOCS = `## edgeban: blocks

Reviews and lifts the blocks edgeban put into AWS WAF.

**Table.** Each active block: the key (an address, or a CIDR for a rule
counting by prefix), the rule that fired or *manual*, the peak request
count against the rule's threshold and its window, when the rule was first
exceeded, until when the block runs (in the dashboard's time zone), the
offence number (blocks grow longer with each offence), who made a manual
block and why, and whether the address is in a WAF IP set yet. 50 rows a
page.

**Around it.** The mode (a warning when paused or counting), the last
reconcile and the log lag, how full each IP set is, and the most recent
events of every key (block, unblock, expire, reset).

**Check.** Type an address or CIDR and press *Check*: the widget says
whether it is guarded (edgeban never blocks it) and which blocks cover it,
and the events list shows its history and that of the ranges around it.

**Actions.** *Unblock* ends every block of a key now; only new traffic can
block it again. *Block* blocks an address or CIDR by hand for the duration
given (empty: \`block.duration\`). Both change the state table and the
reconciler applies them to WAF, as the CLI does, with the same refusals.
Actions are recorded as by the console widget: the console does not tell
the function who pressed; CloudTrail's Lambda data events do.

**Access.** Viewing needs \`lambda:InvokeFunction\` on the read-only
function; acting needs it on the acting function too. A button works only
with a token the read-only function minted into this widget less than
${TOKEN_TTL_SECONDS / 60} minutes ago, so a button copied onto another
dashboard cannot act.

### Parameters
Param | Description
---|---
**page** | the page of the table (default 1)
**filter** | an address or CIDR to check (default none)
`;
