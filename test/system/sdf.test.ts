/** The Microkit SDF parser and validator: structure of a valid system, and one test per rule. */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  formatDiagnostic,
  loadSdf,
  parseSdf,
  SdfError,
  type SdfLocation,
  type SystemDescription,
} from "../../src/system/sdf.js";

const FILE = "system.xml";
const at = (line: number, column: number): SdfLocation => ({ file: FILE, line, column });

/** A system whose lines are numbered from 1 (`<system>`) as written here. */
const sys = (...lines: string[]) => ["<system>", ...lines, "</system>"].join("\n");

/** A PD with a program image, on one line. */
const pd = (name: string, attrs = "", body = "") =>
  `  <protection_domain name="${name}" ${attrs}><program_image path="${name}.wasm" />${body}</protection_domain>`;

/** Every error of an invalid description, formatted. */
function errors(xml: string, options = {}): string[] {
  try {
    parseSdf(xml, FILE, options);
  } catch (e) {
    assert.ok(e instanceof SdfError, String(e));
    assert.equal(e.message.split("\n").length, e.diagnostics.length + 1);
    // every diagnostic about an element points at that element's "<"
    const lines = xml.split("\n");
    for (const d of e.diagnostics)
      if (d.element)
        assert.ok(
          lines[d.line - 1]!.startsWith(`<${d.element}`, d.column - 1),
          `position of ${formatDiagnostic(d)}`,
        );
    return e.diagnostics.map(formatDiagnostic);
  }
  assert.fail("expected an SdfError");
}

const COMPLEX = `<?xml version="1.0" encoding="UTF-8"?>
<!-- a system with every kind of element -->
<system xmlns:capvisor="https://example.org/capvisor" capvisor:profile="demo">
  <memory_region name="ring" size="0x4000" />
  <memory_region name="big" size="0x400_000" page_size="0x200000" />
  <memory_region name="uart" size="4096" phys_addr="0x9000000" prefill_path="uart.bin" />
  <memory_region name="guest_ram" size="0x200000" page_size="0x200000" capvisor:zero="false" />

  <protection_domain name="server" priority="200" passive="true" stack_size="0x4000" capvisor:runtime="wasm">
    <program_image path="server.wasm" path_for_symbols="server.elf" />
    <map mr="ring" vaddr="0x2000000" perms="r" cached="false" setvar_vaddr="ring_base" setvar_size="ring_size" />
    <map mr="uart" vaddr="0x3000000" perms="rw" capvisor:coherence="exit" />
    <irq irq="33" id="5" trigger="edge" />
    <setvar symbol="uart_paddr" region_paddr="uart" />
  </protection_domain>

  <protection_domain name="client" priority="100" budget="500" period="2000" cpu="1" fpu="false">
    <program_image path="client.wasm" />
    <map mr="ring" vaddr="0x2000000" />
    <map mr="big" vaddr="0x40000000" perms="rx" />
    <protection_domain name="worker" id="0" priority="50">
      <program_image path="worker.wasm" />
    </protection_domain>
    <protection_domain name="helper" id="3">
      <program_image path="helper.wasm" />
      <protection_domain name="grandchild" id="0">
        <program_image path="grandchild.wasm" />
      </protection_domain>
    </protection_domain>
  </protection_domain>

  <protection_domain name="vmm" priority="150">
    <program_image path="vmm.wasm" />
    <virtual_machine name="linux" priority="140" budget="5000">
      <vcpu id="0" />
      <vcpu id="1" />
      <map mr="guest_ram" vaddr="0x40000000" perms="rwx" />
    </virtual_machine>
    <irq irq="0x2a" id="7" />
  </protection_domain>

  <channel>
    <end pd="client" id="1" pp="true" />
    <end pd="server" id="1" notify="false" />
  </channel>
  <channel capvisor:latency="low">
    <end pd="worker" id="2" capvisor:queue="tx" />
    <end pd="vmm" id="3" />
  </channel>
</system>
`;

