// Zeroconf for real: two network namespaces made by this test ("lan-a" with the servers, "lan-b"
// with the client) joined by a veth pair with link-local addresses and a multicast route. Servers
// started with --advertise are found by `edfs init --discover` in the other namespace, checked by
// id, TLS included; explicit --servers win; nothing found is a clear error. Teardown removes the
// namespaces (the veth pair goes with them).
import t from 'tap'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { TEST_USER, runEdfs, startServer, tmpDir } from '../helpers/servers'
import { run } from './support'

const canNetns = process.getuid?.() === 0
if (!canNetns && process.env.CI !== 'true') {
  t.plan(0, 'needs root for ip netns (runs under CI)')
} else {
  t.test('edfs init --discover finds the servers advertised on the LAN', async (t) => {
    const tag = `${process.pid % 100000}`
    const lanA = `edfs-lan-a-${tag}`
    const lanB = `edfs-lan-b-${tag}`
    const ip = async (...args: string[]) => {
      const r = await run('ip', args, { timeoutMs: 10_000 })
      if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`)
    }
    t.teardown(async () => {
      await run('ip', ['netns', 'del', lanA])
      await run('ip', ['netns', 'del', lanB])
    })
    await ip('netns', 'add', lanA)
    await ip('netns', 'add', lanB)
    await ip('link', 'add', `ea${tag}`, 'type', 'veth', 'peer', 'name', `eb${tag}`)
    await ip('link', 'set', `ea${tag}`, 'netns', lanA)
    await ip('link', 'set', `eb${tag}`, 'netns', lanB)
    // The servers' side has a second address: an explicit URL uses it, the announcement has both.
    await ip('-n', lanA, 'addr', 'add', '169.254.77.1/24', 'dev', `ea${tag}`)
    await ip('-n', lanA, 'addr', 'add', '169.254.77.11/24', 'dev', `ea${tag}`)
    await ip('-n', lanB, 'addr', 'add', '169.254.77.2/24', 'dev', `eb${tag}`)
    for (const [ns, dev] of [[lanA, `ea${tag}`], [lanB, `eb${tag}`]] as const) {
      await ip('-n', ns, 'link', 'set', 'lo', 'up')
      await ip('-n', ns, 'link', 'set', dev, 'up')
      await ip('-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', dev)
    }
    const inA = ['ip', 'netns', 'exec', lanA]
    const inB = ['ip', 'netns', 'exec', lanB]

    const certs = path.join(tmpDir(t), 'certs')
    const made = await runEdfs(['tls', 'init', '--names', '169.254.77.1,169.254.77.11', '--out', certs])
    t.equal(made.code, 0, `tls init: ${made.stderr}`)
    const everywhere = ['--host', '0.0.0.0', '--port', '0']
    const plain = await startServer(t, { prefix: inA, args: [...everywhere, '--advertise', 'plain'] })
    const tls = await startServer(t, {
      prefix: inA, args: [...everywhere, '--advertise', 'secure', '--tls-cert', path.join(certs, 'server.crt'), '--tls-key', path.join(certs, 'server.key')],
    })
    const plainPort = new URL(plain.url).port
    const tlsPort = new URL(tls.url).port

    await t.test('both are found, checked by id, and used; https for the TLS one', async (t) => {
      const home = tmpDir(t)
      const r = await runEdfs(['init', '--discover', '--user', TEST_USER.name, '--ca', path.join(certs, 'ca.crt'), '--password-stdin'], {
        prefix: [...inB, 'env', `HOME=${home}`], input: TEST_USER.password, timeoutMs: 60_000,
      })
      t.equal(r.code, 0, r.stderr)
      t.match(r.stderr, /2 edfs servers found over mDNS/)
      t.match(r.stderr, new RegExp(`plain  http://169\\.254\\.77\\.1+:${plainPort}  id ${plain.id}`))
      t.match(r.stderr, new RegExp(`secure  https://169\\.254\\.77\\.1+:${tlsPort}  id ${tls.id}  TLS`))
      const config = JSON.parse(await readFile(path.join(home, '.config/edfs/config.json'), 'utf8')) as { servers: { url: string; id: string }[] }
      t.same(config.servers.map((s) => s.id).sort(), [plain.id, tls.id].sort(), 'the config lists the two servers by id')
      t.ok(config.servers.find((s) => s.id === tls.id)!.url.startsWith('https://'), 'the TLS server by https')
      t.match(r.stdout, /created volume [0-9a-f]+ on 2 servers/)
    })

    await t.test('explicit --servers win: a listed server is kept as given, not added twice', async (t) => {
      const home = tmpDir(t)
      const explicit = `http://169.254.77.11:${plainPort}`
      const r = await runEdfs(['init', '--discover', '--servers', explicit, '--user', TEST_USER.name, '--ca', path.join(certs, 'ca.crt'), '--password-stdin'], {
        prefix: [...inB, 'env', `HOME=${home}`], input: TEST_USER.password, timeoutMs: 60_000,
      })
      t.equal(r.code, 0, r.stderr)
      t.match(r.stderr, /plain  id [0-9a-f]+  \(listed in --servers\)/)
      const config = JSON.parse(await readFile(path.join(home, '.config/edfs/config.json'), 'utf8')) as { servers: { url: string; id: string }[] }
      t.same(config.servers.find((s) => s.id === plain.id)?.url, explicit, 'the explicit URL is the one kept')
      t.equal(config.servers.length, 2)
      t.match(r.stdout, /attached to volume/, 'the volume the first run made')
    })

    await t.test('after the servers stop, nothing is found: a clear error and no config', async (t) => {
      await plain.stop()
      await tls.stop()
      const home = tmpDir(t)
      const r = await runEdfs(['init', '--discover', '--discover-wait', '1.5', '--user', TEST_USER.name, '--password-stdin'], {
        prefix: [...inB, 'env', `HOME=${home}`], input: TEST_USER.password,
      })
      t.equal(r.code, 1)
      t.match(r.stderr, /no edfs server found on the LAN/)
      await t.rejects(readFile(path.join(home, '.config/edfs/config.json')), 'no config written')
    })
  })

  t.test('bad input', async (t) => {
    const r = await runEdfs(['server', '--data', tmpDir(t), '--advertise'])
    t.equal(r.code, 1, 'an advertised server on loopback is refused')
    t.match(r.stderr, /--advertise: the server listens on 127\.0\.0\.1, which no other machine reaches: add --host 0\.0\.0\.0/)
    const w = await runEdfs(['init', '--discover', '--discover-wait', 'soon', '--user', 'alice'], { env: { HOME: tmpDir(t) } })
    t.equal(w.code, 1)
    t.match(w.stderr, /--discover-wait: seconds/)
    const none = await runEdfs(['init', '--user', 'alice'], { env: { HOME: tmpDir(t) } })
    t.equal(none.code, 1)
    t.match(none.stderr, /say where the servers are: --servers URL,\.\.\. or --discover/)
  })
}
