// Checks AsyncAPI documents with the AsyncAPI project's own parser (@asyncapi/parser,
// pinned in package.json): the specification's JSON Schema, its bindings' schemas and
// the parser's semantic rules (references resolve, operations name their channel's
// messages, examples match their schemas ...).
//
//   node tools/asyncapi/validate.mjs docs/asyncapi.yaml [more.yaml ...]
//
// Prints every diagnostic as `file:line:column severity code: message (path)` and exits
// 1 when any has severity error (or a file cannot be read), 0 otherwise. Warnings and
// hints are printed but do not fail. Works offline: the document references nothing
// outside itself.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Parser, DiagnosticSeverity } from '@asyncapi/parser';

const SEVERITY = {
  [DiagnosticSeverity.Error]: 'error',
  [DiagnosticSeverity.Warning]: 'warning',
  [DiagnosticSeverity.Information]: 'info',
  [DiagnosticSeverity.Hint]: 'hint',
};

async function check(parser, file) {
  const source = resolve(file);
  let text;
  try {
    text = await readFile(source, 'utf8');
  } catch (error) {
    console.error(`${file}: cannot read: ${error.message}`);
    return 1;
  }
  const { document, diagnostics } = await parser.parse(text, { source });
  let errors = 0;
  for (const d of diagnostics) {
    const where = `${file}:${d.range.start.line + 1}:${d.range.start.character + 1}`;
    const path = d.path.length ? ` (${d.path.join('.')})` : '';
    console.log(`${where} ${SEVERITY[d.severity] ?? d.severity} ${d.code}: ${d.message}${path}`);
    if (d.severity === DiagnosticSeverity.Error) errors += 1;
  }
  if (errors || !document) {
    console.error(`${file}: INVALID, ${errors} error(s)`);
    return 1;
  }
  console.log(`${file}: valid AsyncAPI ${document.version()}`);
  return 0;
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node validate.mjs FILE.yaml [FILE.yaml ...]');
  process.exit(2);
}
const parser = new Parser();
let failed = 0;
for (const file of files) failed += await check(parser, file);
process.exit(failed ? 1 : 0);