describe("a valid system", () => {
  test("parses into the expected structure", () => {
    const sd = parseSdf(COMPLEX, FILE);
    const sched = (priority: number, budget = 1000, period = budget) => ({ priority, budget, period });
    const rw = { read: true, write: true, execute: false };
    const defaults = { passive: false, stackSize: 0x2000, cpu: 0, fpu: true, legacyPp: false };
    const image = (path: string, loc: SdfLocation) => ({ path, extensions: {}, loc });
    const grandchild = {
      name: "grandchild",
      ...sched(0),
      ...defaults,
      id: 0,
      parent: "helper",
      programImage: image("grandchild.wasm", at(27, 9)),
      maps: [],
      irqs: [],
      setvars: [],
      children: [],
      extensions: {},
      loc: at(26, 7),
    };
    const helper = {
      name: "helper",
      ...sched(0),
      ...defaults,
      id: 3,
      parent: "client",
      programImage: image("helper.wasm", at(25, 7)),
      maps: [],
      irqs: [],
      setvars: [],
      children: [grandchild],
      extensions: {},
      loc: at(24, 5),
    };
    const worker = {
      name: "worker",
      ...sched(50),
      ...defaults,
      id: 0,
      parent: "client",
      programImage: image("worker.wasm", at(22, 7)),
      maps: [],
      irqs: [],
      setvars: [],
      children: [],
      extensions: {},
      loc: at(21, 5),
    };
    const server = {
      name: "server",
      ...sched(200),
      ...defaults,
      passive: true,
      stackSize: 0x4000,
      programImage: { path: "server.wasm", pathForSymbols: "server.elf", extensions: {}, loc: at(10, 5) },
      maps: [
        {
          mr: "ring",
          vaddr: 0x2000000,
          perms: { read: true, write: false, execute: false },
          cached: false,
          setvarVaddr: "ring_base",
          setvarSize: "ring_size",
          extensions: {},
          loc: at(11, 5),
        },
        {
          mr: "uart",
          vaddr: 0x3000000,
          perms: rw,
          cached: true,
          extensions: { coherence: "exit" },
          loc: at(12, 5),
        },
      ],
      irqs: [{ irq: 33, id: 5, trigger: "edge", extensions: {}, loc: at(13, 5) }],
      setvars: [
        { symbol: "ring_base", kind: "vaddr", vaddr: 0x2000000, loc: at(11, 5) },
        { symbol: "ring_size", kind: "size", mr: "ring", loc: at(11, 5) },
        { symbol: "uart_paddr", kind: "paddr", region: "uart", loc: at(14, 5), extensions: {} },
      ],
      children: [],
      extensions: { runtime: "wasm" },
      loc: at(9, 3),
    };
    const client = {
      name: "client",
      ...sched(100, 500, 2000),
      ...defaults,
      cpu: 1,
      fpu: false,
      programImage: image("client.wasm", at(18, 5)),
      maps: [
        { mr: "ring", vaddr: 0x2000000, perms: rw, cached: true, extensions: {}, loc: at(19, 5) },
        {
          mr: "big",
          vaddr: 0x40000000,
          perms: { read: true, write: false, execute: true },
          cached: true,
          extensions: {},
          loc: at(20, 5),
        },
      ],
      irqs: [],
      setvars: [],
      children: [worker, helper],
      extensions: {},
      loc: at(17, 3),
    };
    const vmm = {
      name: "vmm",
      ...sched(150),
      ...defaults,
      programImage: image("vmm.wasm", at(33, 5)),
      maps: [],
      irqs: [{ irq: 42, id: 7, trigger: "level", extensions: {}, loc: at(39, 5) }],
      setvars: [],
      children: [],
      virtualMachine: {
        name: "linux",
        ...sched(140, 5000),
        vcpus: [
          { id: 0, extensions: {}, loc: at(35, 7) },
          { id: 1, extensions: {}, loc: at(36, 7) },
        ],
        maps: [
          {
            mr: "guest_ram",
            vaddr: 0x40000000,
            perms: { read: true, write: true, execute: true },
            cached: true,
            extensions: {},
            loc: at(37, 7),
          },
        ],
        extensions: {},
        loc: at(34, 5),
      },
      extensions: {},
      loc: at(32, 3),
    };
    const end = (pd: string, id: number, loc: SdfLocation, more = {}) => ({
      pd,
      id,
      pp: false,
      notify: true,
      ppFromLegacy: false,
      extensions: {},
      loc,
      ...more,
    });
    const expected: SystemDescription = {
      file: FILE,
      protectionDomains: [server, client, vmm] as SystemDescription["protectionDomains"],
      allProtectionDomains: [
        server,
        client,
        worker,
        helper,
        grandchild,
        vmm,
      ] as SystemDescription["protectionDomains"],
      memoryRegions: [
        { name: "ring", size: 0x4000, pageSize: 0x1000, pageCount: 4, extensions: {}, loc: at(4, 3) },
        { name: "big", size: 0x400000, pageSize: 0x200000, pageCount: 2, extensions: {}, loc: at(5, 3) },
        {
          name: "uart",
          size: 0x1000,
          pageSize: 0x1000,
          pageCount: 1,
          physAddr: 0x9000000,
          prefillPath: "uart.bin",
          extensions: {},
          loc: at(6, 3),
        },
        {
          name: "guest_ram",
          size: 0x200000,
          pageSize: 0x200000,
          pageCount: 1,
          extensions: { zero: "false" },
          loc: at(7, 3),
        },
      ],
      channels: [
        {
          ends: [end("client", 1, at(43, 5), { pp: true }), end("server", 1, at(44, 5), { notify: false })],
          extensions: {},
          loc: at(42, 3),
        },
        {
          ends: [end("worker", 2, at(47, 5), { extensions: { queue: "tx" } }), end("vmm", 3, at(48, 5))],
          extensions: { latency: "low" },
          loc: at(46, 3),
        },
      ],
      warnings: [],
      extensions: { profile: "demo" },
    };
    assert.deepEqual(sd, expected);
    // the flattened list holds the very same objects as the tree
    assert.equal(sd.allProtectionDomains[2], sd.protectionDomains[1]!.children[0]);
  });

  test("defaults: priority 0, budget 1000, period = budget, rw cached maps, level IRQs, notify", () => {
    const sd = parseSdf(
      sys(
        '  <memory_region name="m" size="0x1000" />',
        pd("a", 'budget="300"', '<map mr="m" vaddr="0x1000" /><irq irq="1" id="0" />'),
        pd("b"),
        '  <channel><end pd="a" id="1" /><end pd="b" id="1" /></channel>',
      ),
      FILE,
    );
    const [a, b] = sd.protectionDomains;
    assert.deepEqual([a!.priority, a!.budget, a!.period, a!.stackSize], [0, 300, 300, 0x2000]);
    assert.deepEqual([b!.budget, b!.period], [1000, 1000]);
    assert.deepEqual(a!.maps[0]!.perms, { read: true, write: true, execute: false });
    assert.equal(a!.maps[0]!.cached, true);
    assert.equal(a!.irqs[0]!.trigger, "level");
    assert.deepEqual(
      sd.channels[0]!.ends.map((e) => [e.pp, e.notify]),
      [
        [false, true],
        [false, true],
      ],
    );
  });

  test("numbers: decimal, 0x hex, and underscores as in Microkit", () => {
    const sd = parseSdf(
      sys(
        '  <memory_region name="m" size="0x1_000" />',
        pd("a", 'priority="0x1_0" budget="1_000"', '<map mr="m" vaddr="16_777_216" />'),
      ),
      FILE,
    );
    const a = sd.protectionDomains[0]!;
    assert.deepEqual(
      [a.priority, a.budget, a.maps[0]!.vaddr, sd.memoryRegions[0]!.size],
      [16, 1000, 0x1000000, 0x1000],
    );
  });

  test("loadSdf reads a file and names it in messages", async () => {
    const dir = mkdtempSync(join(tmpdir(), "capvisor-sdf-"));
    const good = join(dir, "good.xml");
    writeFileSync(good, sys(pd("a")));
    assert.equal((await loadSdf(good)).protectionDomains[0]!.name, "a");
    const bad = join(dir, "bad.xml");
    writeFileSync(bad, sys(pd("a", 'priority="999"')));
    await assert.rejects(loadSdf(bad), (e: SdfError) => {
      assert.equal(
        formatDiagnostic(e.diagnostics[0]!),
        `${bad}:2:3: <protection_domain>: priority 999 is out of range: it must be between 0 and 254`,
      );
      return true;
    });
    await assert.rejects(
      loadSdf(join(dir, "missing.xml")),
      /cannot read system description .*missing\.xml: ENOENT/,
    );
  });
});

