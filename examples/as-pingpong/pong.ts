/**
 * pong, in AssemblyScript: answers each protected call from ping with MR0 + 1, and reports
 * ping's notification. The same program as examples/pingpong/pong.c, with the same output.
 * It is passive in the systems here: it runs on its callers' scheduling contexts.
 * Build: scripts/build-as-pd.sh examples/as-pingpong/pong.wasm examples/as-pingpong/pong.ts
 */
import {
  microkit_channel,
  microkit_dbg_puts,
  microkit_mr_get,
  microkit_mr_set,
  microkit_msginfo,
  microkit_msginfo_get_count,
  microkit_msginfo_new,
} from "../../lib/as/microkit";

const PING: microkit_channel = 0;

export function init(): void {
  microkit_dbg_puts("pong: ready\n");
}

// `protected` is a reserved word in TypeScript: export the handler under that name.
function handleCall(ch: microkit_channel, msginfo: microkit_msginfo): microkit_msginfo {
  if (ch != PING || microkit_msginfo_get_count(msginfo) != 1) {
    return microkit_msginfo_new(1, 0);
  }
  microkit_mr_set(0, microkit_mr_get(0) + 1);
  return microkit_msginfo_new(0, 1);
}
export { handleCall as protected };

export function notified(ch: microkit_channel): void {
  if (ch == PING) {
    microkit_dbg_puts("pong: notified by ping\n");
  }
}
