import { readdirSync, readFileSync, statSync } from "node:fs";
import { builtinModules } from "node:module";
import { join, relative, sep } from "node:path";
import ts from "typescript";
import { SHELLS } from "./shells.ts";

/** One use of I/O outside a shell. */
export interface Violation {
  /** Repository-relative path, `/`-separated. */
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly rule: "node-import" | "clock" | "timer" | "random";
  readonly text: string;
}

const BUILTINS = new Set(builtinModules.filter((m) => !m.startsWith("_")));
const TIMERS = new Set(["setTimeout", "setInterval", "setImmediate"]);
const CLOCKS: Record<string, string> = { Date: "now", performance: "now" };

/** `**` → any segments, `*` → within one segment. */
export function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === "*" && glob[i + 1] === "*") {
      re += ".*";
      i++;
    } else if (c === "*") re += "[^/]*";
    else re += c.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

export function isShell(file: string, shells: readonly { pattern: string }[] = SHELLS): boolean {
  return shells.some((s) => globToRegExp(s.pattern).test(file));
}

function isNodeModule(spec: string): boolean {
  return spec.startsWith("node:") || BUILTINS.has(spec) || BUILTINS.has(spec.split("/")[0] as string);
}

/** The I/O uses in one source text (`file` only labels them). */
export function checkSource(file: string, text: string): Violation[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out: Violation[] = [];
  const add = (node: ts.Node, rule: Violation["rule"], what: string): void => {
    const { line, character } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
    out.push({ file, line: line + 1, column: character + 1, rule, text: what });
  };
  const moduleSpec = (node: ts.Node, spec: ts.Expression | undefined): void => {
    if (spec && ts.isStringLiteralLike(spec) && isNodeModule(spec.text))
      add(node, "node-import", `import of "${spec.text}"`);
  };
  /** `x` or `globalThis.x` / `window.x` / `global.x`: the name of a global reference, else undefined. */
  const globalName = (e: ts.Expression): string | undefined => {
    if (ts.isIdentifier(e)) return e.text;
    if (
      ts.isPropertyAccessExpression(e) &&
      ts.isIdentifier(e.expression) &&
      ["globalThis", "global", "window", "self"].includes(e.expression.text)
    )
      return e.name.text;
    return undefined;
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) moduleSpec(node, node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference))
      moduleSpec(node, node.moduleReference.expression);
    else if (ts.isCallExpression(node)) {
      const callee = node.expression;
      if (
        callee.kind === ts.SyntaxKind.ImportKeyword ||
        (ts.isIdentifier(callee) && callee.text === "require")
      )
        moduleSpec(node, node.arguments[0]);
    } else if (ts.isImportTypeNode(node)) {
      const arg = node.argument;
      if (ts.isLiteralTypeNode(arg)) moduleSpec(node, arg.literal as ts.Expression);
    }
    if (ts.isPropertyAccessExpression(node) || ts.isElementAccessExpression(node)) {
      const obj = globalName(node.expression);
      const prop = ts.isPropertyAccessExpression(node)
        ? node.name.text
        : ts.isStringLiteralLike(node.argumentExpression)
          ? node.argumentExpression.text
          : undefined;
      if (obj !== undefined && prop !== undefined) {
        if (CLOCKS[obj] === prop) add(node, "clock", `${obj}.${prop}`);
        if (obj === "Math" && prop === "random") add(node, "random", "Math.random");
      }
      if (
        ts.isPropertyAccessExpression(node) &&
        globalName(node) !== undefined &&
        TIMERS.has(node.name.text)
      ) {
        if (ts.isIdentifier(node.expression) && node.expression.text !== "Math")
          add(node, "timer", `${node.expression.text}.${node.name.text}`);
      }
    } else if (
      ts.isNewExpression(node) &&
      ts.isIdentifier(node.expression) &&
      node.expression.text === "Date"
    ) {
      if ((node.arguments?.length ?? 0) === 0) add(node, "clock", "new Date()");
    } else if (ts.isIdentifier(node) && TIMERS.has(node.text)) {
      const p = node.parent;
      // A bare reference to the global timer (a call, or passing it around); not a property name,
      // declaration name or a member of something else.
      const isMemberName =
        (ts.isPropertyAccessExpression(p) && p.name === node) ||
        (ts.isPropertyAssignment(p) && p.name === node) ||
        ts.isMethodDeclaration(p) ||
        ts.isPropertyDeclaration(p) ||
        ts.isPropertySignature(p) ||
        ts.isMethodSignature(p) ||
        (ts.isVariableDeclaration(p) && p.name === node) ||
        (ts.isParameter(p) && p.name === node) ||
        ts.isImportSpecifier(p) ||
        ts.isFunctionDeclaration(p);
      if (!isMemberName) add(node, "timer", node.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** Every `.ts` file under `packages/<pkg>/src` of `root`, repository-relative and `/`-separated. */
export function sourceFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      if (name === "node_modules" || name === "dist") continue;
      const p = join(dir, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (/\.(c|m)?tsx?$/.test(name) && !name.endsWith(".d.ts"))
        out.push(relative(root, p).split(sep).join("/"));
    }
  };
  const pkgs = join(root, "packages");
  for (const pkg of readdirSync(pkgs).sort()) {
    const src = join(pkgs, pkg, "src");
    try {
      if (statSync(src).isDirectory()) walk(src);
    } catch {
      // a package without src/
    }
  }
  return out;
}

/** Checks every non-shell source file of the repository at `root`. */
export function checkRepo(root: string, shells: readonly { pattern: string }[] = SHELLS): Violation[] {
  const out: Violation[] = [];
  for (const f of sourceFiles(root)) {
    if (isShell(f, shells)) continue;
    out.push(...checkSource(f, readFileSync(join(root, f), "utf8")));
  }
  return out;
}