describe("validation rules", () => {
  test("unknown elements, at every level", () => {
    assert.deepEqual(
      errors(
        sys(
          "  <protection_domian />",
          '  <protection_domain name="a"><program_image path="a.wasm" /><mapp /></protection_domain>',
          '  <channel><end pd="a" id="0" /><start /></channel>',
        ),
      ),
      [
        "system.xml:2:3: <protection_domian>: unknown element inside <system> (allowed there: protection_domain, memory_region, channel): remove it or fix its name",
        "system.xml:3:62: <mapp>: unknown element inside <protection_domain> (allowed there: program_image, map, irq, setvar, protection_domain, virtual_machine): remove it or fix its name",
        "system.xml:4:3: <channel>: a channel has exactly two <end> elements, this one has 1: add one",
        "system.xml:4:33: <start>: unknown element inside <channel> (allowed there: end): remove it or fix its name",
      ],
    );
  });

  test("unknown attributes", () => {
    assert.deepEqual(errors(sys(pd("a", 'prio="3"'))), [
      'system.xml:2:3: <protection_domain>: unknown attribute "prio" (allowed: name, priority, budget, period, passive, stack_size, cpu, fpu, pp): remove it or fix its name',
    ]);
    assert.deepEqual(
      errors(
        sys(pd("a"), pd("b"), '  <channel name="x"><end pd="a" id="0" /><end pd="b" id="0" /></channel>'),
      ),
      [
        'system.xml:4:3: <channel>: unknown attribute "name" (it takes no attributes): remove it or fix its name',
      ],
    );
  });

  test("required attributes", () => {
    assert.deepEqual(
      errors(
        sys(
          '  <memory_region name="m" />',
          '  <protection_domain priority="1"><program_image /><map vaddr="0x1000" /></protection_domain>',
        ),
      ),
      [
        'system.xml:2:3: <memory_region>: missing required attribute "size": add size="0x1000"',
        'system.xml:3:3: <protection_domain>: missing required attribute "name": add name="my_pd"',
        'system.xml:3:35: <program_image>: missing required attribute "path": add path="?.wasm"',
        'system.xml:3:52: <map>: missing required attribute "mr": add mr="my_region"',
      ],
    );
  });

  test("number formats", () => {
    assert.deepEqual(errors(sys(pd("a", 'priority="1O" budget="0X10" period="-5"'))), [
      'system.xml:2:3: <protection_domain>: priority "1O" is not a number: write it in decimal (4096) or hexadecimal with 0x (0x1000)',
      'system.xml:2:3: <protection_domain>: budget "0X10" is not a number: write it in decimal (4096) or hexadecimal with 0x (0x1000)',
      'system.xml:2:3: <protection_domain>: period "-5" is not a number: write it in decimal (4096) or hexadecimal with 0x (0x1000)',
    ]);
    assert.deepEqual(errors(sys('  <memory_region name="m" size="0x1_0000_0000_0000_0000" />', pd("a"))), [
      "system.xml:2:3: <memory_region>: size 0x10000000000000000 does not fit in 64 bits",
    ]);
  });

  test("priority 0-254, budget at least 1, period >= budget", () => {
    assert.deepEqual(
      errors(sys(pd("a", 'priority="255"'), pd("b", 'budget="0"'), pd("c", 'budget="2000" period="1000"'))),
      [
        "system.xml:2:3: <protection_domain>: priority 255 is out of range: it must be between 0 and 254",
        "system.xml:3:3: <protection_domain>: budget 0 is out of range: it must be at least 1",
        "system.xml:4:3: <protection_domain>: budget (2000) must be less than, or equal to, period (1000): raise period or lower budget",
      ],
    );
  });

  test("stack_size 4 KiB to 16 MiB in whole pages", () => {
    assert.deepEqual(
      errors(
        sys(pd("a", 'stack_size="0x800"'), pd("b", 'stack_size="0x2000000"'), pd("c", 'stack_size="0x1800"')),
      ),
      [
        "system.xml:2:3: <protection_domain>: stack_size 0x800 is out of range: it must be between 0x1000 and 0x1000000",
        "system.xml:3:3: <protection_domain>: stack_size 0x2000000 is out of range: it must be between 0x1000 and 0x1000000",
        "system.xml:4:3: <protection_domain>: stack_size 0x1800 is not a whole number of 4 KiB pages: use 0x2000",
      ],
    );
  });

  test("cpu below the number of cores when it is known", () => {
    assert.equal(parseSdf(sys(pd("a", 'cpu="3"')), FILE).protectionDomains[0]!.cpu, 3);
    assert.deepEqual(errors(sys(pd("a", 'cpu="3"')), { cores: 2 }), [
      "system.xml:2:3: <protection_domain>: cpu 3 is out of range: it must be between 0 and 1",
    ]);
  });

  test("booleans are true or false", () => {
    assert.deepEqual(errors(sys(pd("a", 'passive="yes"'))), [
      'system.xml:2:3: <protection_domain>: passive "yes" must be "true" or "false"',
    ]);
  });

  test("at most 63 protection domains, at least one", () => {
    const many = Array.from({ length: 64 }, (_, i) => pd(`pd${i}`));
    assert.deepEqual(errors(sys(...many)), [
      "system.xml:65:3: <protection_domain>: too many protection domains: Microkit allows at most 63 and this is number 64 (of 64): merge or remove some",
    ]);
    assert.deepEqual(errors("<system>\n</system>"), [
      "system.xml:1:1: <system>: no protection domain: a system needs at least one <protection_domain>",
    ]);
  });

  test("exactly one program_image", () => {
    assert.deepEqual(
      errors(
        sys(
          '  <protection_domain name="a" />',
          '  <protection_domain name="b">',
          '    <program_image path="b.wasm" />',
          '    <program_image path="b2.wasm" />',
          "  </protection_domain>",
        ),
      ),
      [
        'system.xml:2:3: <protection_domain>: protection domain "a" has no <program_image>: add <program_image path="a.wasm" />',
        'system.xml:5:5: <program_image>: protection domain "b" already has a program image (system.xml:4:5): a PD runs exactly one, remove one',
      ],
    );
  });

  test("duplicate names of protection domains, memory regions and virtual machines", () => {
    const vm = (n: string) => `<virtual_machine name="${n}"><vcpu id="0" /></virtual_machine>`;
    assert.deepEqual(
      errors(
        sys(
          '  <memory_region name="m" size="0x1000" />',
          '  <memory_region name="m" size="0x2000" />',
          pd("a", "", vm("vm")),
          pd(
            "b",
            "",
            `<protection_domain name="a" id="1"><program_image path="x" /></protection_domain>${vm("vm")}`,
          ),
        ),
      ),
      [
        'system.xml:3:3: <memory_region>: memory region name "m" is already used at system.xml:2:3: names must be unique, rename one',
        'system.xml:5:63: <protection_domain>: protection domain name "a" is already used at system.xml:4:3: names must be unique, rename one',
        'system.xml:5:144: <virtual_machine>: virtual machine name "vm" is already used at system.xml:4:63: names must be unique, rename one',
      ],
    );
  });

  test("a map naming an unknown memory region", () => {
    assert.deepEqual(
      errors(
        sys(
          '  <memory_region name="buf" size="0x1000" />',
          '  <memory_region name="ring" size="0x1000" />',
          '  <protection_domain name="a">',
          '    <program_image path="a.wasm" />',
          '    <map mr="buf" vaddr="0x1000" />',
          '    <map mr="ring" vaddr="0x2000" />',
          "",
          "",
          "",
          "",
          '    <map mr="bufr" vaddr="0x3000" />',
          "  </protection_domain>",
        ),
      ),
      ['system.xml:12:5: <map>: memory region "bufr" does not exist (declared regions: buf, ring)'],
    );
    assert.deepEqual(errors(sys(pd("a", "", '<map mr="x" vaddr="0" />'))), [
      'system.xml:2:63: <map>: memory region "x" does not exist (no memory regions are declared)',
    ]);
  });

  test("overlapping maps in one PD", () => {
    assert.deepEqual(
      errors(
        sys(
          '  <memory_region name="buf" size="0x2000" />',
          '  <memory_region name="ring" size="0x2000" />',
          '  <protection_domain name="a">',
          '    <program_image path="a.wasm" />',
          '    <map mr="buf" vaddr="0x1000" />',
          '    <map mr="ring" vaddr="0x2000" />',
          "  </protection_domain>",
        ),
      ),
      [
        'system.xml:7:5: <map>: "ring" at [0x2000..0x4000) overlaps "buf" at [0x1000..0x3000) (system.xml:6:5) in protection domain "a": move one of them',
      ],
    );
  });

  test("vaddr aligned to the region's page size", () => {
    assert.deepEqual(
      errors(
        sys(
          '  <memory_region name="big" size="0x200000" page_size="0x200000" />',
          pd("a", "", '<map mr="big" vaddr="0x1000" />'),
        ),
      ),
      [
        'system.xml:3:63: <map>: vaddr 0x1000 is not aligned to the page size 0x200000 of memory region "big": use a multiple of 0x200000',
      ],
    );
  });

  test("maps stay below the PD's stack", () => {
    assert.deepEqual(
      errors(
        sys(
          '  <memory_region name="m" size="0x2000" />',
          pd("a", "", '<map mr="m" vaddr="0x7ffffffff000" />'),
        ),
      ),
      [
        'system.xml:3:63: <map>: "m" at [0x7ffffffff000..0x800000001000) ends above 0x7fffffffe000, the bottom of the stack of protection domain "a": map it lower',
      ],
    );
  });

  test("map perms: combinations of r, w, x; write-only refused", () => {
    assert.deepEqual(
      errors(
        sys(
          '  <memory_region name="m" size="0x1000" />',
          pd("a", "", '<map mr="m" vaddr="0x1000" perms="w" /><map mr="m" vaddr="0x2000" perms="rq" />'),
        ),
      ),
      [
        'system.xml:3:63: <map>: perms "w" is write-only, which seL4 does not allow: use "rw"',
        'system.xml:3:102: <map>: perms "rq" must be a combination of r, w and x, such as "r", "rw", "rx" or "rwx"',
      ],
    );
  });

  test("memory regions: page size, size multiple, phys_addr alignment and overlap", () => {
    assert.deepEqual(
      errors(
        sys(
          '  <memory_region name="a" size="0x3000" page_size="0x3000" />',
          '  <memory_region name="b" size="0x1800" />',
          '  <memory_region name="c" size="0x200000" page_size="0x200000" phys_addr="0x1000" />',
          '  <memory_region name="d" size="0x2000" phys_addr="0x10000" />',
          '  <memory_region name="e" size="0x1000" phys_addr="0x11000" />',
          '  <memory_region name="f" size="0" />',
          pd("p", "", '<map mr="d" vaddr="0x1000" /><map mr="e" vaddr="0x4000" />'),
        ),
      ),
      [
        "system.xml:2:3: <memory_region>: page_size 0x3000 is not supported: use 0x1000 (4 KiB) or 0x200000 (2 MiB)",
        "system.xml:3:3: <memory_region>: size 0x1800 is not a multiple of the page size 0x1000: use 0x2000",
        "system.xml:4:3: <memory_region>: phys_addr 0x1000 is not aligned to the page size 0x200000",
        'system.xml:6:3: <memory_region>: memory region "e" physical address range [0x11000..0x12000) overlaps memory region "d" [0x10000..0x12000) (system.xml:5:3): move one of them',
        "system.xml:7:3: <memory_region>: size 0x0 is out of range: it must be at least 0x1",
      ],
    );
  });

  test("IRQ ids 0-61, trigger level or edge, IRQ numbers used once", () => {
    assert.deepEqual(
      errors(
        sys(
          pd(
            "a",
            "",
            '<irq irq="10" id="62" /><irq irq="11" id="1" trigger="rising" /><irq irq="12" id="2" />',
          ),
          pd("b", "", '<irq irq="12" id="0" />'),
        ),
      ),
      [
        "system.xml:2:63: <irq>: id 62 is out of range: it must be between 0 and 61",
        'system.xml:2:87: <irq>: trigger "rising" must be "level" or "edge"',
        'system.xml:3:63: <irq>: IRQ 12 is already used by protection domain "a" (system.xml:2:127): an interrupt goes to one PD only',
      ],
    );
  });

  test("channel ids 0-61 and unique per PD, shared with IRQ ids", () => {
    assert.deepEqual(
      errors(
        sys(
          pd("a", "", '<irq irq="5" id="3" />'),
          pd("b"),
          '  <channel><end pd="a" id="3" /><end pd="b" id="3" /></channel>',
          '  <channel><end pd="a" id="4" /><end pd="b" id="0" /></channel>',
          '  <channel><end pd="b" id="0" /><end pd="a" id="5" /></channel>',
          '  <channel><end pd="a" id="6" /><end pd="b" id="62" /></channel>',
        ),
      ),
      [
        'system.xml:4:12: <end>: id 3 of protection domain "a" is already used by the <irq> at system.xml:2:63: channel and IRQ ids must be unique per PD, pick another',
        'system.xml:6:12: <end>: id 0 of protection domain "b" is already used by the <end> at system.xml:5:33: channel and IRQ ids must be unique per PD, pick another',
        "system.xml:7:33: <end>: id 62 is out of range: it must be between 0 and 61",
      ],
    );
  });

  test("exactly two ends", () => {
    assert.deepEqual(
      errors(
        sys(
          pd("a"),
          pd("b"),
          pd("c"),
          '  <channel><end pd="a" id="0" /><end pd="b" id="0" /><end pd="c" id="0" /></channel>',
        ),
      ),
      ["system.xml:5:3: <channel>: a channel has exactly two <end> elements, this one has 3: remove one"],
    );
  });

  test("channel ends naming unknown PDs", () => {
    assert.deepEqual(
      errors(sys(pd("a"), pd("b"), '  <channel><end pd="a" id="0" /><end pd="c" id="0" /></channel>')),
      ['system.xml:4:33: <end>: protection domain "c" does not exist (declared protection domains: a, b)'],
    );
  });

  test("a channel from a PD to itself", () => {
    assert.deepEqual(
      errors(sys(pd("a"), '  <channel><end pd="a" id="0" /><end pd="a" id="1" /></channel>')),
      [
        'system.xml:3:33: <end>: channel connects protection domain "a" to itself: both ends must name different PDs',
      ],
    );
  });

  test("pp only towards strictly higher priority, one way", () => {
    assert.deepEqual(
      errors(
        sys(
          pd("lo", 'priority="1"'),
          pd("hi", 'priority="2"'),
          '  <channel><end pd="hi" id="0" pp="true" /><end pd="lo" id="0" /></channel>',
          '  <channel><end pd="lo" id="1" pp="true" /><end pd="hi" id="1" pp="true" /></channel>',
        ),
      ),
      [
        'system.xml:4:12: <end>: pp="true" lets "hi" (priority 2) call "lo" (priority 1), but protected calls must go to a PD of strictly higher priority: raise "lo" above 2 or drop pp',
        'system.xml:5:3: <channel>: both ends have pp="true", but a protected call goes one way: keep pp only on the end that calls',
      ],
    );
  });

  test("the pp call graph is acyclic", () => {
    assert.deepEqual(
      errors(
        sys(
          pd("a", 'priority="5"'),
          pd("b", 'priority="5"'),
          '  <channel><end pd="a" id="0" pp="true" /><end pd="b" id="0" /></channel>',
          '  <channel><end pd="b" id="1" pp="true" /><end pd="a" id="1" /></channel>',
        ),
      ),
      [
        'system.xml:4:12: <end>: pp="true" lets "a" (priority 5) call "b" (priority 5), but protected calls must go to a PD of strictly higher priority: raise "b" above 5 or drop pp',
        'system.xml:5:12: <end>: pp="true" lets "b" (priority 5) call "a" (priority 5), but protected calls must go to a PD of strictly higher priority: raise "a" above 5 or drop pp',
        "system.xml:5:12: <end>: protected calls form a cycle a -> b -> a: the pp call graph must be acyclic, remove pp from one of these ends",
      ],
    );
  });

  test("pre-2.0 pp on the callee PD: accepted with a warning, moved to the caller's end", () => {
    const sd = parseSdf(
      sys(
        pd("server", 'priority="10" pp="true"'),
        pd("client", 'priority="5"'),
        '  <channel><end pd="server" id="0" /><end pd="client" id="0" /></channel>',
      ),
      FILE,
    );
    assert.equal(sd.protectionDomains[0]!.legacyPp, true);
    assert.deepEqual(
      sd.channels[0]!.ends.map((e) => [e.pd, e.pp, e.ppFromLegacy]),
      [
        ["server", false, false],
        ["client", true, true],
      ],
    );
    assert.deepEqual(sd.warnings.map(formatDiagnostic), [
      'system.xml:2:3: <protection_domain>: pp on <protection_domain> is the pre-2.0 form: put pp="true" on the calling <end> of each channel instead',
    ]);
    assert.deepEqual(
      errors(
        sys(
          pd("server", 'priority="1" pp="true"'),
          pd("client", 'priority="5"'),
          '  <channel><end pd="server" id="0" /><end pd="client" id="0" /></channel>',
        ),
      ),
      [
        'system.xml:4:38: <end>: pp="true" (from pp="true" on protection domain "server") lets "client" (priority 5) call "server" (priority 1), but protected calls must go to a PD of strictly higher priority: raise "server" above 5 or drop pp',
      ],
    );
  });

  test("child PD ids: required, 0-61, unique per parent, distinct from vcpu ids", () => {
    const child = (name: string, id: string) =>
      `<protection_domain name="${name}" ${id}><program_image path="c" /></protection_domain>`;
    assert.deepEqual(
      errors(
        sys(
          pd(
            "p",
            "",
            child("c1", 'id="1"') + child("c2", 'id="1"') + child("c3", "") + child("c4", 'id="70"'),
          ),
          pd("q", "", `<virtual_machine name="vm"><vcpu id="0" /></virtual_machine>${child("c5", 'id="0"')}`),
          pd("r", "", child("c6", 'id="1"')),
        ),
      ),
      [
        'system.xml:2:145: <protection_domain>: child id 1 is already used by "c1" (system.xml:2:63) in protection domain "p": child ids must be unique per parent, pick another',
        'system.xml:2:227: <protection_domain>: missing required attribute "id": add id="0"',
        "system.xml:2:303: <protection_domain>: id 70 is out of range: it must be between 0 and 61",
        'system.xml:3:123: <protection_domain>: child id 0 clashes with vcpu id 0 of virtual machine "vm" in protection domain "q": pick another id',
      ],
    );
  });

  test("virtual machines: inside a PD, at most one, at least one vcpu, unique vcpu ids", () => {
    assert.deepEqual(
      errors(
        sys(
          '  <virtual_machine name="stray"><vcpu id="0" /></virtual_machine>',
          pd(
            "a",
            "",
            '<virtual_machine name="v1"><vcpu id="0" /><vcpu id="0" /></virtual_machine><virtual_machine name="v2"><vcpu id="0" /></virtual_machine>',
          ),
          pd("b", "", '<virtual_machine name="v3"></virtual_machine>'),
        ),
      ),
      [
        "system.xml:2:3: <virtual_machine>: a virtual machine must be inside the protection domain that monitors it: move it there",
        'system.xml:3:105: <vcpu>: duplicate vcpu id 0 in virtual machine "v1" (first at system.xml:3:90): give each vcpu its own id',
        'system.xml:3:138: <virtual_machine>: protection domain "a" already has a virtual machine (system.xml:3:63): a PD monitors at most one, move this one to another PD',
        'system.xml:4:63: <virtual_machine>: virtual machine "v3" has no <vcpu>: add <vcpu id="0" />',
      ],
    );
  });

  test("setvar symbols are patched once; region_paddr names a region", () => {
    assert.deepEqual(
      errors(
        sys(
          '  <memory_region name="m" size="0x1000" />',
          pd(
            "a",
            "",
            '<map mr="m" vaddr="0x1000" setvar_vaddr="s" /><setvar symbol="s" region_paddr="nope" />',
          ),
        ),
      ),
      [
        'system.xml:3:109: <setvar>: setvar on symbol "s" already exists (system.xml:3:63): each symbol is patched once, use another symbol',
      ],
    );
    assert.deepEqual(errors(sys(pd("a", "", '<setvar symbol="s" region_paddr="nope" />'))), [
      'system.xml:2:63: <setvar>: memory region "nope" does not exist (no memory regions are declared)',
    ]);
  });

  test("text is not allowed inside elements", () => {
    assert.deepEqual(errors(sys(pd("a", "", "hello"))), [
      'system.xml:2:3: <protection_domain>: unexpected text "hello": a description holds only elements, attributes and comments; remove the text or turn it into a <!-- comment -->',
    ]);
  });

  test("unsupported Microkit features are refused, not ignored", () => {
    assert.deepEqual(errors(sys(pd("a", 'smc="true"'), "  <domains />")), [
      "system.xml:2:3: <protection_domain>: ARM SMC forwarding (smc) is not available in capvisor: remove smc",
      "system.xml:3:3: <domains>: the domain scheduler is not supported by capvisor yet: remove <domains>",
    ]);
  });

  test("capvisor extensions are kept per element; an empty extension name is refused", () => {
    const sd = parseSdf(sys(pd("a", 'capvisor:runtime="wasmedge" capvisor:args="--dir .:/data"')), FILE);
    assert.deepEqual(sd.protectionDomains[0]!.extensions, { runtime: "wasmedge", args: "--dir .:/data" });
    assert.deepEqual(errors(sys(pd("a", 'capvisor:="x"'))), [
      'system.xml:2:3: <protection_domain>: attribute "capvisor:" has no name after the prefix: write capvisor:<name>="..."',
    ]);
  });

  test("unused memory regions are warned about", () => {
    const sd = parseSdf(sys('  <memory_region name="spare" size="0x1000" />', pd("a")), FILE);
    assert.deepEqual(sd.warnings.map(formatDiagnostic), [
      'system.xml:2:3: <memory_region>: memory region "spare" is not mapped by any protection domain',
    ]);
  });

  test("all errors are collected, in document order", () => {
    const list = errors(
      sys(
        '  <memory_region name="m" size="0x1001" />',
        pd("a", 'priority="300"', '<map mr="zz" vaddr="0x1000" />'),
        pd("a"),
        '  <channel><end pd="a" id="99" /><end pd="ghost" id="0" /></channel>',
      ),
    );
    assert.deepEqual(list, [
      "system.xml:2:3: <memory_region>: size 0x1001 is not a multiple of the page size 0x1000: use 0x2000",
      "system.xml:3:3: <protection_domain>: priority 300 is out of range: it must be between 0 and 254",
      'system.xml:3:77: <map>: memory region "zz" does not exist (no memory regions are declared)',
      'system.xml:4:3: <protection_domain>: protection domain name "a" is already used at system.xml:3:3: names must be unique, rename one',
      "system.xml:5:12: <end>: id 99 is out of range: it must be between 0 and 61",
      'system.xml:5:34: <end>: protection domain "ghost" does not exist (declared protection domains: a)',
    ]);
  });
});

