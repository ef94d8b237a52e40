/**
 * Where the SDF validator and its checks record problems. Nothing stops at the first error:
 * every diagnostic is collected here, and `parseSdf` reports them all at once, sorted.
 */
import type { SdfDiagnostic, SdfLocation } from "./sdf-types.js";

/** Collects errors and warnings; `Attrs`, the validator and the cross-element checks write to it. */
export class Diagnostics {
  readonly errors: SdfDiagnostic[] = [];
  readonly warnings: SdfDiagnostic[] = [];

  error(el: { loc: SdfLocation; name: string }, message: string): void {
    this.errors.push({ ...el.loc, element: el.name, message });
  }

  errorAt(loc: SdfLocation, element: string, message: string): void {
    this.errors.push({ ...loc, element, message });
  }

  warn(loc: SdfLocation, element: string, message: string): void {
    this.warnings.push({ ...loc, element, message });
  }
}

/** Document order; diagnostics at the same position keep the order they were found in. */
export function sortDiagnostics(ds: SdfDiagnostic[]): SdfDiagnostic[] {
  return ds
    .map((d, i) => ({ d, i }))
    .sort((a, b) => a.d.line - b.d.line || a.d.column - b.d.column || a.i - b.i)
    .map((x) => x.d);
}
