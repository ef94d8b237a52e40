/**
 * The WebAssembly JS API as Node 20 provides it. TypeScript declares it only in lib.dom, which
 * would bring the whole browser API into a Node project; this is the part capvisor uses.
 */
declare namespace WebAssembly {
  type ImportValue = ((...args: never[]) => unknown) | Global | Memory | Table | number;
  type Imports = Record<string, Record<string, ImportValue>>;
  type ExportValue = ((...args: never[]) => unknown) | Global | Memory | Table;
  type Exports = Record<string, ExportValue>;
  interface ModuleImportDescriptor {
    module: string;
    name: string;
    kind: "function" | "table" | "memory" | "global" | "tag";
  }
  interface ModuleExportDescriptor {
    name: string;
    kind: "function" | "table" | "memory" | "global" | "tag";
  }
  class Module {
    constructor(bytes: BufferSource);
    static imports(m: Module): ModuleImportDescriptor[];
    static exports(m: Module): ModuleExportDescriptor[];
    static customSections(m: Module, name: string): ArrayBuffer[];
  }
  class Instance {
    constructor(m: Module, imports?: Imports);
    readonly exports: Exports;
  }
  interface MemoryDescriptor {
    initial: number;
    maximum?: number;
    shared?: boolean;
  }
  class Memory {
    constructor(d: MemoryDescriptor);
    readonly buffer: ArrayBuffer;
    grow(pages: number): number;
  }
  interface GlobalDescriptor {
    value: "i32" | "i64" | "f32" | "f64" | "externref" | "anyfunc";
    mutable?: boolean;
  }
  class Global {
    constructor(d: GlobalDescriptor, v?: unknown);
    value: unknown;
  }
  class Table {
    readonly length: number;
  }
  class CompileError extends Error {}
  class LinkError extends Error {}
  class RuntimeError extends Error {}
  function validate(bytes: BufferSource): boolean;
  function compile(bytes: BufferSource): Promise<Module>;
  function instantiate(m: Module, imports?: Imports): Promise<Instance>;
}
type BufferSource = ArrayBufferView | ArrayBuffer;
