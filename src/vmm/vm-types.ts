/**
 * The contract between the VMM PD (vmm-pd.ts, in the main thread) and its VM's worker
 * (vm-worker.ts): what the worker is given at start and the messages they exchange.
 */
import type { MessagePort } from "node:worker_threads";
import type { GuestImage } from "./snapshot.js";

export interface VmWorkerData {
  vm: string;
  image: GuestImage;
  memoryBytes: number;
  /** Where the saved machine state is kept (made on first boot, reused after). */
  snapshotDir: string;
  /** The ring region of the cross-VM channel (docs/vm-channel.md), when the VM has one. */
  ring: SharedArrayBuffer | null;
  /**
   * Int32 words shared with the VMM: [KICK] is bumped and notified when the VMM learns that the
   * other end published something (its notification), so a halted guest's worker wakes at once.
   */
  control: SharedArrayBuffer;
  /** Receives console input and sends console output, progress and errors (VmMessage). */
  port: MessagePort;
}

export const CONTROL_KICK = 0;
export const CONTROL_WORDS = 4;

/**
 * The guest-physical address the channel device's doorbell is reported at. The guest rings it
 * by port I/O; the vcpu's thread takes a VM fault there, as an ARM guest's write to an unmapped
 * device page reaches a Microkit VMM, and the VMM notifies the channel and resumes it.
 */
export const DOORBELL_ADDR = 0xfeb0_0000;

/** A fault number (seL4_UserException) the worker raises when the guest kernel panics. */
export const GUEST_PANIC = 0x7e57;
/** ... and when the backend itself failed (the guest image could not be started). */
export const BACKEND_FAILED = 0x7e58;

/** Worker to VMM. */
export type VmMessage =
  | { type: "console"; bytes: Uint8Array }
  | { type: "progress"; message: string }
  | { type: "error"; message: string }
  | { type: "ready"; restoredMs: number; fromSnapshot: boolean };

/** VMM to worker. */
export type VmCommand = { type: "input"; bytes: Uint8Array };
