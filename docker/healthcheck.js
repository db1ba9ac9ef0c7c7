// HEALTHCHECK of the edfs image. The entrypoint writes what to check into /tmp/edfs-health:
// a server's health URL (GET /v1/health answers 200 with its id), or "mount:PATH" for a mount
// (healthy while a FUSE file system is mounted there). Anything else run in the image: healthy.
'use strict'
const fs = require('node:fs')

let target
try {
  target = fs.readFileSync('/tmp/edfs-health', 'utf8').trim()
} catch {
  process.exit(0)
}

if (target.startsWith('mount:')) {
  const where = target.slice('mount:'.length)
  const mounted = fs.readFileSync('/proc/mounts', 'utf8').split('\n')
    .some((line) => { const f = line.split(' '); return f[1] === where && /^fuse/.test(f[2] || '') })
  if (!mounted) console.error(`health: no FUSE file system mounted on ${where}`)
  process.exit(mounted ? 0 : 1)
}

const client = target.startsWith('https:') ? require('node:https') : require('node:http')
// Liveness only: a self-signed or private-CA certificate is fine here.
const req = client.get(target, { timeout: 4000, rejectUnauthorized: false }, (res) => {
  let body = ''
  res.setEncoding('utf8')
  res.on('data', (d) => { if (body.length < 4096) body += d })
  res.on('end', () => {
    try {
      if (res.statusCode === 200 && JSON.parse(body).id) process.exit(0)
    } catch { /* reported below */ }
    console.error(`health: ${target} answered ${res.statusCode}: ${body.slice(0, 200)}`)
    process.exit(1)
  })
})
req.on('timeout', () => req.destroy(new Error('no answer within 4 s')))
req.on('error', (err) => { console.error(`health: ${target}: ${err.message}`); process.exit(1) })
