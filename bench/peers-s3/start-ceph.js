// Starts one Ceph (mon + memstore OSD + radosgw) for the S3 targets; writes its endpoint and keys
// to the file given; stops it on SIGTERM. Usage: node start-ceph.js CHECKOUT OUT.json
const [checkout, out] = process.argv.slice(2)
const { startCeph } = require(`${checkout}/dist/test/helpers/ceph.js`)
;(async () => {
  const c = await startCeph({ memstoreBytes: 6 * 1024 ** 3 })
  require('fs').writeFileSync(out, JSON.stringify({ endpoint: c.endpoint, accessKey: c.accessKey, secretKey: c.secretKey }))
  const stop = async () => { await c.stop(); process.exit(0) }
  process.on('SIGTERM', stop); process.on('SIGINT', stop)
  setInterval(() => {}, 1 << 30)
})().catch((e) => { console.error(e); process.exit(1) })
