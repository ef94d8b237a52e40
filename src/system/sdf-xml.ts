/**
 * First step of SDF parsing: XML text to a small element tree in which every element knows its
 * line and column, so that each later diagnostic can point at the element it is about.
 */
import { SaxesParser } from "saxes";
import type { SdfDiagnostic, SdfLocation } from "./sdf-types.js";

export interface XElement {
  name: string;
  attrs: Map<string, string>;
  children: XElement[];
  /** Non-whitespace text directly inside the element, if any. */
  text: string;
  loc: SdfLocation;
}

/**
 * The element tree, or the one XML error that stops parsing (`parseSdf` throws it as an
 * `SdfError`; returned rather than thrown here so that this file does not import `sdf.ts`).
 */
export type XmlResult = { ok: true; root: XElement } | { ok: false; diagnostic: SdfDiagnostic };

export function parseXml(xml: string, file: string): XmlResult {
  const lineStarts = [0];
  for (let i = 0; i < xml.length; i++) if (xml.charCodeAt(i) === 10) lineStarts.push(i + 1);
  const locAt = (offset: number): SdfLocation => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { file, line: lo + 1, column: offset - lineStarts[lo]! + 1 };
  };

  const parser = new SaxesParser({ position: true });
  const stack: XElement[] = [];
  let root: XElement | undefined;
  let xmlError: SdfDiagnostic | undefined;
  let lastClosed: XElement | undefined;

  parser.on("error", (e) => {
    if (xmlError) return; // later errors are usually consequences of the first
    const raw = e.message.replace(/^\d+:\d+: /, "").replace(/\.$/, "");
    const top = stack[stack.length - 1];
    let where: SdfLocation = { file, line: parser.line, column: Math.max(parser.column, 1) };
    let hint = "fix the XML at this position";
    const unclosed = /^unclosed tag: (.*)$/.exec(raw);
    if (unclosed && top) {
      where = top.loc;
      hint = `close it with </${top.name}> or make it empty with <${top.name} ... />`;
    } else if (raw.startsWith("unexpected close tag") && lastClosed) {
      const close = /^<\/([^\s>]*)/.exec(xml.slice(xml.lastIndexOf("</", parser.position - 1)))?.[1] ?? "";
      hint = `</${close}> does not match the open <${lastClosed.name}> (${locString(lastClosed.loc)}): close <${lastClosed.name}> first`;
    }
    xmlError = {
      ...where,
      element: unclosed && top ? top.name : "",
      message: `not well-formed XML: ${raw}: ${hint}`,
    };
  });
  parser.on("opentagstart", (tag) => {
    const start = xml.lastIndexOf(`<${tag.name}`, parser.position - 1);
    const el: XElement = {
      name: tag.name,
      attrs: new Map(),
      children: [],
      text: "",
      loc: locAt(start < 0 ? parser.position : start),
    };
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(el);
    else root ??= el;
    stack.push(el);
  });
  parser.on("opentag", (tag) => {
    const el = stack[stack.length - 1]!;
    for (const [k, value] of Object.entries(tag.attributes)) el.attrs.set(k, value as string);
    if (tag.isSelfClosing) stack.pop();
  });
  parser.on("closetag", (tag) => {
    if (!tag.isSelfClosing) lastClosed = stack.pop();
  });
  const onText = (t: string) => {
    const top = stack[stack.length - 1];
    if (top && t.trim() !== "") top.text += t.trim();
  };
  parser.on("text", onText);
  parser.on("cdata", onText);

  try {
    parser.write(xml).close();
  } catch (e) {
    // saxes throws only without an error handler; keep this as a safety net
    xmlError ??= {
      file,
      line: 1,
      column: 1,
      element: "",
      message: `not well-formed XML: ${(e as Error).message}`,
    };
  }
  if (xmlError) return { ok: false, diagnostic: xmlError };
  if (!root) {
    return {
      ok: false,
      diagnostic: {
        file,
        line: 1,
        column: 1,
        element: "",
        message: "no root element: a description is one <system> element",
      },
    };
  }
  return { ok: true, root };
}

/** `file:line:column`, for messages that refer to another element. */
export function locString(l: SdfLocation): string {
  return `${l.file}:${l.line}:${l.column}`;
}
