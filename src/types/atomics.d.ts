/** Atomics.waitAsync (ES2024), present in Node 20 but absent from TypeScript's ES2022 library. */
interface Atomics {
  waitAsync(
    typedArray: Int32Array,
    index: number,
    value: number,
    timeout?: number,
  ): { async: false; value: "not-equal" | "timed-out" } | { async: true; value: Promise<"ok" | "timed-out"> };
}
