// zod's issues as lines a person can act on: where (a field path or an option's flag) and what.

/** One line per issue (at most 10), each `  WHERE: MESSAGE`; `where` names a path. */
export function issueLines(issues: readonly { path: PropertyKey[]; message: string }[], where: (path: PropertyKey[]) => string): string {
  return issues.slice(0, 10).map((i) => `  ${where(i.path)}: ${i.message}`).join('\n')
}

/** A JSON path as written in the file: servers[1].url. */
export function jsonPath(path: PropertyKey[]): string {
  return path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('').replace(/^\./, '') || '(top)'
}
