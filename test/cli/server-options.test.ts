// `edfs server`'s options: one table (SERVER_OPTIONS) behind --help, the schema and docs/server.md;
// every wrong option is named by its flag, several at once, and nothing starts.
import t from 'tap'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { SERVER_OPTIONS, parseServerOptions, serverOptionsMarkdown } from '../../src/cli/server-options'
import { runEdfs, tmpDir } from '../helpers/servers'

const defaults = Object.fromEntries(Object.entries(SERVER_OPTIONS).flatMap(([k, v]) => ('default' in v ? [[k, v.default]] : [])))

t.test('docs/server.md holds the table as the code has it', async (t) => {
  const doc = await readFile(path.resolve(__dirname, '../../../docs/server.md'), 'utf8')
  const m = /<!-- server-options -->\n([\s\S]*?)\n<!-- \/server-options -->/.exec(doc)
  t.ok(m, 'the table is marked in docs/server.md')
  t.equal(m?.[1], serverOptionsMarkdown(), 'equal (regenerate with serverOptionsMarkdown())')
})

t.test('--help lists every option of the table with its default', async (t) => {
  const r = await runEdfs(['server', '--help'])
  t.equal(r.code, 0)
  const help = r.stdout.replace(/\s+/g, ' ')
  for (const row of Object.values(SERVER_OPTIONS)) {
    t.ok(help.includes(row.flags), row.flags)
    if ('default' in row) t.ok(help.includes(`(default: "${row.default}")`), `${row.flags} default ${row.default}`)
  }
})

t.test('the defaults parse into the values the server uses', async (t) => {
  const o = parseServerOptions({ ...defaults, data: 'rel/dir' })
  t.equal(o.data, path.resolve('rel/dir'), 'the data directory is made absolute')
  t.equal(o.port, 7001)
  t.equal(o.maxBlobSize, 128 * 1024 * 1024)
  t.equal(o.requestTimeout, 60_000)
  t.equal(o.scrubPeriod, 7 * 86_400_000)
  t.equal(o.metrics, undefined)
  t.same(parseServerOptions({ ...defaults, data: 'd', metrics: '[::1]:9100', advertise: true, host: '0.0.0.0' }).metrics, { host: '::1', port: 9100 })
})

t.test('bad options: each named by its flag, all at once, and nothing starts', async (t) => {
  const data = path.join(tmpDir(t), 'never')
  const r = await runEdfs(['server', '--data', data, '--port', '99999', '--max-blob-size', '12Q', '--request-timeout', '0',
    '--scrub-period', 'weekly', '--metrics', 'a:b', '--tls-cert', 'c.pem', '--advertise', 'x'.repeat(64), '--host', '0.0.0.0'])
  t.equal(r.code, 1)
  t.equal(r.stdout, '', 'no ready line')
  for (const line of [
    '--port: a port number 0..65535',
    '--max-blob-size: not a size: "12Q"',
    '--request-timeout: at least 1 ms',
    '--scrub-period: days, e.g. 7',
    '--metrics: not PORT or HOST:PORT: "a:b"',
    '--tls-key: --tls-cert and --tls-key go together',
    '--advertise: at most 63 characters',
  ]) t.ok(r.stderr.includes(line), line)
  t.notOk(r.stderr.includes('    at '), 'no stack trace')
  t.notOk(existsSync(data), 'no data directory made')
  const none = await runEdfs(['server'])
  t.equal(none.code, 1)
  t.match(none.stderr, /--data: required: the server's data directory/)
})