describe("malformed XML", () => {
  test("reports the XML error with its position", () => {
    assert.deepEqual(errors("<system>\n  <protection_domain name=a>\n</system>"), [
      "system.xml:2:27: not well-formed XML: unquoted attribute value: fix the XML at this position",
    ]);
    assert.deepEqual(errors('<system>\n  <protection_domain name="a" name="b" />\n</system>'), [
      "system.xml:2:41: not well-formed XML: duplicate attribute: name: fix the XML at this position",
    ]);
  });

  test("a mismatched close tag names the element still open", () => {
    assert.deepEqual(errors('<system>\n  <protection_domain name="a">\n</system>'), [
      "system.xml:3:9: not well-formed XML: unexpected close tag: </system> does not match the open <protection_domain> (system.xml:2:3): close <protection_domain> first",
    ]);
  });

  test("an unclosed element points at its start", () => {
    assert.deepEqual(errors('<system>\n  <protection_domain name="a">\n'), [
      "system.xml:2:3: <protection_domain>: not well-formed XML: unclosed tag: protection_domain: close it with </protection_domain> or make it empty with <protection_domain ... />",
    ]);
  });

  test("the root must be <system>, and there must be one", () => {
    assert.deepEqual(errors("<sytem />"), [
      "system.xml:1:1: <sytem>: the root element must be <system>: wrap the description in <system> ... </system>",
    ]);
    assert.deepEqual(errors(""), [
      "system.xml:1:1: not well-formed XML: document must contain a root element: fix the XML at this position",
    ]);
  });
});
