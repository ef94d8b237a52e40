/**
 * A Linux guest's serial console driven the way a script would drive `capvisor console`: send a
 * shell command line, wait for its output and exit status (shared by the VM tests).
 */
import type { VmmPD } from "../../src/vmm/vmm-pd.js";

/** The guest's console as a script sees it: send a command line, wait for its output. */
export class Console {
  private text = "";
  private waiters: (() => void)[] = [];
  private n = 0;
  constructor(private readonly vm: VmmPD) {
    vm.onConsole((bytes) => {
      this.text += Buffer.from(bytes).toString("latin1");
      for (const w of this.waiters.splice(0)) w();
    });
  }
  /** Everything the guest printed so far, without terminal escapes and CRs. */
  get output(): string {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the guest's terminal escapes
    return this.text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").replace(/\r/g, "");
  }
  async waitFor(re: RegExp, ms: number, from = 0): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const out = this.output.slice(from);
      if (re.test(out)) return out;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`the guest did not print ${re} within ${ms} ms; it printed:\n${out.slice(-2000)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
  /**
   * Run a shell command line; resolves with what it printed (up to the end marker). The marker is
   * computed by the shell, so the echoed command line never contains it.
   */
  async sh(cmd: string, ms = 60_000): Promise<string> {
    const k = ++this.n;
    const from = this.output.length;
    this.vm.sendConsole(
      new TextEncoder().encode(
        `echo "@@beg $((${k}*1000+3))@@"; ${cmd}; echo "@@end $((${k}*1000+7))@@ rc=$?"\n`,
      ),
    );
    const re = new RegExp(`@@end ${k * 1000 + 7}@@ rc=(\\d+)`);
    const out = await this.waitFor(re, ms, from);
    const m = re.exec(out)!;
    // The echoed command line (which the terminal may wrap) ends before the begin marker's output.
    const beg = `@@beg ${k * 1000 + 3}@@\n`;
    const body = out.slice(out.indexOf(beg) + beg.length, m.index);
    return `${body}rc=${m[1]}`;
  }
}
