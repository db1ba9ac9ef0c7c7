// The address syntax of the --metrics flags (server and mount daemon).

/** "PORT", "HOST:PORT" or "[V6]:PORT" -> host and port; a bare port binds loopback. */
export function parseListenAddress(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]+)):(\d+)$/.exec(text)
  const host = m ? (m[1] ?? m[2]!) : '127.0.0.1'
  const port = Number(m ? m[3] : text)
  if (!Number.isInteger(port) || port < 0 || port > 65535 || (!m && !/^\d+$/.test(text))) throw new Error(`not PORT or HOST:PORT: "${text}"`)
  return { host, port }
}
