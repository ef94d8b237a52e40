/**
 * ping, in AssemblyScript: calls pong over a protected-procedure (pp) channel ROUNDS times with
 * a counter in MR0; pong answers with the counter plus one. ping prints each answer, then
 * notifies pong. The same program as examples/pingpong/ping.c, with the same output, so either
 * can talk to either pong (see ping-as.system).
 * Build: scripts/build-as-pd.sh examples/as-pingpong/ping.wasm examples/as-pingpong/ping.ts
 */
import {
  microkit_channel,
  microkit_dbg_put32,
  microkit_dbg_puts,
  microkit_mr_get,
  microkit_mr_set,
  microkit_msginfo_get_count,
  microkit_msginfo_get_label,
  microkit_msginfo_new,
  microkit_name,
  microkit_notify,
  microkit_ppcall,
} from "../../lib/as/microkit";

const PONG: microkit_channel = 0;
const ROUNDS = 5;

export function init(): void {
  let counter: u64 = 0;
  microkit_dbg_puts(microkit_name);
  microkit_dbg_puts(": start\n");
  for (let i = 0; i < ROUNDS; i++) {
    microkit_mr_set(0, counter);
    const reply = microkit_ppcall(PONG, microkit_msginfo_new(0, 1));
    if (microkit_msginfo_get_label(reply) != 0 || microkit_msginfo_get_count(reply) != 1) {
      microkit_dbg_puts("ping: unexpected reply\n");
      return;
    }
    counter = microkit_mr_get(0);
    microkit_dbg_puts("ping: pong answered ");
    microkit_dbg_put32(<u32>counter);
    microkit_dbg_puts("\n");
  }
  microkit_dbg_puts("ping: done, counter = ");
  microkit_dbg_put32(<u32>counter);
  microkit_dbg_puts("\n");
  microkit_notify(PONG);
}

export function notified(ch: microkit_channel): void {}
